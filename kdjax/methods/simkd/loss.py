"""SimKD's loss (Chen et al., CVPR 2022) and DiSK inside it (DiSK App. A.7, Eq. 9, Table 8).

SimKD: the loss is the L2 distance ||Ψ(f_s(x)) − f_t(x)||² between the projected student
features and the teacher's (SimKD's MSELoss, i.e. averaged over the feature dimension; its
β = 1 and no CE term); the logits are the teacher head on Ψ(f_s) (`model.py`).

DiSK inside SimKD (A.7, Eq. 9): each point's feature loss is weighed by the guide's decision,
L_g = Σ_i (1 − g(x_i))·||Ψ(f_s(x_i)) − f_t(x_i)||²: g(x) = 1 censors x (the guide declares it
hard for the student), as g = 1 censors x in Eq. 4. The budget (Eq. 3) is unchanged: Σ g·CE of
the student's logits (here the teacher head on Ψ(f_s)). With g ≡ 0 it is SimKD exactly.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from kdjax import losses
from kdjax.methods.disk import loss as disk

Array = jax.Array


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
