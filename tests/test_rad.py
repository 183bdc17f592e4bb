"""RAD's distribution (Thm. 1, Cor. 1) against an LP, a float64 brute force and itself (sort vs
sort-free, single device vs sharded over 8 fake devices)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.optimize import linprog

from kdjax.methods import rad

# ----------------------------------------------------------------------------- references


def lp_game(g, ell, m):
    """max_p min_{c∈[0,1]^n, Σc=n−m} Σ p_i(c_i(g_i+ℓ_i) − ℓ_i) as one LP (inner LP dualised).

    Variables x = (p (n), μ (n), λ): maximise λ(n−m) − Σμ − Σ p_i ℓ_i
    s.t. λ − μ_i − p_i(g_i+ℓ_i) ≤ 0, Σp = 1, p ≥ 0, μ ≥ 0, λ free.
    """
    n = len(g)
    c = np.concatenate([np.asarray(ell, float), np.ones(n), [-(n - m)]])
    a_ub = np.zeros((n, 2 * n + 1))
    a_ub[np.arange(n), np.arange(n)] = -(g + ell)
    a_ub[np.arange(n), n + np.arange(n)] = -1
    a_ub[:, -1] = 1
    a_eq = np.concatenate([np.ones(n), np.zeros(n + 1)])[None]
    bounds = [(0, None)] * (2 * n) + [(None, None)]
    res = linprog(c, A_ub=a_ub, b_ub=np.zeros(n), A_eq=a_eq, b_eq=[1.0], bounds=bounds,
                  method="highs")
    assert res.status == 0
    return -res.fun


def inner_min_lp(p, g, ell, m):
    """min_c OBJ(p, c) by linprog (independent of rad.game_value)."""
    n = len(g)
    v = p * (g + ell)
    res = linprog(v, A_eq=np.ones((1, n)), b_eq=[n - m], bounds=[(0, 1)] * n, method="highs")
    assert res.status == 0
    return res.fun - float(np.sum(p * ell))


def brute_thm1(g, ell, m):
    """Theorem 1 verbatim in float64: sort, all prefixes, argmax; largest optimal prefix."""
    g, ell = np.asarray(g, np.float64), np.asarray(ell, np.float64)
    keep = g > 0
    order = np.argsort(-g[keep], kind="stable")
    gs, ls = g[keep][order], ell[keep][order]
    N = (np.cumsum(gs / (gs + ls)) - m) / np.cumsum(1 / (gs + ls))
    v = N.max()
    return int(np.sum(g[keep] >= v)), v


# ----------------------------------------------------------------------------- small pools vs LP


def _pools(seed, n_pools, n):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n_pools):
        kind = i % 4
        g = rng.random(n)
        if kind == 1:
            g = np.round(g * 4) / 4  # ties (and zeros)
        elif kind == 2:
            g = g ** 6  # skewed
        elif kind == 3:
            g[rng.random(n) < 0.3] = 0.0  # zero gains
        out.append(g)
    return out


N_SMALL = 9


@pytest.mark.parametrize("method", ["newton", "sort"])
def test_theorem1_matches_lp(method):
    rng = np.random.default_rng(1)
    for i, g in enumerate(_pools(0, 16, N_SMALL)):
        ell = rng.random(N_SMALL) * (2.0 if i % 2 else 0.3)
        m = float(rng.choice([0.0, 1.0, 2.5, 4.0, 7.0, 9.0]))
        sol = rad.robust_distribution(g, ell, m, method=method)
        p = np.asarray(sol.p, np.float64)
        opt = lp_game(g, ell, m)
        assert float(sol.value) == pytest.approx(opt, abs=2e-6)
        assert inner_min_lp(p, g, ell, m) == pytest.approx(opt, abs=2e-6)
        assert p.sum() == pytest.approx(1.0, abs=1e-6) and np.all(p >= 0)
        assert int(sol.k_star) == np.count_nonzero(p)


@pytest.mark.parametrize("method", ["newton", "sort"])
def test_corollary1_matches_lp(method):
    rng = np.random.default_rng(2)
    for i, g in enumerate(_pools(3, 16, N_SMALL)):
        m = float(rng.choice([0.0, 0.5, 2.0, 4.0, 8.0, 9.0]))
        w = None if i % 3 else float(rng.choice([0.0, 0.5, 1.0]))
        sol = rad.rad_distribution(g, m, w, method=method)
        w_ = 1 - m / N_SMALL if w is None else w
        opt = lp_game(g, w_ * g, m)
        assert float(sol.value) == pytest.approx(opt, abs=2e-6)
        p = np.asarray(sol.p, np.float64)
        assert inner_min_lp(p, g, w_ * g, m) == pytest.approx(opt, abs=2e-6)
        if w is None:  # default w keeps OPT ≥ 0 (Sec. 3.2)
            assert float(sol.value) >= -1e-7


def test_closed_form_structure():
    """Cor. 1: p_i = 1/(g_i Σ_S 1/g_j) on S = {g ≥ OPT}, OPT = (k − (1+w)m)/Σ_S 1/g_j."""
    g = np.array([0.9, 0.1, 0.5, 0.7, 0.3, 0.8, 0.2, 0.6, 0.4])
    m = 2.0
    sol = rad.rad_distribution(g, m)
    w = 1 - m / 9
    k, v = brute_thm1(g, w * g, m)
    s = g >= v
    assert int(sol.k_star) == k == s.sum()
    np.testing.assert_allclose(np.asarray(sol.p), np.where(s, 1 / g, 0) / np.sum(1 / g[s]),
                               rtol=1e-6)
    assert float(sol.value) == pytest.approx((k - (1 + w) * m) / np.sum(1 / g[s]), rel=1e-6)


# ----------------------------------------------------------------------------- edge cases


def test_m_zero_spreads_over_top_ties():
    g = np.array([0.2, 0.9, 0.5, 0.9, 0.9, 0.1, 0.3, 0.4, 0.0])
    for method in ("newton", "sort"):
        sol = rad.rad_distribution(g, 0.0, method=method)
        assert int(sol.k_star) == 3
        np.testing.assert_allclose(np.asarray(sol.p), np.where(g == 0.9, 1 / 3, 0), atol=1e-7)
        assert float(sol.value) == pytest.approx(0.9, rel=1e-6)


def test_ties_get_equal_probability():
    g = np.array([0.5, 0.5, 0.5, 0.4, 0.4, 0.9, 0.9, 0.1, 0.5])
    for method in ("newton", "sort"):
        p = np.asarray(rad.rad_distribution(g, 2.0, method=method).p)
        for val in np.unique(g):
            assert np.ptp(p[g == val]) < 1e-7


def test_m_equals_n_and_close_to_n():
    g = np.linspace(0.05, 0.95, N_SMALL)
    sol = rad.rad_distribution(g, float(N_SMALL))  # w = 0: nothing to lose, nothing to gain
    assert float(sol.value) == pytest.approx(0.0, abs=1e-7)
    np.testing.assert_allclose(np.asarray(sol.p), 1 / N_SMALL, rtol=1e-6)
    sol = rad.rad_distribution(g, N_SMALL - 0.5)  # G_n ≥ m still holds with the default w
    assert float(sol.value) >= 0
    assert float(sol.value) == pytest.approx(lp_game(g, (0.5 / N_SMALL) * g, N_SMALL - 0.5),
                                             abs=1e-6)


def test_all_zero_gains():
    sol = rad.rad_distribution(np.zeros(N_SMALL), 2.0)
    assert float(sol.value) == 0.0 and int(sol.k_star) == N_SMALL
    np.testing.assert_allclose(np.asarray(sol.p), 1 / N_SMALL, rtol=1e-6)


def test_g_n_below_m_regimes():
    """G_n < m: either S = all points with OPT = (G_n − m)/H_n < 0, or a point of least loss."""
    g = np.linspace(0.1, 0.9, N_SMALL)
    ell = np.full(N_SMALL, 0.5)
    ell[3] = 0.05
    for m in (6.0, 8.5):
        for method in ("newton", "sort"):
            sol = rad.robust_distribution(g, ell, m, method=method)
            assert float(sol.value) == pytest.approx(lp_game(g, ell, m), abs=2e-6)
    sol = rad.robust_distribution(g, ell, 8.5)
    assert float(sol.value) == pytest.approx(-0.05, abs=1e-7)
    assert np.asarray(sol.p)[3] == pytest.approx(1.0)
    sol = rad.robust_distribution(g, np.full(N_SMALL, 0.5), 6.0)  # interior: k* = n, OPT < 0
    assert int(sol.k_star) == N_SMALL and float(sol.value) < 0


def test_bad_input_raises():
    with pytest.raises(ValueError, match="num_mistakes"):
        rad.rad_distribution(np.ones(4), 5.0)
    with pytest.raises(ValueError, match="num_mistakes"):
        rad.rad_distribution(np.ones(4), -1.0)
    with pytest.raises(ValueError, match="≥ 0"):
        rad.rad_distribution(np.array([0.5, -0.1]), 0.0)
    with pytest.raises(ValueError, match="NaN"):
        rad.rad_distribution(np.array([0.5, np.nan]), 0.0)
    with pytest.raises(ValueError, match="1-D"):
        rad.rad_distribution(np.ones((2, 2)), 0.0)
    with pytest.raises(ValueError, match="w must"):
        rad.rad_distribution(np.ones(4), 1.0, w=-0.5)
    with pytest.raises(ValueError, match="same shape"):
        rad.robust_distribution(np.ones(4), np.ones(3), 1.0)
    with pytest.raises(ValueError, match="method"):
        rad.rad_distribution(np.ones(4), 1.0, method="bogus")


def test_dtypes_and_array_types():
    g32 = np.random.default_rng(0).random(N_SMALL).astype(np.float32)
    s32 = rad.rad_distribution(g32, 2.0)
    assert s32.p.dtype == jnp.float32 and s32.value.dtype == jnp.float32
    s64 = rad.rad_distribution(g32.astype(np.float64), 2.0)
    assert s64.p.dtype == jnp.float64 and s64.value.dtype == jnp.float64
    sj = rad.rad_distribution(jnp.asarray(g32), 2.0)
    np.testing.assert_array_equal(np.asarray(sj.p), np.asarray(s32.p))
    np.testing.assert_allclose(np.asarray(s64.p), np.asarray(s32.p), rtol=1e-5)


# ----------------------------------------------------------------------------- sort vs sort-free


N_RAND = 1000  # divisible by the 8 fake devices


def _random_pool(rng, kind, dtype):
    g = rng.random(N_RAND)
    if kind == "skewed":
        g = g ** 8
    elif kind == "ties":
        g = np.round(g * 20) / 20
    elif kind == "zeros":
        g[rng.random(N_RAND) < 0.5] = 0
    elif kind == "beta":
        g = rng.beta(0.3, 3.0, N_RAND)
    return g.astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sort_and_newton_agree(dtype):
    rng = np.random.default_rng(7)
    for trial in range(24):
        kind = ["uniform", "skewed", "ties", "zeros", "beta"][trial % 5]
        g = _random_pool(rng, kind, dtype)
        m = float(rng.choice([0.0, 0.01, 0.05, 0.2, 0.5, 0.9, 1.0]) * N_RAND)
        a = rad.rad_distribution(g, m, method="sort")
        b = rad.rad_distribution(g, m, method="newton")
        k_ref, v_ref = brute_thm1(g, (1 - m / N_RAND) * np.asarray(g, np.float64), m)
        assert int(a.k_star) == int(b.k_star), (kind, m)
        if np.count_nonzero(g) > (2 - m / N_RAND) * m:  # Theorem 1's G_n ≥ m over g > 0
            assert int(b.k_star) == k_ref, (kind, m)
            assert float(b.value) == pytest.approx(v_ref, rel=1e-5, abs=1e-7)
        np.testing.assert_allclose(np.asarray(a.p), np.asarray(b.p), rtol=1e-5, atol=1e-9)
        assert float(a.value) == pytest.approx(float(b.value), rel=1e-5, abs=1e-7)


def test_sharded_matches_single_device():
    devices = jax.devices()
    assert len(devices) == 8, "tests/conftest.py should provide 8 fake CPU devices"
    mesh = jax.sharding.Mesh(np.array(devices), ("pool",))
    rng = np.random.default_rng(11)
    for trial in range(8):
        kind = ["uniform", "skewed", "ties", "zeros"][trial % 4]
        g = _random_pool(rng, kind, np.float32)
        m = float(rng.choice([0.0, 0.05, 0.3, 1.0]) * N_RAND)
        a = rad.rad_distribution(g, m)
        b = rad.rad_distribution_sharded(g, m, mesh=mesh, axis_name="pool")
        assert int(a.k_star) == int(b.k_star)
        np.testing.assert_allclose(np.asarray(a.p), np.asarray(b.p), rtol=1e-5, atol=1e-9)
        assert float(a.value) == pytest.approx(float(b.value), rel=1e-6, abs=1e-7)
    ell = rng.random(N_RAND).astype(np.float32)
    g = _random_pool(rng, "uniform", np.float32)
    a = rad.robust_distribution(g, ell, 100.0)
    b = rad.robust_distribution_sharded(g, ell, 100.0, mesh=mesh, axis_name="pool")
    assert int(a.k_star) == int(b.k_star)
    np.testing.assert_allclose(np.asarray(a.p), np.asarray(b.p), rtol=1e-5, atol=1e-9)


# ----------------------------------------------------------------------------- precision


def test_float32_pool_gives_float64_answer_at_1e6():
    n = 1_000_000
    rng = np.random.default_rng(5)
    for g, m in [(rng.random(n).astype(np.float32), 0.05 * n),
                 ((rng.random(n) ** 4).astype(np.float32), 0.3 * n),
                 (np.sort(rng.random(n).astype(np.float32))[::-1].copy(), 0.1 * n)]:  # sorted
        k_ref, v_ref = brute_thm1(g, (1 - m / n) * g.astype(np.float64), m)
        sol = rad.rad_distribution(g, m)
        assert int(sol.k_star) == k_ref
        assert float(sol.value) == pytest.approx(v_ref, rel=2e-7)
        assert abs(float(np.asarray(sol.p, np.float64).sum()) - 1) < 1e-5


@pytest.mark.slow
def test_float32_pool_gives_float64_answer_sort_1e6():
    n = 1_000_000
    g = np.random.default_rng(6).random(n).astype(np.float32)
    m = 0.1 * n
    k_ref, _ = brute_thm1(g, (1 - m / n) * g.astype(np.float64), m)
    assert int(rad.rad_distribution(g, m, method="sort").k_star) == k_ref


# ----------------------------------------------------------------------------- gains, sampling, m


def test_margin_and_entropy_gains():
    probs = np.array([[0.7, 0.2, 0.1], [0.4, 0.4, 0.2], [1.0, 0.0, 0.0]], np.float32)
    np.testing.assert_allclose(np.asarray(rad.margin_gain(probs)), [0.5, 1.0, 0.0], atol=1e-6)
    ent = [-(0.7 * np.log(0.7) + 0.2 * np.log(0.2) + 0.1 * np.log(0.1)),
           -(2 * 0.4 * np.log(0.4) + 0.2 * np.log(0.2)), 0.0]
    np.testing.assert_allclose(np.asarray(rad.entropy_gain(probs)), ent, rtol=1e-6)


def test_inclusion_probabilities_and_sample_queries():
    p = np.array([0.5, 0.2, 0.1, 0.1, 0.05, 0.05, 0.0], np.float32)
    q_none = np.asarray(rad.inclusion_probabilities(p, 3, overflow="none"))
    np.testing.assert_allclose(q_none, np.minimum(3 * p, 1), rtol=1e-6)
    q = np.asarray(rad.inclusion_probabilities(p, 3))  # water-filling: Σq = 3 exactly
    assert q.sum() == pytest.approx(3.0, abs=1e-5)
    assert q[0] == 1.0 and q[-1] == 0.0
    np.testing.assert_allclose(q[1:6] / p[1:6], q[1] / p[1], rtol=1e-5)  # one common scale
    q_s = np.asarray(rad.inclusion_probabilities(p, 3, overflow="shrink"))
    np.testing.assert_allclose(q_s, 2 * p, rtol=1e-6)  # b' = ⌊1/0.5⌋ = 2
    for seed in range(5):
        mask = np.asarray(rad.sample_queries(jax.random.key(seed), p, 3))
        assert mask.sum() == 3 and mask[0] and not mask[-1]


def test_estimate_num_mistakes():
    correct = np.array([True] * 90 + [False] * 10)
    assert rad.estimate_num_mistakes(correct, 5000) == pytest.approx(500.0)
    with pytest.raises(ValueError):
        rad.estimate_num_mistakes(np.array([], bool), 10)
    idx = rad.uniform_estimation_sample(jax.random.key(0), np.arange(20) % 2 == 0, 4)
    assert len(idx) == 4 and np.all(idx % 2 == 0) and len(set(idx)) == 4
    with pytest.raises(ValueError):
        rad.uniform_estimation_sample(jax.random.key(0), np.ones(3, bool), 4)


def test_realized_gain_and_game_value():
    g = np.array([0.9, 0.5, 0.2])
    assert rad.realized_gain([1, 1, 0], g, [True, False, True], w=0.5) == pytest.approx(
        (0.9 - 0.25) / 2)
    p = np.array([0.5, 0.5, 0.0])
    assert rad.game_value(p, g, 0.5 * g, 1.0) == pytest.approx(
        inner_min_lp(p, g, 0.5 * g, 1.0), abs=1e-9)
