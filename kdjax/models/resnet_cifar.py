"""CIFAR ResNet v1 (He et al. 2016, Sec. 4.2) as in RepDistiller/CRD (Tian et al. 2020).

depth = 6n + 2 with three stages of n BasicBlocks; filters [16, 16, 32, 64] (resnet8..110) or
[32, 64, 128, 256] (the "x4" nets resnet8x4, resnet32x4). Shortcuts are identity, or a 1x1 conv + BN
when the shape changes (option B, as RepDistiller). Features = global-average-pooled last stage.
"""
from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

from kdjax.models.layers import (Dtype, batch_norm, classifier, conv, global_avg_pool,
                                 materialize, stem)


class BasicBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN, plus shortcut, then ReLU.

    materialize: write the inner activation and the block output once to their own buffers
        (`layers.materialize`; same numbers, ~30% less CPU time per train step).
    fused_bn: `layers.FusedBatchNorm` (hand-written backward, channel sums as matrix-vector
        products on CPU; same variables); False: flax's nn.BatchNorm.
    """
    features: int
    strides: int = 1
    dtype: Dtype = jnp.float32
    materialize: bool = True
    fused_bn: bool = True

    @nn.compact
    def __call__(self, x: jnp.ndarray, train: bool) -> jnp.ndarray:
        y = conv(self.features, 3, self.strides, dtype=self.dtype, name="conv1")(x)
        keep = materialize if self.materialize else (lambda v: v)
        bn = lambda name: batch_norm(train, self.dtype, name=name, fused=self.fused_bn)
        y = keep(nn.relu(bn("bn1")(y)))
        y = conv(self.features, 3, dtype=self.dtype, name="conv2")(y)
        y = bn("bn2")(y)
        if self.strides != 1 or x.shape[-1] != self.features:
            x = conv(self.features, 1, self.strides, dtype=self.dtype, name="down_conv")(x)
            x = bn("down_bn")(x)
        return keep(nn.relu(x + y))


class CifarResNet(nn.Module):
    """materialize: also after the stem's BN-ReLU; fused_bn: every BatchNorm; see BasicBlock
    (execution options only: parameters and outputs equal)."""
    num_classes: int
    depth: int = 20
    filters: Sequence[int] = (16, 16, 32, 64)
    dtype: Dtype = jnp.float32
    materialize: bool = True
    fused_bn: bool = True

    @nn.compact
    def __call__(self, x: jnp.ndarray, train: bool = False) -> tuple[jnp.ndarray, jnp.ndarray]:
        if (self.depth - 2) % 6 != 0:
            raise ValueError(f"CIFAR ResNet depth must be 6n+2, got {self.depth}")
        n = (self.depth - 2) // 6
        keep = materialize if self.materialize else (lambda v: v)
        h = stem(x, self.filters[0], self.dtype, norm_act=lambda y: keep(
            nn.relu(batch_norm(train, self.dtype, name="stem_bn", fused=self.fused_bn)(y))))
        for s, width in enumerate(self.filters[1:]):
            for b in range(n):
                strides = 2 if (s > 0 and b == 0) else 1
                h = BasicBlock(width, strides, self.dtype, self.materialize, self.fused_bn,
                               name=f"stage{s + 1}_block{b}")(h, train)
        return classifier(global_avg_pool(h), self.num_classes, self.dtype)


DEPTHS = (8, 14, 20, 26, 32, 44, 56, 110)
X4_DEPTHS = (8, 32)


def register(registry: dict) -> None:
    for d in DEPTHS:
        registry[f"resnet{d}"] = lambda num_classes, _d=d, **kw: CifarResNet(
            num_classes, depth=_d, **kw)
    for d in X4_DEPTHS:
        registry[f"resnet{d}x4"] = lambda num_classes, _d=d, **kw: CifarResNet(
            num_classes, depth=_d, filters=(32, 64, 128, 256), **kw)
