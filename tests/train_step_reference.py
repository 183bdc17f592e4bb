"""One ResNet train step's numbers (loss, BatchNorm statistics, gradients) and their relative
error against a float64 run (shared by tests/test_speed_equivalence.py and
tests/test_onednn_conv.py)."""
from __future__ import annotations

import jax
import numpy as np
import optax


def train_step(model, variables, x, labels):
    """(loss, batch_stats), grads of the cross-entropy of `model` in training mode."""
    def objective(params):
        (logits, _), upd = model.apply({"params": params,
                                        "batch_stats": variables["batch_stats"]}, x,
                                       train=True, mutable=["batch_stats"])
        loss = optax.softmax_cross_entropy_with_integer_labels(logits.astype(x.dtype),
                                                               labels).mean()
        return loss, upd["batch_stats"]
    return jax.value_and_grad(objective, has_aux=True)(variables["params"])


def rel_err(tree, reference) -> float:
    """||tree - reference|| / ||reference|| over all leaves, in float64."""
    diff = sum(np.sum((np.asarray(a, np.float64) - b) ** 2)
               for a, b in zip(jax.tree.leaves(tree), jax.tree.leaves(reference)))
    return float(np.sqrt(diff / sum(np.sum(b ** 2) for b in jax.tree.leaves(reference))))
