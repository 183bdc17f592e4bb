"""OURS (issue 20, not in the ALM-KD paper): λ as a function of the teacher's confidence in the
given label, and the confidence-threshold rule.

`alm.lambda_model='confidence'`: instead of one free λ per example (the paper's table, 8100
numbers fitted to 900 validation points in Sec. 5), every example's λ is

    λ_ik = g_φ(c_ik),   c_ik = p_Tk(y_i | x_i) at τ = 1,

with g_φ(c) = σ(a·c + b) (`alm.pool_hidden = 0`, φ = {a, b}) or a one-hidden-layer MLP
σ(w2·relu(w1·c + b1) + b2) (`alm.pool_hidden = H`). φ starts at λ = `alm.lambda_init` for every
confidence and is meta-learned by the same one-step look-ahead as the table (meta.meta_update):
φ ← φ − η_φ·∇_φ O(g_φ(c_B)). Two examples with the same confidence get the same λ.

`alm.variant='threshold'` (a non-meta baseline): λ_i = 1 where c_i < `alm.conf_threshold`
(the teacher gives the label less than that probability: likely a flipped label, so learn it
from the teacher only), else `alm.threshold_else` (-1 = `loss.kd_weight`; 0 = plain CE).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

Array = jax.Array


def teacher_confidence(teacher_logits: Array, labels: Array) -> Array:
    """c = p_T(y | x) at τ = 1: (B,) for (B, C) teacher logits, (B, K) for (B, K, C)."""
    p = jax.nn.softmax(teacher_logits.astype(jnp.promote_types(teacher_logits.dtype,
                                                               jnp.float32)), axis=-1)
    y = labels.astype(jnp.int32)
    if p.ndim == 3:
        y = jnp.broadcast_to(y[:, None], p.shape[:2])
    return jnp.take_along_axis(p, y[..., None], axis=-1)[..., 0]


def init_phi(hidden: int, lambda_init: float, seed: int = 0, dtype=jnp.float32) -> dict:
    """φ of g_φ with g_φ(c) = lambda_init for every c: zero output weights, output bias
    logit(lambda_init); the hidden layer (H > 0) gets fixed random weights so that the output
    weights have a gradient."""
    if hidden < 0:
        raise ValueError(f"alm.pool_hidden={hidden!r} must be >= 0")
    if not 0.0 < lambda_init < 1.0:
        raise ValueError(f"alm.lambda_init={lambda_init!r} must be in (0, 1) for "
                         "alm.lambda_model='confidence' (λ = σ(...))")
    b = jnp.log(lambda_init) - jnp.log1p(-lambda_init)
    if hidden == 0:
        return {"a": jnp.zeros((), dtype), "b": jnp.asarray(b, dtype)}
    k1, k2 = jax.random.split(jax.random.PRNGKey(seed))
    return {"w1": jax.random.normal(k1, (hidden,), dtype) * 2.0,
            "b1": jax.random.uniform(k2, (hidden,), dtype, -1.0, 1.0),
            "w2": jnp.zeros((hidden,), dtype), "b2": jnp.asarray(b, dtype)}


def pooled_lambda(phi: dict, conf: Array) -> Array:
    """g_φ(c) elementwise, same shape as `conf`."""
    if "a" in phi:
        return jax.nn.sigmoid(phi["a"] * conf + phi["b"])
    h = jax.nn.relu(conf[..., None] * phi["w1"] + phi["b1"])
    return jax.nn.sigmoid(h @ phi["w2"] + phi["b2"])


def rule_else(threshold_else: float, kd_weight: float) -> float:
    """λ of the threshold (and oracle) rule where it does not fire: -1 = kd_weight."""
    return kd_weight if threshold_else == -1.0 else threshold_else


def threshold_lambda(conf: Array, threshold: float, else_weight: float) -> Array:
    """The confidence-threshold rule: 1 where c < threshold, else else_weight."""
    return jnp.where(conf < threshold, 1.0, else_weight).astype(jnp.float32)
