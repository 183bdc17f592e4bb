"""Multi-teacher baselines of ALM-KD Table 1: TAKD and DGKD.

TAKD (Mirzadeh et al., 2019): KD in hops teacher → assistant(s) → student, each hop plain Hinton
KD (`kdjax.losses.kd_loss`); `takd_hops` gives the hop plan.
DGKD (Son et al., 2021): one KD step from *all* larger models at once, one λ per teacher shared
by every example (the shared-λ special case of ALM-KD Eq. 12), with optional stochastic
dropping of teachers.
"""
from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp

from kdjax.methods import alm

Array = jax.Array


def takd_hops(chain: Sequence[str]) -> list[tuple[str, str]]:
  """[teacher, TA_1, ..., student] -> [(teacher, TA_1), (TA_1, TA_2), ..., (TA_m, student)]."""
  if len(chain) < 2:
    raise ValueError(f"TAKD needs at least a teacher and a student, got {list(chain)}")
  return [(chain[i], chain[i + 1]) for i in range(len(chain) - 1)]


def dgkd_keep_mask(rng: Array, num_teachers: int, drop_prob: float) -> Array:
  """Bernoulli(1 − drop_prob) keep mask over teachers with at least one teacher kept."""
  if not 0.0 <= drop_prob < 1.0:
    raise ValueError(f"drop_prob must be in [0, 1), got {drop_prob}")
  k1, k2 = jax.random.split(rng)
  keep = jax.random.bernoulli(k1, 1.0 - drop_prob, (num_teachers,))
  fallback = jax.nn.one_hot(jax.random.randint(k2, (), 0, num_teachers), num_teachers) > 0
  return jnp.where(keep.any(), keep, fallback)


def dgkd_loss(logits: Array, labels: Array, teacher_logits: Array, lam: Array | float, *,
              temperature: float = 4.0, keep: Array | None = None) -> Array:
  """Per-example DGKD loss: (1 − max_k λ_k)·CE + Σ_k keep_k·λ_k·τ²·KL_k; teachers (B, K, C).

  `lam` is a scalar or one value per teacher (K,); with K = 1 and keep all it is Hinton KD.
  """
  if teacher_logits.ndim != 3:
    raise ValueError(f"dgkd_loss wants teacher_logits (B, K, C), got {teacher_logits.shape}")
  k = teacher_logits.shape[1]
  lam = jnp.broadcast_to(jnp.asarray(lam, jnp.float32), (k,))
  if keep is not None:
    lam = lam * keep.astype(lam.dtype)
  lam_b = jnp.broadcast_to(lam, (logits.shape[0], k))
  return alm.student_loss(logits, labels, teacher_logits, lam_b, temperature)
