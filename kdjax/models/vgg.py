"""VGG with BatchNorm in the CIFAR form of RepDistiller/CRD (vgg8 = 'S', vgg13 = 'B' configs).

Five blocks of conv3x3(bias)-BN-ReLU layers; 2x2 max pool after blocks 1-3 (and after block 4 for
inputs exactly 64 px high, as that code's `if h == 64`), global average pool, one dense layer.
vgg8: [[64], [128], [256], [512], [512]]; vgg13: [[64, 64], [128, 128], [256, 256], [512, 512],
[512, 512]]; vgg11/16/19 follow torchvision's A/D/E layouts.
"""
from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

from kdjax.models.layers import Dtype, batch_norm, classifier, conv, global_avg_pool, max_pool_2x2

CONFIGS = {
    "vgg8": ((64,), (128,), (256,), (512,), (512,)),
    "vgg11": ((64,), (128,), (256, 256), (512, 512), (512, 512)),
    "vgg13": ((64, 64), (128, 128), (256, 256), (512, 512), (512, 512)),
    "vgg16": ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512)),
    "vgg19": ((64, 64), (128, 128), (256,) * 4, (512,) * 4, (512,) * 4),
}


class VGG(nn.Module):
    num_classes: int
    blocks: Sequence[Sequence[int]] = CONFIGS["vgg8"]
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jnp.ndarray, train: bool = False) -> tuple[jnp.ndarray, jnp.ndarray]:
        if len(self.blocks) != 5:
            raise ValueError(f"VGG expects 5 blocks, got {len(self.blocks)}")
        h = x.astype(self.dtype)
        for i, block in enumerate(self.blocks):
            for j, width in enumerate(block):
                h = conv(width, 3, dtype=self.dtype, use_bias=True, name=f"conv{i}_{j}")(h)
                h = nn.relu(batch_norm(train, self.dtype, name=f"bn{i}_{j}")(h))
            if i < 3 or (i == 3 and x.shape[1] == 64):
                h = max_pool_2x2(h)
        return classifier(global_avg_pool(h), self.num_classes, self.dtype)


def register(registry: dict) -> None:
    for name, blocks in CONFIGS.items():
        registry[name] = lambda num_classes, _b=blocks, **kw: VGG(num_classes, blocks=_b, **kw)
