"""kdjax: robust knowledge distillation in JAX/Flax.

Importing kdjax changes nothing in the process: the CPU settings the entry points apply (XLA
flags, malloc, oneDNN convolutions) live in `kdjax.platform`, which only they import.
"""

__version__ = "0.1.0"
