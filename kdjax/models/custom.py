"""Your own model by import path: `model.name = 'package.module:Constructor'` (or teacher.name).

The constructor is anything callable as `Constructor(num_classes=K, **model.kwargs)` that
returns a `flax.linen.Module` (a Module class, or a function building one). The module follows
the zoo's contract (kdjax/models/__init__.py), checked when it is initialised
(`kdjax.train.state.check_outputs`):

    module.apply(variables, x, train=False) -> (logits (B, K), penultimate features (B, F))

with x a batch of the dataset's images (B, H, W, C) or vectors (B, D); BatchNorm statistics go
in the 'batch_stats' collection. docs/custom_models.md has a ten-line example.
"""
from __future__ import annotations

import inspect

import flax.linen as nn

from kdjax import errors, import_path


def build(path: str, num_classes: int, **kwargs) -> nn.Module:
    """`Constructor(num_classes=num_classes, **kwargs)` of the constructor `path` names."""
    constructor = import_path.resolve(path, "model")
    try:
        inspect.signature(constructor).bind(num_classes=num_classes, **kwargs)
    except TypeError as err:
        raise errors.ConfigError(f"model {path!r} cannot be called with num_classes and "
                                 f"model.kwargs {sorted(kwargs)}: {err}") from None
    except ValueError:   # no signature to inspect (a builtin): the call below decides
        pass
    module = constructor(num_classes=num_classes, **kwargs)
    if not isinstance(module, nn.Module):
        raise errors.ConfigError(f"model {path!r} returned a {type(module).__name__}, not a "
                                 "flax.linen.Module")
    return module
