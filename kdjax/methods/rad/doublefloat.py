"""Double-float ("hi + lo") arithmetic for RAD's solver: error-free sums and products
(Knuth's two-sum, Dekker's split and two-product) and the precise / centred reductions that let
a float32 pool of millions of points give the float64 answer (see `solver.py`)."""
from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax


def _two_sum(a, b):
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


def _split(a):
    c = a * jnp.asarray(4097.0 if a.dtype == jnp.float32 else 134217729.0, a.dtype)
    hi = c - (c - a)
    return hi, a - hi


def _two_prod(a, b):
    p = a * b
    ah, al = _split(a)
    bh, bl = _split(b)
    return p, ((ah * bh - p) + ah * bl + al * bh) + al * bl


def _df_add(x, y):
    s, e = _two_sum(x[0], y[0])
    return _two_sum(s, e + x[1] + y[1])


def _df_div(x, y):
    """(x_hi + x_lo) / (y_hi + y_lo) as a double-float."""
    q = x[0] / y[0]
    p, pe = _two_prod(q, y[0])
    r = ((x[0] - p) - pe + x[1] - q * y[1]) / y[0]
    return _two_sum(q, r)


def _df_tree_sum(hi, lo):
    """Pairwise double-float sum of 1-D arrays (hi, lo) → scalars; O(n) work, O(log n) depth."""
    while hi.shape[0] > 1:
        if hi.shape[0] % 2:
            hi = jnp.concatenate([hi, jnp.zeros((1,), hi.dtype)])
            lo = jnp.concatenate([lo, jnp.zeros((1,), lo.dtype)])
        h2, l2 = hi.reshape(-1, 2), lo.reshape(-1, 2)
        hi, e = _two_sum(h2[:, 0], h2[:, 1])
        lo = l2[:, 0] + l2[:, 1] + e
    if hi.shape[0] == 0:
        z = jnp.zeros((), hi.dtype)
        return z, z
    return _two_sum(hi[0], lo[0])


_BLOCK = 32


def _precise_sum(x, axis_name=None):
    """Σx as a double-float: float sums of blocks of 32, then a pairwise double-float tree.

    The block sums carry independent rounding errors of a few ulps each, which average out over the
    n/32 blocks; the tree above them is exact to ~eps². Across shards the (hi, lo) pairs are
    all-gathered and combined the same way.
    """
    n = x.shape[0]
    nb = n // _BLOCK * _BLOCK
    parts = []
    if nb:
        parts.append(jnp.sum(x[:nb].reshape(-1, _BLOCK), axis=1))
    if n > nb:
        parts.append(x[nb:])
    hi = jnp.concatenate(parts) if len(parts) > 1 else parts[0]
    s = _df_tree_sum(hi, jnp.zeros_like(hi))
    if axis_name is not None:
        hs, ls = lax.all_gather(s[0], axis_name), lax.all_gather(s[1], axis_name)
        s = _df_tree_sum(hs, ls)
    return s


def _centered_sum(x_minus, cnt, axis_name=None):
    """Σ_S x as a double-float from two plain reductions: c = (Σ_S x)/|S|, then
    |S|·c (exact product) + Σ_S (x − c). Centering shrinks the partial sums, hence the rounding
    error, by ~√|S|·mean/std for unordered data; `x_minus(c)` must return (x − c)·1_S."""
    f = _fast_sum(x_minus(jnp.zeros((), cnt.dtype)), axis_name)
    c = f / jnp.maximum(cnt, 1)
    d = _fast_sum(x_minus(c), axis_name)
    hi, lo = _two_prod(cnt, c)
    return _two_sum(hi, lo + d)


def _fast_sum(x, axis_name=None):
    s = jnp.sum(x)
    return s if axis_name is None else lax.psum(s, axis_name)


def _df_cumsum(x):
    def comb(u, v):
        s, e = _two_sum(u[0], v[0])
        return s, e + u[1] + v[1]

    return lax.associative_scan(comb, (x, jnp.zeros_like(x)))


def _index_df(n, dtype):
    """1, 2, ..., n as exact double-floats (float32 alone is exact only below 2^24)."""
    i = jnp.arange(1, n + 1, dtype=jnp.int32)
    hi = i.astype(dtype)
    return hi, (i - hi.astype(jnp.int32)).astype(dtype)
