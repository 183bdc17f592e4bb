"""Multi-layer perceptron: flattens its input, ReLU hidden layers, linear head."""
from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

from kdjax.models.layers import Dtype, classifier


class MLP(nn.Module):
    """Features are the last hidden activation (the input itself when `hidden` is empty)."""
    num_classes: int
    hidden: Sequence[int] = (256, 256)
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jnp.ndarray, train: bool = False) -> tuple[jnp.ndarray, jnp.ndarray]:
        del train  # no BatchNorm / dropout
        if x.ndim < 2:
            raise ValueError(f"MLP expects a batch (B, ...), got shape {x.shape}")
        h = x.reshape((x.shape[0], -1)).astype(self.dtype)
        for i, width in enumerate(self.hidden):
            h = nn.relu(nn.Dense(width, dtype=self.dtype, param_dtype=jnp.float32,
                                 name=f"dense_{i}")(h))
        return classifier(h, self.num_classes, self.dtype)
