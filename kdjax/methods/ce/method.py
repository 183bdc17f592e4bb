"""Cross-entropy on the ground-truth labels as a `Method` (no teacher)."""
from __future__ import annotations

from kdjax import losses
from kdjax.train.method import Method

NEEDS_TEACHER = False


def ce_loss(logits, features, batch):
    """Plain cross-entropy on the ground truth."""
    return losses.cross_entropy(logits, batch["label"])


def make_method(config, run) -> Method:
    return Method(loss=ce_loss)
