"""RAD: robust active distillation (Baykal et al., ICLR 2023), the sampling distribution.

The game (Eq. 3). A pool of n points has gains g_i ≥ 0 and losses ℓ_i ≥ 0. We pick p ∈ Δ1 (a
probability vector); an adversary picks c ∈ [0,1]^n with Σc = n − m (it mislabels m points, possibly
fractionally), and we score OBJ(p, c) = Σ_i p_i (g_i c_i − (1 − c_i) ℓ_i). We return a maximiser of
min_c OBJ(p, c), its support size k* and the value OPT = max_p min_c OBJ(p, c).

Theorem 1 (g sorted decreasingly, G_k = Σ_{i≤k} g_i/(g_i+ℓ_i), H_k = Σ_{i≤k} 1/(g_i+ℓ_i), G_n ≥ m):
p_i = 1/(H_{k*}(g_i+ℓ_i)) for i ≤ k*, 0 otherwise; k* = argmax_k N(k), N(k) = (G_k − m)/H_k;
OPT = N(k*). Corollary 1 (RAD, Eq. 4): ℓ_i = w·g_i, so N(k) = (k − (1+w)m)/Σ_{i≤k} 1/g_i and
p_i ∝ 1/g_i on the top k*; default w = 1 − m/n, which makes G_n ≥ m hold for every m ≤ n.

Conventions (derived here, all checked against an LP in tests/test_rad.py):
* N(k+1) is a weighted mean of N(k) and g_{k+1}, so N is unimodal and OPT = τ* is the root of the
  monotone φ(τ) = Σ_i max(0, g_i − τ)/(g_i + ℓ_i) − m. Ties: we return the *largest* optimal prefix,
  S = {i : g_i ≥ τ*} (points with g_i = ℓ_i = 0 are never in it: they score 0 whatever happens).
  This makes p permutation-equivariant (equal gains get equal probability) and gives m = 0 its
  natural answer: p spread over the points of maximal gain, k* = their number.
* G_n < m (Theorem 1's condition fails; for Cor. 1 only possible with a user w > 1 − m/n or with
  zero gains). Then the exact optimum of (3) is either S = all eligible points (OPT = (G_n − m)/H_n
  ≤ 0), or, when the adversary's budget m suffices to pull every point down to V_f = −min_i ℓ_i
  (Σ_i clip((g_i − V_f)/(g_i+ℓ_i), 0, 1) ≤ m), OPT = V_f with p uniform over argmin_i ℓ_i (a point
  of least loss is the best one can do). All gains zero: p uniform, OPT = 0.

Two solvers with the same answer: `method='sort'` (sort + prefix sums, Thm. 1 verbatim) and
`method='newton'` (sort-free, the default): the root of φ is bracketed (a strided subsample's root
±10%, checked) and narrowed by regula falsi (Illinois), one plain reduction per step; then Newton
steps from below, τ ← N({g ≥ τ}), run to the exact fixed point. Only O(n) reductions, so a pool
sharded over a mesh needs only all-reduces (`rad_distribution_sharded`); no sort anywhere.
Precision: a float32 cumulative sum of 1/g over millions of points picks the wrong k*. The sort
solver scans in double-float (hi, lo); the sort-free one sums Σ_S 1/g as |S|·c + Σ_S(1/g − c) with
c the mean (centering shrinks the rounding error by ~√|S|) and an exact double-float product; both
decide with an exact comparison g ≥ τ_hi + τ_lo. A float32 pool gives the float64 answer (tests at
n = 1e6: random, skewed and sorted pools; bench/rad.py checks n = 1e7).
"""
from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from kdjax.methods.depround import depround, depround_sharded  # noqa: F401  (re-export)

Array = Any


class RadSolution(NamedTuple):
    p: Array        # (n,) sampling distribution, sums to 1
    k_star: Array   # int32: size of the support of p
    value: Array    # OPT, the optimal value of (3) / (4)


# --------------------------------------------------------------------------------------------
# Gains (Sec. 3.1 and D.6)
# --------------------------------------------------------------------------------------------


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
# Double-float arithmetic: a value is hi + lo with |lo| ≤ ulp(hi)/2 (Dekker / Knuth).
# --------------------------------------------------------------------------------------------


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


def _ge(g, tau):
    """1.0 where g ≥ τ else 0.0, from max() alone.

    XLA:CPU vectorises max() but not compare/select inside reductions (measured ~10x slower), so the
    indicator is relu(1 − relu(τ − g)·BIG): exact for every normal-float difference τ − g (BIG·d ≥ 2
    for d ≥ the smallest normal; overflow to inf also gives 0).
    """
    big = jnp.asarray(2.0 ** 127 if g.dtype == jnp.float32 else 2.0 ** 1023, g.dtype)
    return jnp.maximum(1.0 - jnp.maximum(tau - g, 0.0) * big, 0.0)


def _ge_df(g, tau):
    """Indicator g ≥ τ_hi + τ_lo (exact: g − τ_hi is exact near τ_hi by Sterbenz)."""
    return _ge(g - tau[0], tau[1])


# --------------------------------------------------------------------------------------------
# Problem terms. Every solver sees per-point a_i, r_i and a scalar M with N(S) = (Σ_S a − M)/Σ_S r:
#   Theorem 1: a = g/(g+ℓ), r = 1/(g+ℓ), M = m.     Corollary 1: a = 1, r = 1/g, M = (1+w)m.
# (Cor. 1 is Theorem 1 with ℓ = w g scaled by 1+w; a = 1 keeps Σ_S a an exact count.)
# --------------------------------------------------------------------------------------------


def _terms(g, losses):
    tiny = jnp.asarray(jnp.finfo(g.dtype).tiny, g.dtype)
    if losses is None:
        return jnp.ones((), g.dtype), 1.0 / jnp.maximum(g, tiny)
    r = 1.0 / jnp.maximum(g + losses, tiny)
    return g * r, r


def _r_times(g, losses, ind):
    """ind_i·r_i computed inline (materialising r costs a full extra pass on CPU)."""
    tiny = jnp.asarray(jnp.finfo(g.dtype).tiny, g.dtype)
    den = g if losses is None else g + losses
    return ind / jnp.maximum(den, tiny)


def _sum_a(a, ind, axis_name, precise):
    summ = _precise_sum if precise else _fast_sum
    if a.ndim == 0:  # Cor. 1: a = 1, Σ_S a = |S|
        return summ(ind, axis_name)
    return summ(a * ind, axis_name)


def _edge_solution(g, losses, m, w, axis_name):
    """Exact optimum of (3) when G_n ≤ m (OPT ≤ 0); see the module docstring. O(n) reductions."""
    ell = losses if losses is not None else w * g
    elig = (g + ell) > 0
    r = jnp.where(elig, 1.0 / jnp.where(elig, g + ell, 1.0), 0.0)
    a = jnp.where(elig, g * r, 0.0)
    a_e = _precise_sum(a, axis_name)
    r_e = _precise_sum(r, axis_name)
    v_a = (a_e[0] + a_e[1] - m) / jnp.where(r_e[0] > 0, r_e[0], 1.0)
    min_l = jnp.min(ell)
    if axis_name is not None:
        min_l = lax.pmin(min_l, axis_name)
    v_f = -min_l
    budget = _fast_sum(jnp.where(elig, jnp.clip((g - v_f) * r, 0.0, 1.0), 0.0), axis_name)
    regime_b = (budget <= m) | (r_e[0] <= 0)
    f = (ell == min_l).astype(g.dtype)
    nf = _fast_sum(f, axis_name)
    p_b = f / nf
    p_a = r / jnp.where(r_e[0] > 0, r_e[0], 1.0)
    p = jnp.where(regime_b, p_b, p_a)
    k = jnp.where(regime_b, nf, _fast_sum(elig.astype(g.dtype), axis_name)).astype(jnp.int32)
    value = jnp.where(regime_b, v_f, v_a)
    return p, k, value.astype(g.dtype)


def _count(ind, axis_name):
    """|S| from a 0/1 indicator: float sums of 0/1 are exact below 2^24 points per shard."""
    if ind.shape[0] < (1 << 24):
        return _fast_sum(ind, axis_name)
    return _fast_sum(ind.astype(jnp.int32), axis_name).astype(ind.dtype)


def _main_regime(g, losses, M, axis_name):
    """(φ(0+) > 0, Σ_{g>0} a): φ(0+) = Σ_{g>0} a − M > 0 ⇔ OPT > 0, the usual regime; otherwise
    the answer is `_edge_solution`'s."""
    a, _ = _terms(g, losses)
    tiny = jnp.asarray(jnp.finfo(g.dtype).tiny, g.dtype)
    ind = _ge(g, tiny)
    if a.ndim == 0:  # an exact count
        s = _count(ind, axis_name)
        return (s - M[0]) - M[1] > 0, s
    s = _precise_sum(a * ind, axis_name)
    num = _df_add(s, (-M[0], -M[1]))
    return num[0] + num[1] > 0, s[0] + s[1]


def _gmax(g, axis_name):
    mx = jnp.max(g)
    return mx if axis_name is None else lax.pmax(mx, axis_name)


def _clamp_df(t, gmax):
    """N(S) ≤ max_S g in exact arithmetic; rounding can push it an ulp above (m = 0, ties)."""
    over = (t[0] > gmax) | ((t[0] == gmax) & (t[1] > 0))
    return jnp.where(over, gmax, t[0]), jnp.where(over, 0, t[1])


def _finalize(g, losses, M, tau_df, axis_name):
    """S = {g ≥ τ}, p = r/Σ_S r on S, value N(S), k = |S|."""
    a, _ = _terms(g, losses)
    ind = _ge_df(g, tau_df)
    cnt = _count(ind, axis_name)
    s_a = _sum_a(a, ind, axis_name, True) if a.ndim else (cnt, jnp.zeros((), g.dtype))
    num = _df_add(s_a, (-M[0], -M[1]))
    den = _precise_sum(_r_times(g, losses, ind), axis_name)
    value = _clamp_df(_df_div(num, den), _gmax(g, axis_name))
    p = _r_times(g, losses, ind) * (1.0 / den[0])
    return p.astype(g.dtype), cnt.astype(jnp.int32), (value[0] + value[1]).astype(g.dtype)


# --------------------------------------------------------------------------------------------
# Sort-free solver (Newton on φ from below)
# --------------------------------------------------------------------------------------------


def _newton_core(g, losses, M, axis_name, a0=None, max_fast=48, max_precise=16):
    """Root of φ from below, then N(S) at the exact fixed point S = {g ≥ N(S)}.

    Fast phase: secant steps on φ(τ) = Σ relu(g − τ)/(g+ℓ) − M (one plain single-output reduction
    per step: XLA:CPU vectorises those, not multi-output ones); φ is convex and decreasing, so
    secants through two points left of the root stay left of it. Precise phase: Newton steps
    τ ← N({g ≥ τ}) with a double-float Σ_S r, restarted from τ_fast (N of any prefix is ≤ OPT, so
    this is safe whatever the fast phase did); each step is confirmed by an exact count of
    {g ≥ τ} (sets are nested, so equal counts mean equal sets). Returns (p, k*, value, passes).
    """
    a, _ = _terms(g, losses)
    tiny = jnp.asarray(jnp.finfo(g.dtype).tiny, g.dtype)
    m_f = M[0] + M[1]
    gmax = _gmax(g, axis_name)

    def phi(tau):  # τ > 0 here; written so that XLA:CPU emits one vectorised reduction
        if losses is None:
            return _fast_sum(jnp.maximum(1.0 - tau / g, 0.0), axis_name) - m_f
        return _fast_sum(jnp.maximum((g - tau) / (g + losses), 0.0), axis_name) - m_f

    # Illinois (regula falsi) on a bracket of the root; only φ is evaluated, which never overflows
    # ((g − τ)/(g+ℓ) ≤ 1), whereas Σ 1/g over tiny gains can.
    tol = jnp.maximum(1e-5, 8 * jnp.finfo(g.dtype).eps).astype(g.dtype)  # the precise phase finishes
    zero = jnp.zeros((), g.dtype)

    def illinois(phi_fn, lo, flo, hi, fhi, max_it):
        def cond(s):
            lo, _, hi, _, _, it = s
            return (hi - lo > tol * hi) & (it < max_it)

        def body(s):
            lo, flo, hi, fhi, side, it = s
            t = hi - fhi * (hi - lo) / (fhi - flo)
            t = jnp.where((t > lo) & (t < hi), t, 0.5 * (lo + hi))
            f = phi_fn(t)
            pos = f > 0
            new_flo = jnp.where(pos, f, jnp.where(side < 0, flo / 2, flo))
            new_fhi = jnp.where(pos, jnp.where(side > 0, fhi / 2, fhi), f)
            out = (jnp.where(pos, t, lo), new_flo, jnp.where(pos, hi, t), new_fhi)
            return (*(x.astype(g.dtype) for x in out), jnp.where(pos, 1, -1).astype(jnp.int32),
                    it + 1)

        init = tuple(jnp.asarray(x).astype(g.dtype) for x in (lo, flo, hi, fhi))
        out = lax.while_loop(cond, body, (*init, jnp.int32(0), jnp.int32(0)))
        return out[0], out[1], out[2], out[3], out[5]

    if a0 is None:
        a0 = _sum_a(a, _ge(g, tiny), axis_name, False)
    f_lo0 = a0 - m_f
    bracket = (zero, f_lo0, gmax, -m_f)
    stride = g.shape[0] // 65536
    if stride > 1:
        # Bracket the root with the solution on a strided subsample (m scaled): ±10% of it, checked
        # with two passes; a failed check falls back to the wider valid bracket.
        sub = g[::stride]
        sub_l = None if losses is None else losses[::stride]
        m_sub = m_f * (sub.shape[0] / g.shape[0])

        def phi_sub(tau):
            if sub_l is None:
                return _fast_sum(jnp.maximum(1.0 - tau / sub, 0.0), axis_name) - m_sub
            return _fast_sum(jnp.maximum((sub - tau) / (sub + sub_l), 0.0), axis_name) - m_sub

        t_s, _, _, _, _ = illinois(phi_sub, zero, phi_sub(tiny), gmax, -m_sub, max_fast)
        lo_c, hi_c = t_s * 0.9, jnp.minimum(t_s * 1.1, gmax)
        f_lo_c, f_hi_c = phi(jnp.maximum(lo_c, tiny)), phi(hi_c)
        good_lo, good_hi = f_lo_c > 0, f_hi_c <= 0
        bracket = (jnp.where(good_lo, lo_c, zero), jnp.where(good_lo, f_lo_c, f_lo0),
                   jnp.where(good_hi, hi_c, gmax), jnp.where(good_hi, f_hi_c, -m_f))
    budget = jnp.where(m_f > 0, max_fast, 0)
    lo, _, _, _, n_fast = illinois(phi, *bracket, budget)
    t_fast = jnp.where(m_f > 0, lo, gmax)  # m = 0: OPT = max g

    def n_of(ind, cnt):
        s_a = (cnt, jnp.zeros((), g.dtype)) if a.ndim == 0 else \
            _centered_sum(lambda c: (a - c) * ind, cnt, axis_name)
        num = _df_add(s_a, (-M[0], -M[1]))
        den = _centered_sum(lambda c: _r_times(g, losses, ind) - c * ind, cnt, axis_name)
        return _clamp_df(_df_div(num, den), gmax), den

    ind = _ge(g, jnp.maximum(t_fast, tiny))
    cnt = _count(ind, axis_name)
    # (the cond keeps n_of's reductions out of a multi-output fusion with the count's)
    tau, den = lax.cond(cnt >= 0, lambda: n_of(ind, cnt), lambda: n_of(ind, cnt))

    def prec_cond(s):
        return s[3] & (s[4] < max_precise)

    def prec_body(s):
        tau, den, cnt, _, it = s
        ind = _ge_df(g, tau)
        cnt_new = _count(ind, axis_name)
        changed = cnt_new != cnt
        tau_new, den_new = lax.cond(changed, lambda: n_of(ind, cnt_new), lambda: (tau, den))
        return tau_new, den_new, cnt_new, changed, it + 1

    tau, den, cnt, _, n_prec = lax.while_loop(
        prec_cond, prec_body, (tau, den, cnt, jnp.bool_(True), jnp.int32(0)))
    # On exit {g ≥ τ} is the set that produced τ, so τ = N(S) = OPT.
    ind = _ge_df(g, tau)
    p = _r_times(g, losses, ind) * (1.0 / den[0])
    return (p.astype(g.dtype), cnt.astype(jnp.int32), (tau[0] + tau[1]).astype(g.dtype),
            n_fast + n_prec)


def _solve(g, losses, m, w, M, method, axis_name):
    main, a0 = _main_regime(g, losses, M, axis_name)

    def main_branch(_):
        if method == "sort":
            return _sort_core(g, losses, M)
        return _newton_core(g, losses, M, axis_name, a0=a0)[:3]

    def edge_branch(_):
        return _edge_solution(g, losses, m, w, axis_name)

    return lax.cond(main, main_branch, edge_branch, None)


# --------------------------------------------------------------------------------------------
# Sort-based solver (Theorem 1 verbatim, prefix sums in double-float)
# --------------------------------------------------------------------------------------------


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


def _sort_core(g, losses, M):
    """Theorem 1 verbatim: one sort (carrying ℓ), prefix sums, k* = 1 + #{k : g_{k+1} ≥ N(k)}."""
    n = g.shape[0]
    tiny = jnp.asarray(jnp.finfo(g.dtype).tiny, g.dtype)
    key = jnp.where(g >= tiny, -g, jnp.inf)  # ascending sort of −g: eligible points first
    if losses is None:
        ks = lax.sort(key)
        vs = ks < jnp.inf
        gs = jnp.where(vs, -ks, 0)
        rs = jnp.where(vs, 1.0 / jnp.where(vs, gs, 1), 0)
        A = _index_df(n, g.dtype)  # Σ_{i≤k} a = k on the eligible prefix (only that part is used)
    else:
        ks, ls = lax.sort((key, losses), num_keys=1)
        vs = ks < jnp.inf
        gs = jnp.where(vs, -ks, 0)
        rs = jnp.where(vs, 1.0 / jnp.maximum(gs + ls, tiny), 0)
        A = _df_cumsum(gs * rs)
    R = _df_cumsum(rs)
    # g_{k+1} ≥ N(k)  ⇔  g_{k+1}·R_k − (A_k − M) ≥ 0, evaluated in double-float.
    gn = gs[1:]
    p_hi, p_lo = _two_prod(gn, R[0][:-1])
    prod = _two_sum(p_hi, p_lo + gn * R[1][:-1])
    num = _df_add((A[0][:-1], A[1][:-1]), (-M[0], -M[1]))
    d = _df_add(prod, (-num[0], -num[1]))
    take = ((d[0] + d[1]) >= 0) & vs[1:]
    kk = jnp.sum(take.astype(jnp.int32))  # k* − 1
    num_k = _df_add((A[0][kk], A[1][kk]), (-M[0], -M[1]))
    tau = _clamp_df(_df_div(num_k, (R[0][kk], R[1][kk])), jnp.max(g))
    return _finalize(g, losses, M, tau, None)


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def _as_float_array(x, name):
    if isinstance(x, jax.Array):
        if not jnp.issubdtype(x.dtype, jnp.floating):
            x = x.astype(jnp.float32)
        return x
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float32)
    if x.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array, got shape {x.shape}")
    return x


def _check_concrete(name, x, *, allow_negative=False):
    try:
        v = np.asarray(x)
    except Exception:  # traced: checked nowhere (see docstrings)
        return
    if v.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array, got shape {v.shape}")
    if v.size == 0:
        raise ValueError(f"{name} is empty")
    if not np.all(np.isfinite(v)):
        raise ValueError(f"{name} contains NaN or inf")
    if not allow_negative and np.any(v < 0):
        raise ValueError(f"{name} must be ≥ 0 (min {v.min()})")


def _scalar(x):
    try:
        return float(x)
    except Exception:  # traced
        return None


def _split_scalar(x: float, dtype):
    """Host float64 → (hi, lo) in dtype, so M = (1+w)·m enters the solver exactly."""
    hi = np.asarray(x, dtype)
    lo = np.asarray(x - float(hi), dtype)
    return jnp.asarray(hi), jnp.asarray(lo)


@functools.partial(jax.jit, static_argnames=("method", "cor1"))
def _solve_jit(g, losses, m, w, M_hi, M_lo, method, cor1):
    return _solve(g, None if cor1 else losses, m, w, (M_hi, M_lo), method, None)


def _run(g, losses, m, w, method, cor1):
    if method not in ("sort", "newton"):
        raise ValueError(f"method must be 'sort' or 'newton', got {method!r}")
    x64 = np.dtype(g.dtype) == np.float64
    with jax.enable_x64(bool(x64)):
        dtype = jnp.float64 if x64 else jnp.float32
        g = jnp.asarray(g, dtype)
        losses = jnp.zeros_like(g) if losses is None else jnp.asarray(losses, dtype)
        mf, wf = _scalar(m), _scalar(w)
        if mf is not None and wf is not None:
            M_hi, M_lo = _split_scalar((1.0 + wf) * mf if cor1 else mf, dtype)
        else:
            M = jnp.asarray((1.0 + w) * m if cor1 else m, dtype)
            M_hi, M_lo = M, jnp.zeros_like(M)
        sol = _solve_jit(g, losses, jnp.asarray(m, dtype), jnp.asarray(w, dtype), M_hi, M_lo,
                         method, cor1)
    return RadSolution(*sol)


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
