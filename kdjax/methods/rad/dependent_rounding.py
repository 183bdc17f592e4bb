"""DepRound (Alg. 2 of the RAD paper; Chekuri et al., 2009) as a parallel tree rounding.

Alg. 2 repeatedly takes two fractional entries p_i, p_j, sets α = min(1 − p_i, p_j),
β = min(p_i, 1 − p_j) and moves to (p_i + α, p_j − α) with probability β/(α+β), else to
(p_i − β, p_j + β): sums and expectations are preserved and one of the two becomes 0 or 1. Any pairing
order gives a valid DepRound, so we pair along a binary tree: each subtree leaves at most one
fractional "carrier", and the level above pairs the two carriers of its children — O(log n)
depth, one `lax.scan` step per level (O(n log n) work on a fixed-width array, a program whose
size does not grow with n). A second top-down pass hands every leaf its final 0/1.

Result: a boolean mask with P(mask_i) = q_i and |mask| ∈ {⌊Σq⌋, ⌈Σq⌉}; when Σq is an integer (up to
float tolerance) |mask| = Σq exactly. The sharded variant rounds within each shard, then across the
shards' leftover carriers, then hands the decisions back down — the same tree with shards as subtrees.
"""
from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

Array = Any


def _combine(fl, fr, u):
    """One Alg. 2 step on the carriers of two sibling subtrees.

    Returns (f_up, carry_left, fin): the carrier value passed up, whether the left child's carrier is
    the one passed up, and the final 0/1 value of the other child's carrier.
    """
    act_l = (fl > 0) & (fl < 1)
    act_r = (fr > 0) & (fr < 1)
    both = act_l & act_r
    s = fl + fr
    le1 = s <= 1
    safe_s = jnp.where(both & le1, s, 1)
    safe_2s = jnp.where(both & ~le1, 2 - s, 1)
    # P(first branch) = β/(α+β): fl/s when s ≤ 1 (α = fr, β = fl), (1−fr)/(2−s) when s > 1.
    p1 = jnp.where(le1, fl / safe_s, (1 - fr) / safe_2s)
    first = u < p1
    # s ≤ 1: first → left gets s, right → 0;   second → right gets s, left → 0.
    # s > 1: first → left → 1, right gets s−1; second → right → 1, left gets s−1.
    carry_both = jnp.where(le1, first, ~first)
    f_both = jnp.where(le1, s, s - 1)
    fin_both = ~le1
    carry_single = act_l & ~act_r
    f_single = jnp.where(carry_single, fl, fr)
    fin_single = jnp.where(carry_single, fr, fl) >= 0.5
    carry = jnp.where(both, carry_both, carry_single)
    f_up = jnp.where(both, f_both, f_single)
    fin = jnp.where(both, fin_both, fin_single)
    return f_up, carry, fin


def _depth(n: int) -> int:
    """Levels of the tree over n leaves: ceil(log2 n)."""
    return max(0, (n - 1).bit_length())


ROOT_STREAM = 1 << 20  # fold_in index of the root's uniform; level l's is l


def _tree_up(key, f):
    """Bottom-up pass: returns the root carrier value, the per-level decisions (carry, fin),
    each (levels, 2^levels / 2), level 0 (the leaves' pairs) first, and the root's uniform.

    One `lax.scan` step per level over a fixed-width array: the n leaves padded with zeros to a
    power of two; pairs of zeros pass a zero up, so level l's first ceil(n / 2^(l+1)) pairs are
    those of a tree that pads each level to an even length, and the rest are zeros. Level l's
    uniforms are `uniform(fold_in(key, l), (ceil(n/2),))` (pair i takes element i), the root's
    `uniform(fold_in(key, ROOT_STREAM), ())`, all drawn by one vmapped call (each a prefix of the
    widest draw: threefry is counter-based), so the program holds one threefry."""
    n = f.shape[0]
    depth = _depth(n)
    streams = jnp.append(jnp.arange(depth), ROOT_STREAM)
    keys = jax.vmap(lambda s: jax.random.fold_in(key, s))(streams)
    uniforms = jax.vmap(lambda k: jax.random.uniform(k, ((n + 1) // 2,), f.dtype))(keys)
    if depth == 0:
        return f[0], None, uniforms[0, 0]
    half = 1 << (depth - 1)
    levels_u = jnp.pad(uniforms[:depth], ((0, 0), (0, half - uniforms.shape[1])))

    def level(f, u):
        pairs = f.reshape(half, 2)
        f_up, carry, fin = _combine(pairs[:, 0], pairs[:, 1], u)
        return jnp.concatenate([f_up, jnp.zeros_like(f_up)]), (carry, fin)

    f, levels = lax.scan(level, jnp.pad(f, (0, 2 * half - n)), levels_u)
    return f[0], levels, uniforms[depth, 0]


def _tree_down(root_val, levels, n):
    """Top-down pass: the final value of every leaf given its root carrier's value (a scan over
    the levels, root first; leaf i of a level is the left or right child of its pair i // 2)."""
    if levels is None:
        return jnp.reshape(root_val, (1,))
    half = levels[0].shape[1]
    val = jnp.zeros((2 * half,), jnp.bool_).at[0].set(root_val)

    def level(val, decisions):
        carry, fin = decisions
        left = jnp.where(carry, val[:half], fin)
        right = jnp.where(carry, fin, val[:half])
        return jnp.stack([left, right], axis=1).reshape(-1), None

    val, _ = lax.scan(level, val, levels, reverse=True)
    return val[:n]


def _tolerance(dtype):
    return 1e-4 if jnp.dtype(dtype) == jnp.float32 else 1e-9


def _round_root(u, f):
    """The root carrier's own 0/1: 1 with probability f (u uniform), exact near 0 and 1."""
    tol = _tolerance(f.dtype)
    return jnp.where(f <= tol, False, jnp.where(f >= 1 - tol, True, u < f))


def _depround_core(key, q):
    q = jnp.clip(jnp.nan_to_num(q, nan=0.0), 0, 1)
    root, levels, u = _tree_up(key, q)
    return _tree_down(_round_root(u, root), levels, q.shape[0])


_depround_jit = jax.jit(_depround_core)


def check_q(q) -> None:
    """Host-side check of inclusion probabilities (concrete arrays only)."""
    try:
        v = np.asarray(q)
    except Exception:
        return
    if v.ndim != 1 or v.size == 0:
        raise ValueError(f"q must be a non-empty 1-D array, got shape {v.shape}")
    if np.any(np.isnan(v)):
        raise ValueError(f"q contains NaN at {np.flatnonzero(np.isnan(v))[:5].tolist()}")
    if np.any(v < 0):
        raise ValueError(f"q must be ≥ 0, min is {v.min()}")
    if np.any(v > 1):
        raise ValueError(f"q must be ≤ 1, max is {v.max()}")


def depround(rng, q) -> Array:
    """Alg. 2: boolean mask with P(mask_i) = q_i and exactly Σq selected when Σq is an integer.

    Concrete q is checked (NaN, < 0, > 1 raise ValueError). Under tracing (inside a user's jit) no
    check is possible: NaN is treated as 0 and q is clipped to [0, 1]. float64 q uses float64
    uniforms (x64 enabled locally).
    """
    check_q(q)
    x64 = np.dtype(getattr(q, "dtype", np.float32)) == np.float64
    with jax.enable_x64(bool(x64)):
        q = jnp.asarray(q, jnp.float64 if x64 else jnp.float32)
        return _depround_jit(rng, q)


@functools.lru_cache(maxsize=32)
def _sharded_fn(mesh, axis_name):
    from jax.sharding import PartitionSpec as P

    ndev = mesh.shape[axis_name]

    def local(key, ql):
        ql = jnp.clip(jnp.nan_to_num(ql, nan=0.0), 0, 1)
        idx = lax.axis_index(axis_name)
        root, levels, _ = _tree_up(jax.random.fold_in(key, idx + 1), ql)
        roots = lax.all_gather(root, axis_name)
        top_root, top_levels, top_u = _tree_up(jax.random.fold_in(key, 0), roots)
        finals = _tree_down(_round_root(top_u, top_root), top_levels, ndev)
        return _tree_down(finals[idx], levels, ql.shape[0])

    return jax.jit(jax.shard_map(local, mesh=mesh, in_specs=(P(), P(axis_name)),
                                 out_specs=P(axis_name), check_vma=False))


def depround_sharded(rng, q, *, mesh, axis_name: str) -> Array:
    """DepRound of a pool sharded over `mesh[axis_name]`: round within each shard, then the shards'
    leftover carriers together (all-gathered, one value per device), then back down."""
    from jax.sharding import NamedSharding, PartitionSpec as P

    check_q(q)
    n = np.shape(q)[0]
    ndev = mesh.shape[axis_name]
    if n % ndev:
        raise ValueError(f"pool size {n} must be divisible by the {ndev} devices of {axis_name!r}")
    qd = jax.device_put(jnp.asarray(q, jnp.float32), NamedSharding(mesh, P(axis_name)))
    return _sharded_fn(mesh, axis_name)(rng, qd)
