"""ShuffleNetV2 (Ma et al. 2018) in the CIFAR form of RepDistiller/SimKD, used by DiSK (Table 6:
1.4M params, 44.5M MACs on CIFAR-100).

Stages of one stride-2 down unit (two branches: dw3x3/2-BN-pw-BN-ReLU | pw-BN-ReLU-dw3x3/2-BN-pw-BN-ReLU,
concatenated) and n basic units (channel split in halves, one half through pw-BN-ReLU-dw3x3-BN-pw-BN-ReLU,
concatenated back), each followed by a 2-group channel shuffle; then a 1x1 conv-BN-ReLU, global pool,
dense. Net size 1: stage outputs (116, 232, 464), basic units (3, 7, 3), last conv 1024.
Stem: a 1x1 conv to 24 channels (the CIFAR code) for <= 64 px inputs; 224 px inputs get the paper's
3x3/2 conv + 3x3/2 max pool.
"""
from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

from kdjax.models.layers import (Dtype, batch_norm, classifier, conv, global_avg_pool,
                                 is_large_input)

CONFIGS = {0.5: ((48, 96, 192), 1024), 1.0: ((116, 232, 464), 1024),
           1.5: ((176, 352, 704), 1024), 2.0: ((224, 488, 976), 2048)}


def channel_shuffle(x: jnp.ndarray, groups: int = 2) -> jnp.ndarray:
    """NHWC channel shuffle: channel g*(C/groups)+i moves to i*groups+g."""
    b, h, w, c = x.shape
    return x.reshape(b, h, w, groups, c // groups).swapaxes(3, 4).reshape(b, h, w, c)


class ShuffleUnit(nn.Module):
    features: int
    down: bool = False
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jnp.ndarray, train: bool) -> jnp.ndarray:
        def cbr(y, f, k, s=1, groups=1, relu=True, name=""):
            y = conv(f, k, s, dtype=self.dtype, groups=groups, name=name)(y)
            y = batch_norm(train, self.dtype, name=name + "_bn")(y)
            return nn.relu(y) if relu else y

        if self.down:
            mid = self.features // 2
            c_in = x.shape[-1]
            left = cbr(x, c_in, 3, 2, groups=c_in, relu=False, name="left_dw")
            left = cbr(left, mid, 1, name="left_pw")
            right = cbr(x, mid, 1, name="right_pw1")
            right = cbr(right, mid, 3, 2, groups=mid, relu=False, name="right_dw")
            right = cbr(right, mid, 1, name="right_pw2")
            out = jnp.concatenate([left, right], axis=-1)
        else:
            half = x.shape[-1] // 2
            keep, y = x[..., :half], x[..., half:]
            c = y.shape[-1]
            y = cbr(y, c, 1, name="pw1")
            y = cbr(y, c, 3, groups=c, relu=False, name="dw")
            y = cbr(y, c, 1, name="pw2")
            out = jnp.concatenate([keep, y], axis=-1)
        return channel_shuffle(out, 2)


class ShuffleNetV2(nn.Module):
    num_classes: int
    net_size: float = 1.0
    num_blocks: Sequence[int] = (3, 7, 3)
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jnp.ndarray, train: bool = False) -> tuple[jnp.ndarray, jnp.ndarray]:
        if self.net_size not in CONFIGS:
            raise ValueError(f"ShuffleNetV2 net_size must be one of {sorted(CONFIGS)}, "
                             f"got {self.net_size}")
        widths, last = CONFIGS[self.net_size]
        large = is_large_input(x)
        h = conv(24, 3 if large else 1, 2 if large else 1, dtype=self.dtype,
                 name="stem_conv")(x.astype(self.dtype))
        h = nn.relu(batch_norm(train, self.dtype, name="stem_bn")(h))
        if large:
            h = nn.max_pool(h, (3, 3), strides=(2, 2), padding=[(1, 1), (1, 1)])
        for s, (width, n) in enumerate(zip(widths, self.num_blocks)):
            h = ShuffleUnit(width, down=True, dtype=self.dtype, name=f"stage{s + 1}_down")(h, train)
            for b in range(n):
                h = ShuffleUnit(width, dtype=self.dtype, name=f"stage{s + 1}_unit{b}")(h, train)
        h = conv(last, 1, dtype=self.dtype, name="last_conv")(h)
        h = nn.relu(batch_norm(train, self.dtype, name="last_bn")(h))
        return classifier(global_avg_pool(h), self.num_classes, self.dtype)


def register(registry: dict) -> None:
    registry["shufflenetv2"] = lambda num_classes, **kw: ShuffleNetV2(num_classes, **kw)
    registry["shufflenetv2_0_5"] = lambda num_classes, **kw: ShuffleNetV2(
        num_classes, net_size=0.5, **kw)
