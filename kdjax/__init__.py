"""kdjax: robust knowledge distillation in JAX/Flax."""
from kdjax import host_heap as _host_heap
from kdjax import xla_cpu as _xla_cpu

_xla_cpu.apply_defaults()
_host_heap.keep()

__version__ = "0.1.0"
