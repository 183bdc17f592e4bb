"""Wide ResNet WRN-d-k (Zagoruyko & Komodakis 2016) as in RepDistiller/CRD.

n = (d - 4) / 6 pre-activation BasicBlocks per stage, widths [16, 16k, 32k, 64k]; a block is
BN-ReLU-conv3x3(stride)-BN-ReLU-conv3x3 with a 1x1 conv shortcut (taking the pre-activated input)
when the width changes; head BN-ReLU-pool-dense. Optional dropout between the convs (`drop_rate`).
"""
from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from kdjax.models.layers import Dtype, batch_norm, classifier, conv, global_avg_pool, stem


class WideBlock(nn.Module):
    features: int
    strides: int = 1
    drop_rate: float = 0.0
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jnp.ndarray, train: bool) -> jnp.ndarray:
        equal = x.shape[-1] == self.features and self.strides == 1
        a = nn.relu(batch_norm(train, self.dtype, name="bn1")(x))
        y = conv(self.features, 3, self.strides, dtype=self.dtype, name="conv1")(a)
        y = nn.relu(batch_norm(train, self.dtype, name="bn2")(y))
        if self.drop_rate > 0:
            y = nn.Dropout(self.drop_rate, deterministic=not train)(y)
        y = conv(self.features, 3, dtype=self.dtype, name="conv2")(y)
        shortcut = x if equal else conv(self.features, 1, self.strides, dtype=self.dtype,
                                        name="shortcut")(a)
        return shortcut + y


class WideResNet(nn.Module):
    num_classes: int
    depth: int = 16
    widen: int = 2
    drop_rate: float = 0.0
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jnp.ndarray, train: bool = False) -> tuple[jnp.ndarray, jnp.ndarray]:
        if (self.depth - 4) % 6 != 0:
            raise ValueError(f"WRN depth must be 6n+4, got {self.depth}")
        n = (self.depth - 4) // 6
        h = stem(x, 16, self.dtype)
        for s, width in enumerate((16 * self.widen, 32 * self.widen, 64 * self.widen)):
            for b in range(n):
                h = WideBlock(width, 2 if (s > 0 and b == 0) else 1, self.drop_rate, self.dtype,
                              name=f"stage{s + 1}_block{b}")(h, train)
        h = nn.relu(batch_norm(train, self.dtype, name="final_bn")(h))
        return classifier(global_avg_pool(h), self.num_classes, self.dtype)


CONFIGS = ((16, 1), (16, 2), (16, 3), (16, 4), (16, 6), (16, 8), (28, 10), (40, 1), (40, 2),
           (40, 4))


def register(registry: dict) -> None:
    for d, k in CONFIGS:
        registry[f"wrn_{d}_{k}"] = lambda num_classes, _d=d, _k=k, **kw: WideResNet(
            num_classes, depth=_d, widen=_k, **kw)
