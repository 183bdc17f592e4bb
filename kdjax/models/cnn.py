"""Small CNN for 28x28 grey images (Fashion-MNIST): two conv-BN-ReLU-maxpool blocks and a dense layer.

Fast on CPU; the quick-demo teacher/student. `widths`/`hidden` give larger or smaller variants.
Inputs larger than 32x32 are average-pooled to at most 8x8 before flattening, so the dense layer stays
small at any input size.
"""
from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

from kdjax.models.layers import Dtype, batch_norm, classifier, conv, max_pool_2x2


class SmallCNN(nn.Module):
    num_classes: int
    widths: Sequence[int] = (32, 64)
    hidden: int = 128
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jnp.ndarray, train: bool = False) -> tuple[jnp.ndarray, jnp.ndarray]:
        if x.ndim != 4:
            raise ValueError(f"SmallCNN expects NHWC images, got shape {x.shape}")
        h = x.astype(self.dtype)
        for i, width in enumerate(self.widths):
            h = conv(width, 3, dtype=self.dtype, name=f"conv_{i}")(h)
            h = nn.relu(batch_norm(train, self.dtype, name=f"bn_{i}")(h))
            h = max_pool_2x2(h)
        side = max(h.shape[1], h.shape[2])
        if side > 8:
            k = -(-side // 8)  # ceil: pool to at most 8x8
            h = nn.avg_pool(h, (k, k), strides=(k, k), padding="SAME")
        h = h.reshape((h.shape[0], -1))
        h = nn.relu(nn.Dense(self.hidden, dtype=self.dtype, param_dtype=jnp.float32,
                             name="dense")(h))
        return classifier(h, self.num_classes, self.dtype)
