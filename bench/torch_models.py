"""PyTorch peers of kdjax.models for the side-by-side speed benchmark (bench/kd_speed.py).

Same architectures and parameter counts as `kdjax.models` (checked by the bench and by
tests/test_kd_speed_bench.py):
- CIFAR ResNet v1 (`kdjax/models/resnet_cifar.py`, RepDistiller style): 3x3 stem conv (no bias) +
  BN + ReLU; three stages of n = (depth - 2) / 6 BasicBlocks; a 1x1 conv + BN shortcut when the
  shape changes; global average pool; a linear head with bias.
- The small CNN (`kdjax/models/cnn.py`): [3x3 conv (no bias) + BN + ReLU + 2x2 max pool] per width,
  an average pool to at most 8x8 when the map is larger, a hidden dense layer + ReLU, a linear head.

Every module returns `(logits, features)` like kdjax's. BatchNorm: eps 1e-5 and PyTorch momentum
0.1 (= flax momentum 0.9). PyTorch is an optional extra (`pip install -e .[torch]`).
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
import torch.nn.functional as F


class BasicBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN, plus (identity or 1x1 conv + BN) shortcut, then ReLU."""

    def __init__(self, in_planes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(nn.Conv2d(in_planes, planes, 1, stride, bias=False),
                                          nn.BatchNorm2d(planes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + self.shortcut(x))


class CifarResNet(nn.Module):
    def __init__(self, depth: int, num_classes: int,
                 filters: Sequence[int] = (16, 16, 32, 64), in_channels: int = 3):
        super().__init__()
        if (depth - 2) % 6:
            raise ValueError(f"CIFAR ResNet depth must be 6n+2, got {depth}")
        n = (depth - 2) // 6
        self.stem = nn.Conv2d(in_channels, filters[0], 3, 1, 1, bias=False)
        self.stem_bn = nn.BatchNorm2d(filters[0])
        blocks, in_planes = [], filters[0]
        for s, width in enumerate(filters[1:]):
            for b in range(n):
                blocks.append(BasicBlock(in_planes, width, 2 if (s > 0 and b == 0) else 1))
                in_planes = width
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Linear(in_planes, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.blocks(F.relu(self.stem_bn(self.stem(x))))
        features = h.mean(dim=(2, 3))
        return self.head(features), features


class SmallCNN(nn.Module):
    def __init__(self, num_classes: int, widths: Sequence[int] = (32, 64), hidden: int = 128,
                 in_channels: int = 1, image_size: int = 28):
        super().__init__()
        convs, bns, c, side = [], [], in_channels, image_size
        for w in widths:
            convs.append(nn.Conv2d(c, w, 3, 1, 1, bias=False))
            bns.append(nn.BatchNorm2d(w))
            c, side = w, side // 2
        self.convs, self.bns = nn.ModuleList(convs), nn.ModuleList(bns)
        self.pool = -(-side // 8) if side > 8 else 1  # ceil: at most 8x8, as kdjax
        side = -(-side // self.pool)
        self.dense = nn.Linear(c * side * side, hidden)
        self.head = nn.Linear(hidden, num_classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        for conv, bn in zip(self.convs, self.bns):
            x = F.max_pool2d(F.relu(bn(conv(x))), 2)
        if self.pool > 1:
            x = F.avg_pool2d(x, self.pool, ceil_mode=True, count_include_pad=False)
        features = F.relu(self.dense(x.flatten(1)))
        return self.head(features), features


def get_model(name: str, num_classes: int, **kw) -> nn.Module:
    """The PyTorch twin of `kdjax.models.get_model(name, num_classes, **kw)`."""
    if name == "cnn_small":
        return SmallCNN(num_classes, **kw)
    if name.startswith("resnet") and name.endswith("x4"):
        return CifarResNet(int(name[6:-2]), num_classes, filters=(32, 64, 128, 256), **kw)
    if name.startswith("resnet") and name[6:].isdigit():
        return CifarResNet(int(name[6:]), num_classes, **kw)
    raise ValueError(f"no PyTorch peer for model {name!r}")


def num_params(model: nn.Module) -> int:
    """Trainable parameters (BatchNorm running statistics are buffers, not counted)."""
    return sum(p.numel() for p in model.parameters())


def kd_loss(logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor,
            temperature: float, alpha: float) -> torch.Tensor:
    """Hinton KD as torchdistill / mdistiller write it: (1 − α)·CE + α·T²·KL(teacher || student)."""
    ce = F.cross_entropy(logits, labels)
    kl = F.kl_div(F.log_softmax(logits / temperature, -1),
                  F.softmax(teacher_logits / temperature, -1), reduction="batchmean")
    return (1 - alpha) * ce + alpha * temperature ** 2 * kl
