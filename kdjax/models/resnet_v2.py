"""Pre-activation ResNet v2 for CIFAR (He et al. 2016b), as in the Keras CIFAR-10 ResNet example.

The RAD paper's ResNetV2-{11, 20, 29} students and ResNetV2-{56, 110} teachers (RAD Sec. 4, App. D.1;
RAD trained with Keras-style TPU code): depth = 9n + 2, three stages of n bottleneck units
(BN-ReLU-conv1x1 -> BN-ReLU-conv3x3 -> BN-ReLU-conv1x1), bottleneck widths 16/64/128 and outputs
64/128/256; the stem is conv-BN-ReLU, the first unit of the first stage skips its leading BN-ReLU,
the first unit of each stage has a 1x1 projection shortcut (stride 2 in stages 2, 3, carried by the
first 1x1 conv as in Keras); convs carry biases (Keras default); head BN-ReLU-pool-dense.
"""
from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from kdjax.models.layers import (Dtype, batch_norm, classifier, conv, global_avg_pool, he_normal,
                                 stem)


class PreActBottleneck(nn.Module):
    width: int
    out_features: int
    strides: int = 1
    preact: bool = True       # False only for the very first unit (stem already did BN-ReLU)
    project: bool = False     # 1x1 projection shortcut (first unit of a stage)
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jnp.ndarray, train: bool) -> jnp.ndarray:
        def c(f, k, s=1, name=None):
            return conv(f, k, s, dtype=self.dtype, use_bias=True, kernel_init=he_normal, name=name)

        y = x
        if self.preact:
            y = nn.relu(batch_norm(train, self.dtype, name="bn1")(y))
        y = c(self.width, 1, self.strides, name="conv1")(y)
        y = nn.relu(batch_norm(train, self.dtype, name="bn2")(y))
        y = c(self.width, 3, name="conv2")(y)
        y = nn.relu(batch_norm(train, self.dtype, name="bn3")(y))
        y = c(self.out_features, 1, name="conv3")(y)
        if self.project:
            x = c(self.out_features, 1, self.strides, name="proj")(x)
        return x + y


class ResNetV2(nn.Module):
    num_classes: int
    depth: int = 20
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jnp.ndarray, train: bool = False) -> tuple[jnp.ndarray, jnp.ndarray]:
        if (self.depth - 2) % 9 != 0:
            raise ValueError(f"ResNetV2 depth must be 9n+2, got {self.depth}")
        n = (self.depth - 2) // 9
        width = 16
        h = stem(x, width, self.dtype, use_bias=True, kernel_init=he_normal,
                 norm_act=lambda y: nn.relu(batch_norm(train, self.dtype, name="stem_bn")(y)))
        for s in range(3):
            out = width * 4 if s == 0 else width * 2
            for b in range(n):
                h = PreActBottleneck(width, out, strides=2 if (s > 0 and b == 0) else 1,
                                     preact=not (s == 0 and b == 0), project=(b == 0),
                                     dtype=self.dtype, name=f"stage{s + 1}_block{b}")(h, train)
            width = out
        h = nn.relu(batch_norm(train, self.dtype, name="final_bn")(h))
        return classifier(global_avg_pool(h), self.num_classes, self.dtype, kernel_init=he_normal)


DEPTHS = (11, 20, 29, 56, 110)


def register(registry: dict) -> None:
    for d in DEPTHS:
        registry[f"resnetv2_{d}"] = lambda num_classes, _d=d, **kw: ResNetV2(
            num_classes, depth=_d, **kw)
