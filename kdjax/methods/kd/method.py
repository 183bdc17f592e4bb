"""Hinton et al. (2015) KD as a `Method`: w_ce·CE(y, s) + w_kd·τ²·KL(t^τ ‖ s^τ)."""
from __future__ import annotations

from kdjax import losses
from kdjax.train.method import LossFn, Method


def make_kd_loss(temperature: float, kd_weight: float, ce_weight: float | None = None
                 ) -> LossFn:
    """Per-example Hinton KD against the batch's teacher logits; `ce_weight` defaults to
    1 − `kd_weight` (the usual convex mix)."""
    ce_weight = 1.0 - kd_weight if ce_weight is None else ce_weight

    def kd(logits, features, batch):
        ce = losses.cross_entropy(logits, batch["label"])
        kl = losses.kl_divergence(logits, losses.teacher_probs(batch["teacher_logits"],
                                                               temperature), temperature)
        return ce_weight * ce + kd_weight * temperature**2 * kl

    return kd


def make_method(config, run) -> Method:
    c = config.loss
    return Method(loss=make_kd_loss(c.temperature, c.kd_weight, c.ce_weight))
