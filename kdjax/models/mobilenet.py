"""MobileNet v1 (Howard et al. 2017), Keras-applications layout, with width and depth multipliers.

RAD (Sec. 4, App. D.1) distils a MobileNet with multiplier 2 (teacher) into one with multiplier 1
(student). The main text says "depth multiplier", the appendix "width parameter"; both knobs exist:
`alpha` scales every layer's channels (width multiplier), `depth_multiplier` the depthwise convs'
channel multiplier (Keras semantics: each depthwise conv outputs in_channels * depth_multiplier).
Layers: conv3x3(32a)-BN-ReLU6, then 13 depthwise-separable blocks (dw3x3-BN-ReLU6-pw1x1-BN-ReLU6) with
widths 64,128,128,256,256,512x6,1024,1024 and strides 1,2,1,2,1,2,1,1,1,1,1,2,1; global pool; a dense
head (Keras' 1x1 conv). Small inputs (<= 64 px) use a stride-1 first conv, 224 px the stride-2 one.
"""
from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from kdjax.models.layers import (Dtype, batch_norm, classifier, conv, global_avg_pool,
                                 is_large_input)

BLOCKS = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1), (512, 1), (512, 1),
          (512, 1), (512, 1), (1024, 2), (1024, 1))


class MobileNet(nn.Module):
    num_classes: int
    alpha: float = 1.0
    depth_multiplier: int = 1
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jnp.ndarray, train: bool = False) -> tuple[jnp.ndarray, jnp.ndarray]:
        if self.alpha <= 0 or self.depth_multiplier < 1:
            raise ValueError(f"need alpha > 0 and integer depth_multiplier >= 1, got "
                             f"{self.alpha}, {self.depth_multiplier}")

        def bn_relu6(y, name):
            return nn.relu6(batch_norm(train, self.dtype, name=name)(y))

        h = conv(int(32 * self.alpha), 3, 2 if is_large_input(x) else 1, dtype=self.dtype,
                 name="stem_conv")(x.astype(self.dtype))
        h = bn_relu6(h, "stem_bn")
        for i, (width, strides) in enumerate(BLOCKS):
            c_in = h.shape[-1]
            h = conv(c_in * self.depth_multiplier, 3, strides, dtype=self.dtype, groups=c_in,
                     name=f"dw{i}")(h)
            h = bn_relu6(h, f"dw{i}_bn")
            h = conv(int(width * self.alpha), 1, dtype=self.dtype, name=f"pw{i}")(h)
            h = bn_relu6(h, f"pw{i}_bn")
        return classifier(global_avg_pool(h), self.num_classes, self.dtype)


def register(registry: dict) -> None:
    registry["mobilenet"] = lambda num_classes, **kw: MobileNet(num_classes, **kw)
    registry["mobilenet_d2"] = lambda num_classes, **kw: MobileNet(
        num_classes, depth_multiplier=2, **kw)
    registry["mobilenet_w2"] = lambda num_classes, **kw: MobileNet(num_classes, alpha=2.0, **kw)
