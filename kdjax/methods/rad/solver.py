"""RAD's solver of the robust game (Theorem 1 / Corollary 1): exact, sort-free, shardable.

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

from kdjax.methods.rad.doublefloat import (_two_sum, _two_prod, _df_add, _df_div, _precise_sum, _centered_sum, _fast_sum, _df_cumsum, _index_df)

Array = Any


class RadSolution(NamedTuple):
    p: Array        # (n,) sampling distribution, sums to 1
    k_star: Array   # int32: size of the support of p
    value: Array    # OPT, the optimal value of (3) / (4)


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
