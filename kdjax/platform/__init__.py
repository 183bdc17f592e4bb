"""Process settings an entry point applies before its first JAX computation; `import kdjax` never
does (docs/performance.md, "Platform settings"):

- `xla_cpu`: XLA:CPU flags (YNNPACK off convolutions); `KDJAX_XLA_CPU_DEFAULTS=0` leaves XLA's;
- `host_heap`: glibc malloc kept from unmapping XLA's per-step buffers; `KDJAX_HOST_HEAP=0|1`;
- `onednn_conv`: float32 convolutions as oneDNN direct convolutions, installed in the models
  through `kdjax.models.layers.set_conv`; `KDJAX_ONEDNN_CONV=0|1`.

Each is on by default where it was measured faster. The oneDNN convolution and JAX's persistent
compilation cache exclude each other (jaxlib 0.10 cannot serialise an executable holding it,
`onednn_conv`): left to itself it is installed only in a process without the cache;
`KDJAX_ONEDNN_CONV=1` installs it and `apply` says the cache must stay off.
`launch/runtime.py` calls `apply`; `settings()` is what a run records in its provenance.
"""
from __future__ import annotations

import os

SWITCHES = ("KDJAX_XLA_CPU_DEFAULTS", "KDJAX_HOST_HEAP", "KDJAX_ONEDNN_CONV")
_APPLIED: dict = {}


def onednn_wanted(persistent_cache: bool, environ=os.environ) -> bool:
    """Whether to install the oneDNN convolution (module docstring)."""
    switch = environ.get("KDJAX_ONEDNN_CONV", "")
    if switch not in ("", "0", "1"):
        raise ValueError(f"KDJAX_ONEDNN_CONV must be 0 or 1, got {switch!r}")
    return switch == "1" or (switch == "" and not persistent_cache)


def apply(*, persistent_cache: bool, environ=os.environ) -> dict:
    """Apply the settings above for a process that will (or will not) use JAX's persistent
    compilation cache. Returns what was done: {'xla_cpu_defaults', 'host_heap', 'onednn_conv',
    'persistent_cache'}, the last False where the oneDNN convolution rules the cache out."""
    from kdjax.platform import host_heap, xla_cpu
    onednn = onednn_wanted(persistent_cache, environ)
    _APPLIED.update(xla_cpu_defaults=xla_cpu.apply_defaults(environ),
                    host_heap=host_heap.keep(environ), onednn_conv=onednn,
                    persistent_cache=persistent_cache and not onednn)
    if onednn:
        from kdjax.models import layers
        from kdjax.platform import onednn_conv
        layers.set_conv(onednn_conv.conv_general_dilated)
    return dict(_APPLIED)


def settings() -> dict:
    """What this process runs with (for provenance; call after JAX's backend is configured):
    XLA_FLAGS, whether malloc was changed, which convolution the models use, the persistent
    compilation cache, the switches set, and whether an entry point applied them."""
    import jax

    from kdjax.models import layers
    from kdjax.platform import host_heap
    conv = layers.get_conv()
    if conv is jax.lax.conv_general_dilated:
        convolution = "xla"
    elif getattr(conv, "__module__", "") == f"{__name__}.onednn_conv":
        from kdjax.platform import onednn_conv
        convolution = "onednn" if onednn_conv.enabled() else "xla (oneDNN installed, not enabled)"
    else:
        convolution = f"{conv.__module__}.{conv.__qualname__}"
    return {"xla_flags": os.environ.get("XLA_FLAGS", ""), "host_heap": host_heap.kept(),
            "convolution": convolution,
            "compilation_cache": jax.config.jax_compilation_cache_dir or "",
            "switches": {k: os.environ[k] for k in SWITCHES if k in os.environ},
            "applied_by_entry_point": bool(_APPLIED)}
