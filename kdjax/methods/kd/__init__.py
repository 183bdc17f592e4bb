"""Vanilla knowledge distillation (Hinton et al., 2015): the template every method follows.

Files: `method.py` (the plug-in `make_method(config, run) -> Method`). The loss itself is
`kdjax.losses.kd_loss`, shared with the methods that build on it.
"""
