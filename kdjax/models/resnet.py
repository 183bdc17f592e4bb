"""Four-stage ResNet (He et al. 2016): ImageNet ResNet-18/34/50 and the DiSK ResNet10 family.

Stages of BasicBlocks (conv3x3-BN-ReLU-conv3x3-BN + shortcut, ReLU) or Bottlenecks (1x1-3x3-1x1,
expansion 4, stride on the 3x3 as torchvision); a 1x1 conv + BN projection shortcut where the shape
changes. Stage strides 1, 2, 2, 2. The stem follows `layers.stem`: 224x224 inputs get the ImageNet
7x7/2 conv + max pool (torchvision resnet18/34/50: 11.7M/21.8M/25.6M params); 32x32 and 64x64 inputs a
3x3/1 conv (the CIFAR/Tiny-ImageNet variant of DiSK App. A.4, Table 5: e.g. ResNet18 11.22M params and
555M MACs on CIFAR-100, 11.27M and 2221M on Tiny-ImageNet). The stem has `filters[0]` channels.

DiSK App. A.4 (four BasicBlock stages, blocks per stage / filters per stage):
ResNet34 [3,4,6,3]/[64,128,256,512]; ResNet18 [2,2,2,2]/same; ResNet10 [1,1,1,1]/same;
ResNet10-l [32,64,128,256]; -m [16,32,64,128]; -s [8,16,32,64]; -xs [8,16,16,32]; -xxs [8,8,16,16].
"""
from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

from kdjax.models.layers import Dtype, batch_norm, classifier, conv, global_avg_pool, stem


class BasicBlock(nn.Module):
    features: int
    strides: int = 1
    dtype: Dtype = jnp.float32
    expansion = 1

    @nn.compact
    def __call__(self, x: jnp.ndarray, train: bool) -> jnp.ndarray:
        y = conv(self.features, 3, self.strides, dtype=self.dtype, name="conv1")(x)
        y = nn.relu(batch_norm(train, self.dtype, name="bn1")(y))
        y = conv(self.features, 3, dtype=self.dtype, name="conv2")(y)
        y = batch_norm(train, self.dtype, name="bn2")(y)
        return nn.relu(_shortcut(x, self.features, self.strides, train, self.dtype) + y)


class Bottleneck(nn.Module):
    features: int  # bottleneck width; output has 4x as many channels
    strides: int = 1
    dtype: Dtype = jnp.float32
    expansion = 4

    @nn.compact
    def __call__(self, x: jnp.ndarray, train: bool) -> jnp.ndarray:
        out = self.features * self.expansion
        y = conv(self.features, 1, dtype=self.dtype, name="conv1")(x)
        y = nn.relu(batch_norm(train, self.dtype, name="bn1")(y))
        y = conv(self.features, 3, self.strides, dtype=self.dtype, name="conv2")(y)
        y = nn.relu(batch_norm(train, self.dtype, name="bn2")(y))
        y = conv(out, 1, dtype=self.dtype, name="conv3")(y)
        y = batch_norm(train, self.dtype, name="bn3")(y)
        return nn.relu(_shortcut(x, out, self.strides, train, self.dtype) + y)


def _shortcut(x, features, strides, train, dtype):
    """Identity, or 1x1 conv + BN projection when the shape changes (called inside a block)."""
    if strides == 1 and x.shape[-1] == features:
        return x
    x = conv(features, 1, strides, dtype=dtype, name="down_conv")(x)
    return batch_norm(train, dtype, name="down_bn")(x)


class ResNet(nn.Module):
    num_classes: int
    stage_sizes: Sequence[int] = (2, 2, 2, 2)
    filters: Sequence[int] = (64, 128, 256, 512)
    bottleneck: bool = False
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jnp.ndarray, train: bool = False) -> tuple[jnp.ndarray, jnp.ndarray]:
        if len(self.stage_sizes) != len(self.filters):
            raise ValueError(f"stage_sizes {self.stage_sizes} and filters {self.filters} differ "
                             "in length")
        block = Bottleneck if self.bottleneck else BasicBlock
        h = stem(x, self.filters[0], self.dtype,
                 norm_act=lambda y: nn.relu(batch_norm(train, self.dtype, name="stem_bn")(y)))
        for s, (n, width) in enumerate(zip(self.stage_sizes, self.filters)):
            for b in range(n):
                h = block(width, 2 if (s > 0 and b == 0) else 1, self.dtype,
                          name=f"stage{s + 1}_block{b}")(h, train)
        return classifier(global_avg_pool(h), self.num_classes, self.dtype)


IMAGENET = {"resnet18": ((2, 2, 2, 2), False), "resnet34": ((3, 4, 6, 3), False),
            "resnet50": ((3, 4, 6, 3), True), "resnet101": ((3, 4, 23, 3), True)}
DISK_RESNET10 = {"resnet10": (64, 128, 256, 512), "resnet10_l": (32, 64, 128, 256),
                 "resnet10_m": (16, 32, 64, 128), "resnet10_s": (8, 16, 32, 64),
                 "resnet10_xs": (8, 16, 16, 32), "resnet10_xxs": (8, 8, 16, 16)}


def register(registry: dict) -> None:
    for name, (sizes, bottleneck) in IMAGENET.items():
        registry[name] = lambda num_classes, _s=sizes, _b=bottleneck, **kw: ResNet(
            num_classes, stage_sizes=_s, bottleneck=_b, **kw)
    for name, filters in DISK_RESNET10.items():
        registry[name] = lambda num_classes, _f=filters, **kw: ResNet(
            num_classes, stage_sizes=(1, 1, 1, 1), filters=_f, **kw)
