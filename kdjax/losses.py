"""Per-example losses shared by every method.

All functions return a per-example vector of shape (B,); the train step owns the
reduction (masking padded examples, averaging over the global batch).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

Array = jax.Array


def cross_entropy(logits: Array, labels: Array) -> Array:
    """Cross-entropy with integer labels, computed in float32."""
    return optax.softmax_cross_entropy_with_integer_labels(
        logits.astype(jnp.float32), labels)


def soft_cross_entropy(logits: Array, target_probs: Array,
                       temperature: float | Array = 1.0) -> Array:
    """H(target, softmax(logits / T)) for a soft target distribution."""
    log_p = jax.nn.log_softmax(logits.astype(jnp.float32) / temperature, axis=-1)
    return -jnp.sum(target_probs * log_p, axis=-1)


def kl_divergence(logits: Array, target_probs: Array,
                  temperature: float | Array = 1.0) -> Array:
    """KL(target || softmax(logits / T)); zero-probability targets contribute 0."""
    target_probs = target_probs.astype(jnp.float32)
    entropy = -jnp.sum(jax.scipy.special.xlogy(target_probs, target_probs), axis=-1)
    return soft_cross_entropy(logits, target_probs, temperature) - entropy


def teacher_probs(teacher_logits: Array, temperature: float | Array = 1.0) -> Array:
    """Softened teacher distribution softmax(z_t / T)."""
    return jax.nn.softmax(teacher_logits.astype(jnp.float32) / temperature, axis=-1)


def kd_loss(logits: Array, labels: Array, teacher_logits: Array, *,
            temperature: float = 4.0, alpha: float = 0.9) -> Array:
    """Hinton et al. (2015) KD: (1 - α)·CE(y, s) + α·τ²·KL(t^τ || s^τ).

    `alpha` is the weight of the distillation term (the λ of ALM-KD Eq. 5 when
    it is shared by all examples).
    """
    ce = cross_entropy(logits, labels)
    kl = kl_divergence(logits, teacher_probs(teacher_logits, temperature), temperature)
    return (1.0 - alpha) * ce + alpha * temperature**2 * kl
