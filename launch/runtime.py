"""Process-wide JAX settings shared by the entry points (launch.main, launch.reproduce)."""
from __future__ import annotations

import os
import sys

from absl import flags

COMPILATION_CACHE = flags.DEFINE_string(
    "compilation_cache", os.environ.get("JAX_COMPILATION_CACHE_DIR", os.path.join(
        os.path.expanduser("~"), ".cache", "kdjax", "xla")),
    "Directory of JAX's persistent compilation cache: every fit, active-learning round and "
    "sweep point reuses the executables an earlier process compiled. '' disables it, and then "
    "float32 convolutions on one CPU device run as oneDNN direct convolutions "
    "(kdjax.platform; the two exclude each other, docs/performance.md).")
CPU_DEVICES = flags.DEFINE_integer(
    "cpu_devices", 0, "Split the host CPU into this many XLA devices (0: as is); the step then "
    "runs data-parallel over them. Applies to the CPU backend only. Several devices always use "
    "XLA's convolutions (docs/performance.md).", lower_bound=0)


def apply() -> dict:
    """Apply the platform settings (`kdjax.platform`: XLA:CPU flags, malloc, the oneDNN
    convolution where the persistent cache is off) and the flags above; call before the first
    JAX computation. Returns what `kdjax.platform.apply` did."""
    from kdjax import platform
    applied = platform.apply(persistent_cache=bool(COMPILATION_CACHE.value))
    import jax

    from kdjax import provenance
    provenance.code_state()  # the code this process runs: read now, not when a run ends
    if CPU_DEVICES.value:
        jax.config.update("jax_num_cpu_devices", CPU_DEVICES.value)
    cache = COMPILATION_CACHE.value if applied["persistent_cache"] else ""
    if COMPILATION_CACHE.value and not cache:
        print("note: KDJAX_ONEDNN_CONV=1: the persistent compilation cache is off (jaxlib 0.10 "
              "cannot store executables with oneDNN convolutions; docs/performance.md)",
              file=sys.stderr, flush=True)
    os.environ["JAX_COMPILATION_CACHE_DIR"] = cache  # sweep subprocesses: the same choice
    if cache:
        jax.config.update("jax_compilation_cache_dir", cache)
        # Cache every executable: on a CPU most compiles are short, but a run makes many.
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return applied



def start(multihost: bool) -> None:
    """After `apply`: on `multihost`, join the job's processes (`jax.distributed.initialize()`
    finds the coordinator and this process's rank from the cluster's environment: SLURM, a TPU
    VM); then watch for another process's failure (kdjax/train/failure.py) and take SIGTERM (a
    checkpoint at the next step, then stop: kdjax/train/preemption.py). Entry points then run
    their work in `launch.failures.guarded`."""
    import jax
    from absl import logging
    if multihost:
        jax.distributed.initialize()
    from kdjax.train import failure, preemption
    failure.watch()        # another process's failure ends this one too
    preemption.install()   # SIGTERM: checkpoint at the next step, then stop
    logging.info("JAX process %d/%d, devices: %s", jax.process_index(), jax.process_count(),
                 jax.devices())
