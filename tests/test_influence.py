"""Influence scorers vs brute force: autodiff Hessians/gradients and leave-one-out retraining.

The reference model is a multinomial logistic regression on fixed features (a student's last
layer), fitted in float64 with scipy; leave-one-out retraining is done for every example.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize
import scipy.special
import scipy.stats

from kdjax.methods.lrds import influence as inf

N, F, C, LAM = 60, 4, 3, 0.05


def _objective(theta_flat, x1, y, weights, lam):
    """(1/N) sum_i w_i CE_i + lam/2 ||theta||^2 and its gradient, in numpy float64."""
    theta = theta_flat.reshape(x1.shape[1], -1)
    z = x1 @ theta
    logp = z - scipy.special.logsumexp(z, axis=1, keepdims=True)
    ce = -logp[np.arange(len(y)), y]
    n = len(y)
    val = np.sum(weights * ce) / n + 0.5 * lam * np.sum(theta**2)
    r = np.exp(logp)
    r[np.arange(len(y)), y] -= 1.0
    grad = x1.T @ (weights[:, None] * r) / n + lam * theta
    return val, grad.reshape(-1)


def _fit(x1, y, weights, lam, theta0):
    res = scipy.optimize.minimize(_objective, theta0, args=(x1, y, weights, lam), jac=True,
                                  method="BFGS", options={"gtol": 1e-11, "maxiter": 5000})
    return res.x.reshape(x1.shape[1], -1)


def _ce(x1, y, theta):
    z = x1 @ theta
    return scipy.special.logsumexp(z, axis=1) - z[np.arange(len(y)), y]


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(0)
    means = rng.normal(size=(C, F)) * 1.2
    y = rng.integers(0, C, N)
    x = means[y] + rng.normal(size=(N, F))
    yv = rng.integers(0, C, 40)
    xv = means[yv] + rng.normal(size=(40, F))
    x1 = np.concatenate([x, np.ones((N, 1))], 1)
    xv1 = np.concatenate([xv, np.ones((40, 1))], 1)
    theta = _fit(x1, y, np.ones(N), LAM, np.zeros((F + 1) * C))
    loo = []
    for i in range(N):
        w = np.ones(N)
        w[i] = 0.0
        loo.append(_fit(x1, y, w, LAM, theta.reshape(-1)))
    return dict(x=x, y=y.astype(np.int32), xv=xv, yv=yv.astype(np.int32), x1=x1, xv1=xv1,
                theta=theta, loo=np.stack(loo))


def _outputs(x, x1, theta):
    return inf.Outputs(x, x1 @ theta)


def _spearman(a, b):
    return scipy.stats.spearmanr(a, b).statistic


def test_exact_hessian_matches_autodiff(problem):
    p = problem
    with jax.enable_x64(True):
        out = _outputs(p["x"], p["x1"], p["theta"])
        h = np.asarray(inf.exact_hessian(out, damping=LAM, batch_size=7))

        def loss(t):
            z = jnp.asarray(p["x1"]) @ t.reshape(F + 1, C)
            ce = -jnp.take_along_axis(jax.nn.log_softmax(z), jnp.asarray(p["y"])[:, None], 1)
            return jnp.mean(ce) + 0.5 * LAM * jnp.sum(t**2)

        ref = np.asarray(jax.hessian(loss)(jnp.asarray(p["theta"].reshape(-1))))
    np.testing.assert_allclose(h, ref, atol=1e-12)


def test_last_layer_grads_match_autodiff(problem):
    p = problem
    with jax.enable_x64(True):
        x, z, y = jnp.asarray(p["x"]), jnp.asarray(p["x1"] @ p["theta"]), jnp.asarray(p["y"])
        g = inf.last_layer_grads(x, z, y)
        ref = jax.vmap(jax.grad(lambda t, xi, yi: -jax.nn.log_softmax(
            jnp.append(xi, 1.0) @ t)[yi]), (None, 0, 0))(jnp.asarray(p["theta"]), x, y)
    np.testing.assert_allclose(g, ref, atol=1e-12)


def test_influence_ranks_match_leave_one_out(problem):
    p = problem
    theta, loo = p["theta"], p["loo"]
    with jax.enable_x64(True):
        out = _outputs(p["x"], p["x1"], theta)
        val = _outputs(p["xv"], p["xv1"], theta)
        kw = dict(damping=LAM, hessian="exact", batch_size=16)
        s_par = inf.score_examples("influence", out, p["y"], **kw)
        s_self = inf.score_examples("self_influence", out, p["y"], **kw)
        s_val = inf.score_examples("val_influence", out, p["y"], val=val, val_labels=p["yv"],
                                   **kw)
    # parameter change ||theta_-i - theta|| ~ ||H^-1 g_i|| / N
    d_par = np.linalg.norm((loo - theta).reshape(N, -1), axis=1)
    assert _spearman(s_par, d_par) > 0.98
    np.testing.assert_allclose(s_par / N, d_par, rtol=0.3)  # first order: within 30%
    # own-loss increase when left out ~ g_i^T H^-1 g_i / N
    d_self = np.array([_ce(p["x1"][i:i + 1], p["y"][i:i + 1], loo[i])[0]
                       for i in range(N)]) - _ce(p["x1"], p["y"], theta)
    assert _spearman(s_self, d_self) > 0.95
    # validation-loss increase when left out ~ g_val^T H^-1 g_i / N
    base = _ce(p["xv1"], p["yv"], theta).mean()
    d_val = np.array([_ce(p["xv1"], p["yv"], loo[i]).mean() for i in range(N)]) - base
    assert _spearman(s_val, d_val) > 0.95
    np.testing.assert_allclose(s_val / N, d_val, atol=0.25 * np.abs(d_val).max())
    # and the top-10 influential examples mostly agree with brute force
    top = lambda s: set(np.argsort(-s)[:10])
    assert len(top(s_par) & top(d_par)) >= 8
    assert len(top(s_val) & top(d_val)) >= 7


def test_kfac_matches_dense_kronecker_inverse(problem):
    p = problem
    theta = p["theta"]
    with jax.enable_x64(True):
        out = _outputs(p["x"], p["x1"], theta)
        val = _outputs(p["xv"], p["xv1"], theta)
        got = {k: inf.influence_scores(out, p["y"], kind=k, val=val, val_labels=p["yv"],
                                       damping=LAM, hessian="kfac", batch_size=9)
               for k in ("influence", "self_influence", "val_influence")}
    # dense reference: H = A kron S + lam I with A = E[x~ x~^T], S = E[diag p - p p^T]
    x1 = p["x1"]
    prob = scipy.special.softmax(x1 @ theta, axis=1)
    a = x1.T @ x1 / N
    s = np.mean([np.diag(q) - np.outer(q, q) for q in prob], axis=0)
    h = np.kron(a, s) + LAM * np.eye((F + 1) * C)
    r = prob.copy()
    r[np.arange(N), p["y"]] -= 1
    g = np.einsum("nf,nc->nfc", x1, r).reshape(N, -1)
    rv = scipy.special.softmax(p["xv1"] @ theta, axis=1)
    rv[np.arange(40), p["yv"]] -= 1
    g_val = np.einsum("nf,nc->fc", p["xv1"], rv).reshape(-1) / 40
    hinv_g = np.linalg.solve(h, g.T).T
    np.testing.assert_allclose(got["influence"], np.linalg.norm(hinv_g, axis=1), rtol=1e-8)
    np.testing.assert_allclose(got["self_influence"], np.sum(g * hinv_g, 1), rtol=1e-8)
    np.testing.assert_allclose(got["val_influence"], hinv_g @ g_val, rtol=1e-7, atol=1e-12)


def test_tracin_matches_autodiff_dot_products(problem):
    p = problem
    rng = np.random.default_rng(1)
    thetas = [p["theta"], p["theta"] + 0.3 * rng.normal(size=p["theta"].shape)]
    lrs = [0.5, 0.1]
    with jax.enable_x64(True):
        ckpts = [_outputs(p["x"], p["x1"], t) for t in thetas]
        vals = [_outputs(p["xv"], p["xv1"], t) for t in thetas]
        s_self = inf.tracin_scores(ckpts, p["y"], lrs=lrs, batch_size=8)
        s_val = inf.tracin_scores(ckpts, p["y"], lrs=lrs, val=vals, val_labels=p["yv"],
                                  batch_size=8)
        grad = jax.vmap(jax.grad(lambda t, xi, yi: -jax.nn.log_softmax(xi @ t)[yi]),
                        (None, 0, 0))
        ref_self = ref_val = 0.0
        for t, lr in zip(thetas, lrs):
            gi = np.asarray(grad(jnp.asarray(t), jnp.asarray(p["x1"]),
                                 jnp.asarray(p["y"]))).reshape(N, -1)
            gv = np.asarray(grad(jnp.asarray(t), jnp.asarray(p["xv1"]),
                                 jnp.asarray(p["yv"]))).reshape(40, -1).mean(0)
            ref_self = ref_self + lr * np.sum(gi * gi, 1)
            ref_val = ref_val + lr * gi @ gv
    np.testing.assert_allclose(s_self, ref_self, rtol=1e-10)
    np.testing.assert_allclose(s_val, ref_val, rtol=1e-9, atol=1e-14)


def test_loss_and_margin_scores(problem):
    p = problem
    z = p["x1"] @ p["theta"]
    with jax.enable_x64(True):
        out = inf.Outputs(p["x"], z)
        loss = inf.score_examples("loss", out, p["y"], batch_size=11)
        margin = inf.score_examples("margin", out, p["y"], batch_size=11)
    np.testing.assert_allclose(loss, _ce(p["x1"], p["y"], p["theta"]), rtol=1e-12)
    others = z.copy()
    others[np.arange(N), p["y"]] = -np.inf
    np.testing.assert_allclose(margin, others.max(1) - z[np.arange(N), p["y"]], rtol=1e-12)


@pytest.mark.parametrize("scorer,hessian", [
    ("influence", "exact"), ("influence", "kfac"), ("self_influence", "exact"),
    ("val_influence", "exact"), ("val_influence", "kfac"), ("tracin", "exact"),
    ("loss", "exact"), ("margin", "exact")])
def test_batched_equals_unbatched(problem, scorer, hessian):
    p = problem
    with jax.enable_x64(True):
        out = _outputs(p["x"], p["x1"], p["theta"])
        val = _outputs(p["xv"], p["xv1"], p["theta"])
        kw = dict(val=val, val_labels=p["yv"], damping=LAM, hessian=hessian)
        a = inf.score_examples(scorer, out, p["y"], batch_size=7, **kw)
        b = inf.score_examples(scorer, out, p["y"], batch_size=N, **kw)
        c = inf.score_examples(scorer, out, p["y"], batch_size=1000, **kw)
    assert a.shape == (N,)
    np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(a, c, rtol=1e-10, atol=1e-14)


def test_float32_ranking_agrees_with_float64(problem):
    p = problem
    out = inf.Outputs(p["x"].astype(np.float32), (p["x1"] @ p["theta"]).astype(np.float32))
    s32 = inf.score_examples("influence", out, p["y"], damping=LAM, batch_size=16)
    with jax.enable_x64(True):
        s64 = inf.score_examples("influence", _outputs(p["x"], p["x1"], p["theta"]), p["y"],
                                 damping=LAM, batch_size=16)
    assert s32.dtype == np.float32
    assert _spearman(s32, s64) > 0.999


def test_select_subset():
    rng = np.random.default_rng(2)
    s = rng.normal(size=101)
    assert inf.select_subset(s, 1.0).all() and not inf.select_subset(s, 0.0).any()
    m = inf.select_subset(s, 0.3)
    assert m.sum() == 30
    assert s[m].min() > s[~m].max()
    # ties are broken towards the lower index, deterministically
    np.testing.assert_array_equal(inf.select_subset(np.zeros(5), 0.4),
                                  [True, True, False, False, False])
    for bad in (-0.1, 1.1):
        with pytest.raises(ValueError, match="fraction"):
            inf.select_subset(s, bad)
    with pytest.raises(ValueError, match="NaN"):
        inf.select_subset(np.array([0.0, np.nan]), 0.5)


def test_input_validation(problem):
    p = problem
    out = _outputs(p["x"], p["x1"], p["theta"])
    with pytest.raises(ValueError, match="scorer"):
        inf.score_examples("shapley", out, p["y"])
    with pytest.raises(ValueError, match="labels"):
        inf.score_examples("loss", out, np.full(N, C, np.int32))
    with pytest.raises(ValueError, match="val"):
        inf.score_examples("val_influence", out, p["y"])
    with pytest.raises(ValueError, match="max_exact_dim"):
        inf.influence_scores(out, p["y"], max_exact_dim=5)
    with pytest.raises(ValueError, match="hessian"):
        inf.influence_scores(out, p["y"], hessian="lissa")

