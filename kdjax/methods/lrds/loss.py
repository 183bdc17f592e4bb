"""Label Revision and Data Selection as wrappers of any per-example distillation loss.

Lan et al. (arXiv 2404.03693). The sources here (../shared/papers) state the equations without
their numbers, so they are named by what they say:

- Label Revision (LR): the softened teacher distribution p^t is mixed with the one-hot label y,

      p = β p^t + (1 − β) y,   β = η / (p^t_max − p^t_y + 1),   η ∈ (0, 1),

  which meets the paper's constraint β < 1 / (p^t_max − p^t_y + 1): the label becomes the
  strict arg-max of p on every example, and the ratios among the other classes are kept. Where
  the teacher is already right, β = η and the revision only sharpens.
- Data Selection (DS): only the examples of D^t (`batch['ds_mask']` = 1, the top fraction of an
  influence score, `selection.py`) are distilled; D^s gets the ground truth alone:

      loss_i = [i ∈ D^t] · base_i + [i ∉ D^t] · w_ce · CE_i,

  with base_i the wrapped method's full per-example loss (for Hinton KD: w_ce·CE + w_kd·τ²·KL,
  so D^t rows keep the usual CE term and D^s rows get the same CE weight, `loss.ce_weight`; the
  paper's λ1/λ2 are `loss.kd_weight`/`loss.ce_weight`).

Both wrap any `loss(logits, features, batch) -> (B,)` that reads `batch['teacher_logits']`: LR
swaps them for the revised targets written as logits at the revision temperature τ (τ·log p, so
softmax(·/τ) = p exactly); a loss that softens at another temperature τ' sees p^(τ/τ')
renormalised (same arg-max, so the label stays the arg-max). Stacked (B, K, C) teachers are
revised one by one.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from kdjax import losses
from kdjax.train.method import LossFn

Array = jax.Array


def _check_eta(eta: float) -> None:
    if not (isinstance(eta, (int, float, np.floating)) and 0.0 < float(eta) < 1.0):
        raise ValueError(f"label revision eta must lie strictly in (0, 1), got {eta!r}")


def revise_targets(teacher_probs: Array, labels: Array, eta: float) -> tuple[Array, Array]:
    """LR: p = β p^t + (1 − β) y, β = η / (p^t_max − p^t_y + 1).

    Args:
      teacher_probs: (B, C) teacher distribution (already temperature-softened), or (B, K, C)
        for K teachers (each revised on its own).
      labels: (B,) int ground-truth classes in [0, C).
      eta: in (0, 1).
    Returns:
      the revised targets (the input's shape) and a (B,) / (B, K) bool array: True where the
      teacher's arg-max was not the label (targets corrected; the others only sharpened).
    """
    _check_eta(eta)
    if teacher_probs.ndim not in (2, 3) or labels.ndim != 1 \
            or teacher_probs.shape[0] != labels.shape[0]:
        raise ValueError(f"need teacher_probs (B, C) or (B, K, C) and labels (B,), got "
                         f"{teacher_probs.shape} and {labels.shape}")
    num_classes = teacher_probs.shape[-1]
    if not isinstance(labels, jax.core.Tracer) and labels.size:
        lo, hi = int(jnp.min(labels)), int(jnp.max(labels))
        if lo < 0 or hi >= num_classes:
            raise ValueError(f"labels must lie in [0, {num_classes}), got range [{lo}, {hi}]")
    lab = labels if teacher_probs.ndim == 2 else labels[:, None]
    y = jax.nn.one_hot(lab, num_classes, dtype=teacher_probs.dtype)
    p_max = jnp.max(teacher_probs, axis=-1)
    p_tar = jnp.sum(teacher_probs * y, axis=-1)
    beta = (eta / (p_max - p_tar + 1.0))[..., None]
    revised = beta * teacher_probs + (1.0 - beta) * y
    wrong = jnp.argmax(teacher_probs, axis=-1) != lab
    return revised, wrong


def revised_teacher_logits(teacher_logits: Array, labels: Array, *, eta: float,
                           temperature: float) -> tuple[Array, Array]:
    """LR of softmax(z_t / τ), returned as logits τ·log p (softmax(· / τ) = p)."""
    probs = losses.teacher_probs(teacher_logits, temperature)
    revised, wrong = revise_targets(probs, labels, eta)
    tiny = jnp.finfo(revised.dtype).tiny
    return temperature * jnp.log(jnp.maximum(revised, tiny)), wrong


def revise_wrong_only(teacher_logits: Array, labels: Array, *, eta: float,
                      temperature: float) -> tuple[Array, Array]:
    """[ours] LR on the teacher-wrong rows only (a control for LR, issue 20): the rows whose
    arg-max is not the label get the revised targets, the others keep the teacher's logits
    unchanged (LR would only sharpen them towards the label)."""
    revised, wrong = revised_teacher_logits(teacher_logits, labels, eta=eta,
                                            temperature=temperature)
    return jnp.where(wrong[..., None], revised, teacher_logits), wrong


def label_revision(loss: LossFn, *, eta: float, temperature: float,
                   only_wrong: bool = False) -> LossFn:
    """`loss` on the revised teacher targets (no gradient into the teacher); the wrapped loss
    also sees `batch['lr_revised']` (bool, the teacher's arg-max was wrong). `only_wrong`
    ([ours]): revise the teacher-wrong rows only (`revise_wrong_only`)."""
    _check_eta(eta)
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    revise = revise_wrong_only if only_wrong else revised_teacher_logits

    def revised(logits: Array, features: Array, batch: dict) -> Array:
        batch = dict(batch)
        batch["teacher_logits"], batch["lr_revised"] = revise(
            jax.lax.stop_gradient(batch["teacher_logits"]), batch["label"], eta=eta,
            temperature=temperature)
        return loss(logits, features, batch)

    return revised


def changed_targets(teacher_logits, labels, *, eta: float, temperature: float,
                    only_wrong: bool = False, tol: float = 1e-6) -> np.ndarray:
    """(N,) bool: the rows whose distilled target LR changes, i.e. where the revised
    distribution differs from softmax(z_t / τ) by more than `tol` in some class (every row
    whose teacher distribution is not already the one-hot label, or, with `only_wrong`, every
    teacher-wrong row). Counted by `method.summarize` as `revised_targets`."""
    z, y = jnp.asarray(teacher_logits), jnp.asarray(labels)
    revise = revise_wrong_only if only_wrong else revised_teacher_logits
    new, _ = revise(z, y, eta=eta, temperature=temperature)
    before = losses.teacher_probs(z, temperature)
    after = losses.teacher_probs(new, temperature)
    return np.asarray(jnp.max(jnp.abs(after - before), axis=-1) > tol)


def data_selection(loss: LossFn, *, ce_weight: float) -> LossFn:
    """DS: `loss` on the examples with `batch['ds_mask']` = 1 (D^t), `ce_weight`·CE on the
    others (D^s)."""
    if ce_weight < 0:
        raise ValueError(f"ce_weight must be >= 0, got {ce_weight}")

    def selected(logits: Array, features: Array, batch: dict) -> Array:
        m = batch["ds_mask"].astype(jnp.float32)
        ce = losses.cross_entropy(logits, batch["label"])
        return m * loss(logits, features, batch) + (1.0 - m) * ce_weight * ce

    return selected
