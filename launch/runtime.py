"""Process-wide JAX settings shared by the entry points (launch.main, launch.reproduce)."""
from __future__ import annotations

import os

from absl import flags

COMPILATION_CACHE = flags.DEFINE_string(
    "compilation_cache", os.environ.get("JAX_COMPILATION_CACHE_DIR", os.path.join(
        os.path.expanduser("~"), ".cache", "kdjax", "xla")),
    "Directory of JAX's persistent compilation cache: every fit, active-learning round and "
    "sweep point reuses the executables an earlier process compiled. '' disables it.")
CPU_DEVICES = flags.DEFINE_integer(
    "cpu_devices", 0, "Split the host CPU into this many XLA devices (0: as is); the step then "
    "runs data-parallel over them. Applies to the CPU backend only. One device keeps kdjax's "
    "oneDNN convolutions, several use XLA's (docs/performance.md part 7).", lower_bound=0)


def apply() -> None:
    """Apply the flags above; call before the first JAX computation."""
    import jax
    if CPU_DEVICES.value:
        jax.config.update("jax_num_cpu_devices", CPU_DEVICES.value)
    if COMPILATION_CACHE.value:
        os.environ["JAX_COMPILATION_CACHE_DIR"] = COMPILATION_CACHE.value  # sweep subprocesses
        jax.config.update("jax_compilation_cache_dir", COMPILATION_CACHE.value)
        # Cache every executable: on a CPU most compiles are short, but a run makes many.
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)

