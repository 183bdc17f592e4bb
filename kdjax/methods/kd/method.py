"""Hinton KD as a `Method`: (1 − α)·CE(y, s) + α·τ²·KL(t^τ ‖ s^τ) against the teacher."""
from __future__ import annotations

from kdjax import losses
from kdjax.train.method import LossFn, Method


def make_kd_loss(temperature: float, alpha: float) -> LossFn:
    """Per-example Hinton KD against the batch's teacher logits (α = weight of the KD term)."""

    def kd(logits, features, batch):
        return losses.kd_loss(logits, batch["label"], batch["teacher_logits"],
                              temperature=temperature, alpha=alpha)

    return kd


def make_method(config, run) -> Method:
    return Method(loss=make_kd_loss(config.kd.temperature, config.kd.alpha))
