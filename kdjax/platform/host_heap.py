"""glibc malloc kept from unmapping XLA:CPU's per-execution buffers (docs/performance.md, issue 19
part 6).

Each execution of a compiled XLA:CPU program allocates its temporary buffer afresh (230 MiB for the
ResNet-20 train step at batch 128) and frees it at the end. glibc serves any allocation above its
mmap threshold (at most 32 MB) with a fresh `mmap` and returns it with `munmap`, so every step
page-faults the whole buffer back in, page by page, and the kernel zeroes each page: 13% of the
ResNet-20 step's CPU time on the 2-core Xeon of part 6 (`python bench/perf_attribution.py`).
`keep()` sets, through `mallopt`, one malloc arena for every thread (`M_ARENA_MAX` = 1: a thread's
own arena cannot grow past 64 MB and would mmap the buffer anyway), no mmap'ed chunks
(`M_MMAP_MAX` = 0) and no trimming of the heap's top below 2 GiB free (`M_TRIM_THRESHOLD` =
INT_MAX, the most mallopt takes), so the buffer
freed by one step is the one the next step gets back, already mapped.

The cost: the process keeps its peak heap (freed memory is reused, not returned to the system;
under CPU contention the heap can grow by a few step buffers before it plateaus), and all threads
share one arena's lock. So it is applied only where JAX runs on the CPU: no TPU
or GPU plugin installed, or `JAX_PLATFORMS=cpu`. `KDJAX_HOST_HEAP=0` leaves malloc alone (1 forces
it). Called by the entry points (`kdjax.platform.apply`) before the first JAX computation (threads
that allocated before that keep their arenas), never by `import kdjax`. A no-op where the C
library is not glibc.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import importlib.metadata
import os

M_TRIM_THRESHOLD, M_MMAP_MAX, M_ARENA_MAX = -1, -4, -8  # glibc <malloc.h>
SETTINGS = ((M_ARENA_MAX, 1), (M_MMAP_MAX, 0), (M_TRIM_THRESHOLD, 2**31 - 1))
ACCELERATOR_PLUGINS = ("libtpu", "libtpu-nightly", "jax-cuda12-plugin", "jax-cuda13-plugin",
                       "jax-rocm6-plugin", "jax-rocm7-plugin")


def _accelerator_installed() -> bool:
    for name in ACCELERATOR_PLUGINS:
        try:
            importlib.metadata.version(name)
            return True
        except importlib.metadata.PackageNotFoundError:
            pass
    return False


def wanted(environ=os.environ) -> bool:
    """Whether `keep` should change malloc here (see the module docstring)."""
    switch = environ.get("KDJAX_HOST_HEAP", "")
    if switch not in ("", "0", "1"):
        raise ValueError(f"KDJAX_HOST_HEAP must be 0 or 1, got {switch!r}")
    if switch:
        return switch == "1"
    platforms = environ.get("JAX_PLATFORMS", "")
    if platforms:
        return platforms.split(",")[0].strip() == "cpu"
    return not _accelerator_installed()


_KEPT = {"done": False}   # mallopt's settings cannot be read back: what keep() did, for provenance


def kept() -> bool:
    """Whether `keep` changed malloc in this process."""
    return _KEPT["done"]


def keep(environ=os.environ) -> bool:
    """Apply SETTINGS through glibc's mallopt when `wanted`; True when all of them took."""
    if not wanted(environ):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
        libc.gnu_get_libc_version  # glibc only: musl has mallopt as a stub
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    took = all(mallopt(param, value) == 1 for param, value in SETTINGS)
    _KEPT["done"] = _KEPT["done"] or took
    return took
