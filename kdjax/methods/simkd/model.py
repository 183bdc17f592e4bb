"""SimKD's student: backbone + projector Ψ + the teacher's frozen classifier (Chen et al.,
CVPR 2022).

kdjax models return pooled penultimate features (B, F), so Ψ here acts on those (SimKD's
projector acts on the last feature map before pooling with 1x1-3x3-1x1 convolutions, factor 2):
ours is Dense(F_t/2)-BN-ReLU, Dense(F_t/2)-BN-ReLU, Dense(F_t)-BN-ReLU, the same widths and
final ReLU (teacher features are post-ReLU averages, so non-negative) [ours: deviation, stated].
"""
from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array


class Projector(nn.Module):
    """Ψ: (B, F_s) -> (B, F_t); hidden width F_t // factor (SimKD's factor 2), BN + ReLU after
    every layer (as SimKD's conv-BN-ReLU blocks)."""

    out_dim: int
    factor: int = 2

    @nn.compact
    def __call__(self, x: Array, train: bool = False) -> Array:
        hidden = max(self.out_dim // self.factor, 1)
        h = x.astype(jnp.float32)
        for i, width in enumerate((hidden, hidden, self.out_dim)):
            h = nn.Dense(width, name=f"dense_{i}")(h)
            h = nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5,
                             name=f"bn_{i}")(h)
            h = nn.relu(h)
        return h


class SimKDStudent(nn.Module):
    """Student backbone + projector Ψ + the teacher's frozen classifier.

    `head_kernel` (F_t, C) and `head_bias` (C,) are the teacher's head; they are module
    attributes (constants), not 'params', so no optimizer or weight decay ever touches them.
    __call__ returns (logits = Ψ(f_s)·W_t + b_t, Ψ(f_s)): the kdjax (logits, features)
    convention with the projected features as 'features'. Variables: {'params', 'batch_stats'}
    each with 'backbone' and 'projector' subtrees (the backbone's own head is computed and
    unused).
    """

    backbone: nn.Module
    head_kernel: Any
    head_bias: Any
    factor: int = 2

    @nn.compact
    def __call__(self, x: Array, train: bool = False) -> tuple[Array, Array]:
        _, f_s = self.backbone(x, train=train)
        kernel = jnp.asarray(self.head_kernel, jnp.float32)
        proj = Projector(kernel.shape[0], self.factor, name="projector")(f_s, train=train)
        logits = reuse_teacher_head(proj, kernel, jnp.asarray(self.head_bias, jnp.float32))
        return logits, proj

    def __hash__(self) -> int:  # array attributes are unhashable; identity is enough here
        return id(self)


def reuse_teacher_head(features: Array, kernel: Array, bias: Array) -> Array:
    """The teacher's classifier applied to (projected) features: features·W + b (float32)."""
    if features.shape[-1] != kernel.shape[0]:
        raise ValueError(f"projected features have {features.shape[-1]} dims, the teacher head "
                         f"expects {kernel.shape[0]}")
    return features.astype(jnp.float32) @ kernel + bias


def teacher_head(teacher_variables: dict) -> tuple[np.ndarray, np.ndarray]:
    """(kernel, bias) of the teacher's classifier: every kdjax model names it 'head'
    (kdjax.models.layers.classifier)."""
    params = teacher_variables.get("params", {})
    if "head" not in params:
        raise ValueError("teacher variables have no params['head'] (the classifier that "
                         f"SimKD reuses); top-level params: {sorted(params)}")
    head = params["head"]
    return np.asarray(head["kernel"], np.float32), np.asarray(head["bias"], np.float32)


def wrap_student(backbone: nn.Module, teacher_variables: dict, factor: int = 2) -> SimKDStudent:
    kernel, bias = teacher_head(teacher_variables)
    return SimKDStudent(backbone=backbone, head_kernel=kernel, head_bias=bias, factor=factor)


def init_from_backbone(wrapped_variables: dict, backbone_variables: dict | None) -> dict:
    """SimKD variables with the backbone taken from `backbone_variables` (e.g. the A.5 CE warm
    start) and the projector kept from `wrapped_variables` (a fresh init)."""
    if backbone_variables is None:
        return wrapped_variables
    out = {}
    for col in ("params", "batch_stats"):
        tree = dict(wrapped_variables.get(col, {}))
        if col in backbone_variables and backbone_variables[col]:
            tree["backbone"] = backbone_variables[col]
        out[col] = tree
    return out
