"""kdjax: robust knowledge distillation in JAX/Flax."""
from kdjax import xla_cpu as _xla_cpu

_xla_cpu.apply_defaults()

__version__ = "0.1.0"
