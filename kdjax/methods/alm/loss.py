"""ALM-KD's per-example losses (Sarkar et al.): the student loss of Eq. 5 (one teacher) and
Eq. 12 (K teachers), and the perturbed outer target of Eq. 6.

    L_student,i(θ, λ) = (1 − max_k λ_ki)·CE_i(θ) + Σ_k λ_ki·τ²·KL(p_Tk^τ ‖ p_S^τ)_i

These keep float64 inputs in float64 (kdjax.losses computes in float32), so that the
finite-difference checks of the meta-gradient are exact.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

Array = jax.Array


def _float(x: Array) -> Array:
    return x.astype(jnp.promote_types(x.dtype, jnp.float32))


def kl(logits: Array, target: Array, temperature: float | Array = 1.0) -> Array:
    """KL(target ‖ softmax(logits/T)) over the last axis."""
    log_q = jax.nn.log_softmax(_float(logits) / temperature, axis=-1)
    target = target.astype(log_q.dtype)
    return jnp.sum(jax.scipy.special.xlogy(target, target) - target * log_q, axis=-1)


def cross_entropy(logits: Array, labels: Array) -> Array:
    log_q = jax.nn.log_softmax(_float(logits), axis=-1)
    return -jnp.take_along_axis(log_q, labels[..., None].astype(jnp.int32), axis=-1)[..., 0]


def as_multi(teacher_logits: Array, lam: Array | None = None):
    """(B, C) / (B,) -> (B, 1, C) / (B, 1); (B, K, C) / (B, K) unchanged. Returns
    (teacher logits, λ or None, whether the input had one teacher)."""
    single = teacher_logits.ndim == 2
    t = teacher_logits[:, None, :] if single else teacher_logits
    if lam is None:
        return t, None, single
    lam = jnp.asarray(lam)
    if single and lam.ndim == 1:
        lam = lam[:, None]
    if lam.ndim != 2 or lam.shape[1] != t.shape[1]:
        raise ValueError(f"lambda shape {lam.shape} does not match teacher_logits "
                         f"{teacher_logits.shape} (want (B,) for (B, C) teachers or (B, K) for "
                         "(B, K, C))")
    return t, lam, single


def loss_terms(logits: Array, labels: Array, teacher_logits: Array,
               temperature: float) -> tuple[Array, Array]:
    """CE_i (B,) and τ²·KL(p_Tk^τ ‖ p_S^τ)_i (B, K) of Eq. 1-2 (K = 1 for a (B, C) teacher)."""
    t, _, _ = as_multi(teacher_logits)
    p_t = jax.nn.softmax(_float(t) / temperature, axis=-1)                  # (B, K, C)
    kd = kl(logits[:, None, :], p_t, temperature) * temperature**2          # (B, K)
    return cross_entropy(logits, labels), kd


def student_loss(logits: Array, labels: Array, teacher_logits: Array, lam: Array,
                 temperature: float) -> Array:
    """Per-example student loss, Eq. 5 (λ (B,), teacher (B, C)) or Eq. 12 (λ (B, K))."""
    _, lam, _ = as_multi(teacher_logits, lam)
    ce, kd = loss_terms(logits, labels, teacher_logits, temperature)
    lam = lam.astype(kd.dtype)
    return (1.0 - jnp.max(lam, axis=-1)) * ce + jnp.sum(lam * kd, axis=-1)


def perturbed_target(teacher_logits: Array, labels: Array, num_classes: int, alpha: float,
                     outer_teacher: str | int = "mean") -> Array:
    """p'_T = (1 − α)·p_T + α·e_y at τ = 1 (Eq. 6); multi-teacher: the mean of p_Tk or
    teacher k's."""
    t, _, _ = as_multi(teacher_logits)
    p = jax.nn.softmax(_float(t), axis=-1)
    p = p.mean(axis=1) if outer_teacher == "mean" else p[:, outer_teacher]
    return (1.0 - alpha) * p + alpha * jax.nn.one_hot(labels, num_classes, dtype=p.dtype)


def masked_mean(x: Array, mask: Array | None) -> Array:
    """Mean over the real (mask = 1) rows; all rows without a mask."""
    if mask is None:
        return jnp.mean(x)
    mask = mask.astype(x.dtype)
    return jnp.sum(x * mask) / jnp.maximum(jnp.sum(mask), 1.0)


def make_student_loss(temperature: float, lam: Array | None = None):
    """`(logits, features, batch) -> (B,)` Eq. 5 / 12 for `fit`: λ of the batch from
    `batch['lambda']` (set by a pre-step), `batch['example_state']['lambda']` (the λ table),
    or the fixed per-teacher `lam` (K,)."""

    def loss_fn(logits, features, batch):
        del features
        if "lambda" in batch:
            lam_b = batch["lambda"]
        elif lam is not None:
            lam_b = jnp.broadcast_to(lam, (logits.shape[0],) + jnp.shape(lam))
        else:
            lam_b = batch["example_state"]["lambda"]
        return student_loss(logits, batch["label"], batch["teacher_logits"], lam_b,
                            temperature)

    return loss_fn
