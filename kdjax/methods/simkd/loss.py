"""SimKD: knowledge distillation with the reused teacher classifier (Chen et al., CVPR 2022),
and DiSK inside it (DiSK paper, App. A.7, Eq. 9 and Table 8).

SimKD: the student's penultimate features f_s go through a small projector Ψ to the teacher's
feature size; the teacher's classifier (frozen) is reused on Ψ(f_s), so the student's logits
are W_t·Ψ(f_s) + b_t; the loss is the L2 distance ||Ψ(f_s(x)) − f_t(x)||² (SimKD's MSELoss,
i.e. averaged over the feature dimension; its β = 1 and no CE term).

kdjax models return pooled penultimate features (B, F), so Ψ here acts on those (SimKD's
projector acts on the last feature map before pooling with 1x1-3x3-1x1 convolutions, factor 2):
ours is Dense(F_t/2)-BN-ReLU, Dense(F_t/2)-BN-ReLU, Dense(F_t)-BN-ReLU, the same widths and
final ReLU (teacher features are post-ReLU averages, so non-negative) [ours: deviation, stated].

DiSK inside SimKD (A.7, Eq. 9): each point's feature loss is weighed by the guide's decision,
L_g = Σ_i (1 − g(x_i))·||Ψ(f_s(x_i)) − f_t(x_i)||²: g(x) = 1 censors x (the guide declares it
hard for the student), as g = 1 censors x in Eq. 4. The budget (Eq. 3) is unchanged: Σ g·CE of
the student's logits (here the teacher head on Ψ(f_s)). With g ≡ 0 it is SimKD exactly.
"""
from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from kdjax import losses
from kdjax.methods import disk

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


# ----------------------------------------------------------------------------- losses
def feature_distance(student_features: Array, teacher_features: Array) -> Array:
    """Per-example ||Ψ(f_s) − f_t||² / F_t (SimKD's MSELoss, mean over the feature dim)."""
    if student_features.shape != teacher_features.shape:
        raise ValueError(f"projected student features {student_features.shape} and teacher "
                         f"features {teacher_features.shape} differ in shape")
    diff = student_features.astype(jnp.float32) - teacher_features.astype(jnp.float32)
    return jnp.mean(jnp.square(diff.reshape(diff.shape[0], -1)), axis=-1)


def student_loss(logits: Array, student_features: Array, teacher_features: Array,
                 labels: Array, guide: Array | None = None, *, alpha: float = 0.0) -> Array:
    """Per example: α·CE(logits) + (1 − α)·(1 − g)·||Ψ(f_s) − f_t||²/F_t (A.7 Eq. 9, g frozen).

    guide=None is plain SimKD (g ≡ 0); α = 0 is SimKD's own loss (feature term only)."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    d = feature_distance(student_features, jax.lax.stop_gradient(teacher_features))
    if guide is not None:
        d = (1.0 - jax.lax.stop_gradient(guide).astype(jnp.float32)) * d
    out = (1.0 - alpha) * d
    if alpha:
        out = out + alpha * losses.cross_entropy(logits, labels)
    return out


def guide_loss(student_logits: Array, teacher_logits: Array, labels: Array, guide: Array,
               distance: Array, *, lam: float | Array, delta: float | Array, alpha: float,
               top_k: int, penalty: float = 0.0, mask: Array | None = None,
               **usage_kw) -> Array:
    """Scalar guide objective (Alg. 1 line 6 with Eq. 9 as L_dist):
    (1 − α)·mean_i (1 − g_i)·d_i + λ·(budget − δ)_+ (+ the official log(1 + K g) penalty).

    `distance` d_i = ||Ψ(f_s(x_i)) − f_t(x_i)||²/F_t of the current student (held fixed)."""
    s = jax.lax.stop_gradient(student_logits)
    d = jax.lax.stop_gradient(distance).astype(jnp.float32)
    m = jnp.ones(d.shape, jnp.float32) if mask is None else mask.astype(jnp.float32)
    dist = jnp.sum(m * (1.0 - guide.astype(jnp.float32)) * d) / jnp.maximum(jnp.sum(m), 1.0)
    budget = disk.budget_loss(s, guide, labels, delta=delta, teacher_logits=teacher_logits,
                              mask=mask, **usage_kw)
    out = (1.0 - alpha) * dist + lam * budget
    if penalty:
        out = out + penalty * disk.guide_penalty(guide, top_k, mask)
    return out


def make_loss(alpha: float, guided: bool):
    """`loss_fn(logits, features, batch)` for make_train_step; `features` = Ψ(f_s); the batch
    carries 'teacher_features' (cached or from the in-step teacher) and, if guided, 'guide'."""

    def loss_fn(logits, features, batch):
        return student_loss(logits, features, batch["teacher_features"], batch["label"],
                            batch["guide"] if guided else None, alpha=alpha)

    return loss_fn
