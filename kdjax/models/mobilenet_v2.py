"""MobileNetV2 (Sandler et al. 2018) in the CIFAR form of RepDistiller/CRD/SimKD, used by DiSK.

Inverted residuals (pw1x1 expand-BN-ReLU, dw3x3-BN-ReLU, pw1x1-BN, identity skip when shapes match;
the expansion conv is present even for t = 1, as in that code), settings (t, c, n, s) =
(1,16,1,1) (6,24,2,1) (6,32,3,2) (6,64,4,2) (6,96,3,1) (6,160,3,2) (6,320,1,1), a stride-2 3x3 stem,
a 1x1 conv to 1280 (1280 * width if width > 1), global pool, dense.
`width` multiplies channels: RepDistiller's "MobileNetV2" student is width 0.5 ('mobilenetv2_half');
DiSK's "MobileNetV2x2" (Table 2/6: 2.4M params, 22M MACs on CIFAR-100) doubles it to width 1.0
('mobilenetv2_x2' == 'mobilenetv2'). 224 px inputs use the ImageNet stride 2 in the second setting.
"""
from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from kdjax.models.layers import (Dtype, batch_norm, classifier, conv, global_avg_pool,
                                 is_large_input)


class InvertedResidual(nn.Module):
    features: int
    strides: int
    expand: int
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jnp.ndarray, train: bool) -> jnp.ndarray:
        hidden = x.shape[-1] * self.expand
        y = conv(hidden, 1, dtype=self.dtype, name="expand")(x)
        y = nn.relu(batch_norm(train, self.dtype, name="expand_bn")(y))
        y = conv(hidden, 3, self.strides, dtype=self.dtype, groups=hidden, name="dw")(y)
        y = nn.relu(batch_norm(train, self.dtype, name="dw_bn")(y))
        y = conv(self.features, 1, dtype=self.dtype, name="project")(y)
        y = batch_norm(train, self.dtype, name="project_bn")(y)
        return x + y if (self.strides == 1 and x.shape[-1] == self.features) else y


class MobileNetV2(nn.Module):
    num_classes: int
    width: float = 1.0
    expand: int = 6
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jnp.ndarray, train: bool = False) -> tuple[jnp.ndarray, jnp.ndarray]:
        if self.width <= 0:
            raise ValueError(f"width must be positive, got {self.width}")
        t = self.expand
        settings = ((1, 16, 1, 1), (t, 24, 2, 2 if is_large_input(x) else 1), (t, 32, 3, 2),
                    (t, 64, 4, 2), (t, 96, 3, 1), (t, 160, 3, 2), (t, 320, 1, 1))
        h = conv(int(32 * self.width), 3, 2, dtype=self.dtype, name="stem_conv")(
            x.astype(self.dtype))
        h = nn.relu(batch_norm(train, self.dtype, name="stem_bn")(h))
        for i, (e, c, n, s) in enumerate(settings):
            for b in range(n):
                h = InvertedResidual(int(c * self.width), s if b == 0 else 1, e, self.dtype,
                                     name=f"block{i}_{b}")(h, train)
        last = int(1280 * self.width) if self.width > 1.0 else 1280
        h = conv(last, 1, dtype=self.dtype, name="last_conv")(h)
        h = nn.relu(batch_norm(train, self.dtype, name="last_bn")(h))
        return classifier(global_avg_pool(h), self.num_classes, self.dtype)


def register(registry: dict) -> None:
    registry["mobilenetv2"] = lambda num_classes, **kw: MobileNetV2(num_classes, **kw)
    registry["mobilenetv2_x2"] = lambda num_classes, **kw: MobileNetV2(num_classes, width=1.0, **kw)
    registry["mobilenetv2_half"] = lambda num_classes, **kw: MobileNetV2(
        num_classes, width=0.5, **kw)
