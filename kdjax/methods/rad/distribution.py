"""RAD: robust active distillation (Baykal et al., ICLR 2023), the sampling distribution.

Gains of the pool points (margin, entropy), the optimal distribution p of Theorem 1 and its
Corollary 1 special case (RAD, Eq. 4), their sharded forms, the game value, the realized gain,
inclusion probabilities and sampling b queries (DepRound), and the estimate of the teacher's
mistakes m (Sec. 3.3). The solver and its precision argument are in `solver.py`.
"""
from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from kdjax.methods.rad.dependent_rounding import depround, depround_sharded
from kdjax.methods.rad.solver import (RadSolution, _as_float_array, _check_concrete, _run,
                                      _scalar, _solve, _split_scalar)

Array = Any


@jax.jit
def margin_gain(probs: Array) -> Array:
    """g = 1 − (p_top1 − p_top2) of the student's softmax rows (Sec. 3.1); shape (..., K) → (...)."""
    top2 = lax.top_k(probs, 2)[0]
    return 1.0 - (top2[..., 0] - top2[..., 1])


@jax.jit
def entropy_gain(probs: Array) -> Array:
    """g = −Σ_j p_j log p_j of the student's softmax rows (D.6), with 0 log 0 = 0."""
    safe = jnp.where(probs > 0, probs, 1.0)
    return -jnp.sum(jnp.where(probs > 0, probs * jnp.log(safe), 0.0), axis=-1)


# --------------------------------------------------------------------------------------------
# Theorem 1 / Corollary 1 (the solver is solver.py)
# --------------------------------------------------------------------------------------------


def _check_m(m, n):
    mf = _scalar(m)
    if mf is not None and not (0.0 <= mf <= n):
        raise ValueError(f"num_mistakes must be in [0, n={n}], got {mf}")
    return mf


def robust_distribution(gains, losses, num_mistakes, *, method: str = "newton") -> RadSolution:
    """Theorem 1: optimal p for gains g ≥ 0 and losses ℓ ≥ 0 against m adversarial mistakes.

    Returns RadSolution(p, k_star, value); see the module docstring for the exact definitions and
    the edge cases (ties, m = 0, G_n < m). float64 input gives float64 output (x64 is enabled locally).
    Concrete inputs are validated (1-D, finite, ≥ 0, 0 ≤ m ≤ n); traced inputs are not.
    """
    g = _as_float_array(gains, "gains")
    ell = _as_float_array(losses, "losses")
    _check_concrete("gains", g)
    _check_concrete("losses", ell)
    if g.shape != ell.shape:
        raise ValueError(f"gains {g.shape} and losses {ell.shape} must have the same shape")
    _check_m(num_mistakes, g.shape[0])
    if np.dtype(ell.dtype) == np.float64 and np.dtype(g.dtype) != np.float64:
        g = g.astype(np.float64) if isinstance(g, np.ndarray) else g
    return _run(g, ell, num_mistakes, 0.0, method, cor1=False)


def default_w(num_mistakes, n):
    """w = 1 − m/n (Sec. 3.2): the weight that keeps OPT of (4) non-negative for every m."""
    return 1.0 - num_mistakes / n


def rad_distribution(gains, num_mistakes, w=None, *, method: str = "newton") -> RadSolution:
    """Corollary 1 (RAD): Theorem 1 with relative losses ℓ_i = w·g_i; w defaults to 1 − m/n.

    p_i = 1/(g_i Σ_{j∈S} 1/g_j) on S = the k* largest gains, OPT = (k* − (1+w)m)/Σ_{j∈S} 1/g_j.
    """
    g = _as_float_array(gains, "gains")
    _check_concrete("gains", g)
    n = g.shape[0]
    mf = _check_m(num_mistakes, n)
    if w is None:
        w = default_w(num_mistakes, n)
    wf = _scalar(w)
    if wf is not None and not (np.isfinite(wf) and wf >= 0):
        raise ValueError(f"w must be a finite number ≥ 0, got {wf}")
    del mf
    return _run(g, None, num_mistakes, w, method, cor1=True)


@functools.lru_cache(maxsize=32)
def _sharded_fn(mesh, axis_name, cor1):
    from jax.sharding import PartitionSpec as P

    spec = P(axis_name)

    def local(gl, ll, m_, w_, mh, ml):
        return _solve(gl, None if cor1 else ll, m_, w_, (mh, ml), "newton", axis_name)

    return jax.jit(jax.shard_map(local, mesh=mesh, in_specs=(spec, spec, P(), P(), P(), P()),
                                 out_specs=(spec, P(), P()), check_vma=False))


def _sharded(g, losses, m, w, mesh, axis_name, cor1):
    from jax.sharding import NamedSharding, PartitionSpec as P

    n = g.shape[0]
    ndev = mesh.shape[axis_name]
    if n % ndev:
        raise ValueError(f"pool size {n} must be divisible by the {ndev} devices of axis "
                         f"{axis_name!r} (pad with zero gains: they never enter the support)")
    x64 = np.dtype(g.dtype) == np.float64
    with jax.enable_x64(bool(x64)):
        dtype = jnp.float64 if x64 else jnp.float32
        M = (1.0 + float(w)) * float(m) if cor1 else float(m)
        M_hi, M_lo = _split_scalar(M, dtype)
        sh = NamedSharding(mesh, P(axis_name))
        gd = jax.device_put(jnp.asarray(g, dtype), sh)
        ld = jax.device_put(jnp.zeros_like(gd) if losses is None else jnp.asarray(losses, dtype), sh)
        fn = _sharded_fn(mesh, axis_name, cor1)
        return RadSolution(*fn(gd, ld, jnp.asarray(m, dtype), jnp.asarray(w, dtype), M_hi, M_lo))


def rad_distribution_sharded(gains, num_mistakes, w=None, *, mesh, axis_name: str) -> RadSolution:
    """Corollary 1 on a pool sharded over `mesh[axis_name]`: sort-free, only all-reduces (psum,
    pmin and an all-gather of one (hi, lo) pair per device). p comes back sharded like the pool."""
    g = _as_float_array(gains, "gains")
    _check_concrete("gains", g)
    _check_m(num_mistakes, g.shape[0])
    if w is None:
        w = default_w(num_mistakes, g.shape[0])
    return _sharded(g, None, num_mistakes, w, mesh, axis_name, cor1=True)


def robust_distribution_sharded(gains, losses, num_mistakes, *, mesh, axis_name: str) -> RadSolution:
    """Theorem 1 on a pool sharded over `mesh[axis_name]` (see `rad_distribution_sharded`)."""
    g = _as_float_array(gains, "gains")
    ell = _as_float_array(losses, "losses")
    _check_concrete("gains", g)
    _check_concrete("losses", ell)
    _check_m(num_mistakes, g.shape[0])
    return _sharded(g, ell, num_mistakes, 0.0, mesh, axis_name, cor1=False)


def game_value(p, gains, losses, num_mistakes) -> float:
    """min_c OBJ(p, c) of (3) for a given p (NumPy, float64): the adversary spends its budget m on
    the largest p_i(g_i+ℓ_i). Used to score any p, e.g. a realised selection."""
    p, g, ell = (np.asarray(x, np.float64) for x in (p, gains, losses))
    v = p * (g + ell)
    order = np.argsort(-v, kind="stable")
    u = np.clip(float(num_mistakes) - np.arange(len(v)), 0.0, 1.0)
    return float(np.sum(p * g) - np.sum(u * v[order]))


def realized_gain(selected, gains, teacher_correct, w) -> float:
    """The objective of (4) with the true teacher mistakes: mean over the selected points of
    g_i if the teacher is right, −w·g_i if not (per-iteration record of the active loop)."""
    sel = np.asarray(selected, bool)
    g = np.asarray(gains, np.float64)[sel]
    c = np.asarray(teacher_correct, bool)[sel]
    return float(np.mean(np.where(c, g, -w * g))) if g.size else 0.0


# --------------------------------------------------------------------------------------------
# Sampling b points (Sec. 3.3, App. B) and estimating m (Sec. 3.3, C.3, D.1)
# --------------------------------------------------------------------------------------------


@functools.partial(jax.jit, static_argnames=("overflow",))
def _inclusion(p, b, overflow):
    if overflow == "none":
        return jnp.minimum(b * p, 1.0)
    if overflow == "shrink":
        b_eff = jnp.minimum(b, jnp.floor(1.0 / jnp.max(p)))
        return jnp.minimum(b_eff * p, 1.0)
    # 'rescale': the smallest s ≥ b with Σ min(s·p, 1) = b (water-filling). Σ min(s p, 1) is concave
    # in s, so Newton from s = b stays below the root and stops when the clipped set is stable.
    pos = jnp.sum((p > 0).astype(p.dtype))
    target = jnp.minimum(b, pos)

    def body(st):
        s, _, it = st
        clipped = s * p >= 1
        free = jnp.sum(jnp.where(clipped, 0.0, p))
        s_new = (target - jnp.sum(clipped.astype(p.dtype))) / jnp.where(free > 0, free, 1.0)
        s_new = jnp.where(free > 0, jnp.maximum(s_new, s), s)
        return s_new, s, it + 1

    s, _, _ = lax.while_loop(lambda st: (st[0] > st[1]) & (st[2] < 64), body,
                             (jnp.asarray(b, p.dtype), jnp.asarray(-1.0, p.dtype), 0))
    return jnp.where(b >= pos, (p > 0).astype(p.dtype), jnp.minimum(s * p, 1.0))


def inclusion_probabilities(p, b, *, overflow: str = "rescale") -> Array:
    """q for sampling b points from the single-draw distribution p (Sec. 3.3: q = min(b·p, 1)).

    When some b·p_i > 1 the clipped mass is lost and Σq < b. The paper notes this (virtually) never
    happens and otherwise suggests lowering b to ≤ 1/max p. `overflow` picks: 'none' (paper's q as
    is, Σq ≤ b), 'shrink' (paper's alternative: b' = min(b, ⌊1/max p⌋)), 'rescale' (default: spread
    the lost mass by water-filling, q = min(s·p, 1) with Σq = b; equals min(b·p, 1) when nothing is
    clipped).
    """
    if overflow not in ("none", "shrink", "rescale"):
        raise ValueError(f"overflow must be 'none', 'shrink' or 'rescale', got {overflow!r}")
    bf = _scalar(b)
    if bf is not None and bf < 0:
        raise ValueError(f"budget b must be ≥ 0, got {bf}")
    x64 = np.dtype(getattr(p, "dtype", np.float32)) == np.float64
    with jax.enable_x64(bool(x64)):
        pj = jnp.asarray(p, jnp.float64 if x64 else jnp.float32)
        return _inclusion(pj, jnp.asarray(b, pj.dtype), overflow)


def sample_queries(rng, p, b, *, overflow: str = "rescale") -> Array:
    """Boolean mask of the points to query: DepRound (Alg. 2) of q = inclusion_probabilities(p, b)."""
    q = inclusion_probabilities(p, b, overflow=overflow)
    return depround(rng, q)


def estimate_num_mistakes(teacher_correct, pool_size: int) -> float:
    """m̂ = (error rate of the teacher on a labelled sample)·|pool| (Sec. 3.3; Lemma 5 of C.3).

    `teacher_correct` is a boolean array over either a labelled validation set (D.1 uses 1,000 points
    for CIFAR/SVHN) or b_uniform uniformly drawn pool points whose labels were queried (Sec. 3.3; then
    the RAD budget of that round is b' = b − b_uniform).
    """
    c = np.asarray(teacher_correct, bool).reshape(-1)
    if c.size == 0:
        raise ValueError("teacher_correct is empty: need at least one labelled point to estimate m")
    if pool_size < 0:
        raise ValueError(f"pool_size must be ≥ 0, got {pool_size}")
    return float((1.0 - c.mean()) * pool_size)


def uniform_estimation_sample(rng, available, b_uniform: int) -> np.ndarray:
    """Indices of b_uniform points drawn uniformly without replacement from the available pool
    (boolean mask), to be labelled for estimating m (Sec. 3.3)."""
    avail = np.flatnonzero(np.asarray(available, bool))
    if not 0 <= b_uniform <= avail.size:
        raise ValueError(f"b_uniform={b_uniform} must be in [0, {avail.size}] (available points)")
    perm = np.asarray(jax.random.permutation(rng, avail.size))
    return np.sort(avail[perm[:b_uniform]])
