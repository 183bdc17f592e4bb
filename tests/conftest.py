"""Test-wide setup: 8 fake CPU devices, so sharded code paths run on any machine."""
import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

# pytest formats an unraisable exception (e.g. a finalizer's ResourceWarning) with tracemalloc,
# imported on first use. When that first use falls inside a TFDS call, TFDS's lazy-import block
# (etils.epy.lazy_imports) turns tracemalloc's own imports into LazyModules and the report
# itself fails the test. Imported here, up front, it is always the real module.
import tracemalloc  # noqa: E402,F401

# The test process runs with the settings the entry points apply (launch/runtime.py); the
# subprocesses it starts through launch.* apply their own. No persistent compilation cache here,
# so the oneDNN convolution is installed (used only where one CPU device is, i.e. not with the 8
# above unless a test forces it with KDJAX_ONEDNN_CONV=1).
from kdjax import platform  # noqa: E402

platform.apply(persistent_cache=False)
