"""DenseNet (Huang et al. 2017) for CIFAR, the basic (non-BC) form: DenseNet-40-12 (ALM-KD's student;
1.0M params in the DenseNet paper's Table 2).

depth L = 3 * n + 4: a 3x3 conv to 16 channels, three dense blocks of n = (L - 4) / 3 layers
(BN-ReLU-conv3x3 to `growth` channels, concatenated to the input), transitions BN-ReLU-conv1x1
(same width) - 2x2 average pool between blocks, then BN-ReLU, global pool, dense.
Optional dropout after each conv (`drop_rate`, 0.2 in the paper without augmentation).
"""
from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from kdjax.models.layers import Dtype, batch_norm, classifier, conv, global_avg_pool, stem


class DenseNet(nn.Module):
    num_classes: int
    depth: int = 40
    growth: int = 12
    drop_rate: float = 0.0
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jnp.ndarray, train: bool = False) -> tuple[jnp.ndarray, jnp.ndarray]:
        if (self.depth - 4) % 3 != 0:
            raise ValueError(f"DenseNet depth must be 3n+4, got {self.depth}")
        n = (self.depth - 4) // 3

        def bn_relu_conv(y, f, k, name):
            y = nn.relu(batch_norm(train, self.dtype, name=name + "_bn")(y))
            y = conv(f, k, dtype=self.dtype, name=name)(y)
            if self.drop_rate > 0:
                y = nn.Dropout(self.drop_rate, deterministic=not train)(y)
            return y

        h = stem(x, 16, self.dtype)
        for blk in range(3):
            for i in range(n):
                h = jnp.concatenate([h, bn_relu_conv(h, self.growth, 3, f"block{blk}_layer{i}")],
                                    axis=-1)
            if blk < 2:
                h = bn_relu_conv(h, h.shape[-1], 1, f"transition{blk}")
                h = nn.avg_pool(h, (2, 2), strides=(2, 2))
        h = nn.relu(batch_norm(train, self.dtype, name="final_bn")(h))
        return classifier(global_avg_pool(h), self.num_classes, self.dtype)


def register(registry: dict) -> None:
    registry["densenet40_12"] = lambda num_classes, **kw: DenseNet(num_classes, 40, 12, **kw)
