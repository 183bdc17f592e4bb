"""XLA:CPU settings kdjax applies before JAX starts its CPU backend (docs/performance.md).

YNNPACK convolutions off, YNNPACK dots kept (`--xla_cpu_experimental_ynn_fusion_type=
individual_dot`): on the 2-core AMD EPYC (AVX2) CI machine XLA's default sends the ResNets'
convolutions to YNNPACK, whose weight-gradient convolutions at 32x32x16 took ~90 ms each against
~12 ms on Eigen; the ResNet-20 train step fell from ~1350 to ~1000 CPU ms with them on Eigen
(`bench/resnet_variants.py flaxbn`, docs/performance.md).

Applied by the entry points (`kdjax.platform.apply`, from `launch/runtime.py`) before the first
JAX computation, never by `import kdjax`; a user's own `--xla_cpu_experimental_ynn_fusion_type` in XLA_FLAGS wins, and
`KDJAX_XLA_CPU_DEFAULTS=0` leaves XLA's defaults alone. Only for the jaxlib versions it was
measured on: XLA aborts on a flag it does not know, and this one is experimental.
"""
from __future__ import annotations

import functools
import importlib.metadata
import os

YNN_FLAG = "--xla_cpu_experimental_ynn_fusion_type"
YNN_VALUE = "individual_dot"
MEASURED_JAXLIB = ("0.10",)


@functools.lru_cache(maxsize=None)  # asked once per convolution traced (onednn_conv.enabled)
def jaxlib_minor() -> str:
    try:
        return ".".join(importlib.metadata.version("jaxlib").split(".")[:2])
    except importlib.metadata.PackageNotFoundError:
        return ""


def apply_defaults(environ=os.environ) -> bool:
    """Add the settings above to environ['XLA_FLAGS']; True when they were added."""
    switch = environ.get("KDJAX_XLA_CPU_DEFAULTS", "1")
    if switch not in ("0", "1"):
        raise ValueError(f"KDJAX_XLA_CPU_DEFAULTS must be 0 or 1, got {switch!r}")
    if switch == "0" or jaxlib_minor() not in MEASURED_JAXLIB:
        return False
    flags = environ.get("XLA_FLAGS", "")
    if YNN_FLAG in flags:
        return False
    environ["XLA_FLAGS"] = f"{flags} {YNN_FLAG}={YNN_VALUE}".strip()
    return True
