"""Model zoo: `get_model(name, num_classes, **kw)` returns a flax.linen Module.

Every module is called as `module.apply(variables, x, train=False) -> (logits, features)` with
float32 logits (B, num_classes) and penultimate features (B, F). BatchNorm models carry
'batch_stats'; in training call `apply(..., train=True, mutable=['batch_stats'])`.
Keyword `dtype` sets the compute dtype (parameters stay float32). Your own model follows the
same contract and is named by import path, 'package.module:Constructor' (kdjax/models/custom.py).
"""
from __future__ import annotations

from typing import Callable

import flax.linen as nn

from kdjax import errors, import_path
from kdjax.models import (cnn, custom, densenet, mlp, mobilenet, mobilenet_v2, resnet,
                          resnet_cifar, resnet_v2, shufflenet_v2, vgg, wrn)

_REGISTRY: dict[str, Callable[..., nn.Module]] = {
    "mlp": lambda num_classes, **kw: mlp.MLP(num_classes, **kw),
    "cnn_small": lambda num_classes, **kw: cnn.SmallCNN(num_classes, **kw),
}
for _family in (resnet_cifar, resnet_v2, wrn, resnet, mobilenet, mobilenet_v2, shufflenet_v2,
                densenet, vgg):
    _family.register(_REGISTRY)


def list_models() -> list[str]:
    """Names accepted by `get_model`, sorted."""
    return sorted(_REGISTRY)


def get_model(name: str, num_classes: int, **kw) -> nn.Module:
    """Build the model registered as `name`, or the user's constructor `name` =
    'package.module:Constructor' (kdjax/models/custom.py), with a `num_classes`-way head.

    Raises ValueError for an unknown name (listing the known ones) or a non-positive num_classes.
    """
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
    if import_path.is_path(name):
        return custom.build(name, num_classes, **kw)
    if name not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(list_models())} "
                         "(or your own as 'package.module:Constructor', docs/custom_models.md)")
    try:
        return _REGISTRY[name](num_classes, **kw)
    except TypeError as err:   # a constructor argument the model does not take
        if "unexpected keyword argument" not in str(err):
            raise
        raise errors.ConfigError(f"model {name!r} does not take the constructor arguments "
                                 f"{sorted(kw)} (model.kwargs / teacher.kwargs): {err}") from None


from kdjax.models.from_torch import ConversionError, from_torch, is_torch_checkpoint  # noqa: E402

__all__ = ["ConversionError", "from_torch", "get_model", "is_torch_checkpoint", "list_models"]
