"""The sign of the signed validation-influence DS scorer against leave-some-out retraining
(issue 20), on a convex case: multinomial logistic regression on sklearn's digits pixels.

'val_influence' is s_i = g_val^T H^-1 g_i (kdjax/methods/lrds/influence.py). Removing a set S
from the fitted objective (1/N) sum_j CE_j + damping/2 ||theta||^2 moves theta by
~ H^-1 sum_{i in S} g_i / N, so the validation loss changes by ~ sum_{i in S} s_i / N: a high
score = removing the example RAISES the validation loss (a helpful example, kept in D^t), a low
(negative) score = removing it LOWERS it. Here that prediction is checked against the actual
retrained change for random subsets and for DS's own D^s (the lowest-scored 20%).
"""
import jax
import numpy as np
import pytest
import scipy.linalg
import scipy.special
import scipy.stats
import threadpoolctl

from kdjax.methods.lrds import influence as inf

LAM = 1e-2      # L2 weight of the fit = the scorer's damping (H includes it exactly)
N_TRAIN, N_VAL = 500, 300


def _objective(theta_flat, x1, y, weights, lam, n):
    """(1/n) sum_i w_i CE_i + lam/2 ||theta||^2 and its gradient (float64). n stays the full
    training size when examples are removed (w_i = 0), as the influence function linearises."""
    theta = theta_flat.reshape(x1.shape[1], -1)
    z = x1 @ theta
    logp = z - scipy.special.logsumexp(z, axis=1, keepdims=True)
    ce = -logp[np.arange(len(y)), y]
    r = np.exp(logp)
    r[np.arange(len(y)), y] -= 1.0
    val = np.sum(weights * ce) / n + 0.5 * lam * np.sum(theta**2)
    return val, (x1.T @ (weights[:, None] * r) / n + lam * theta).reshape(-1)


def _hessian(theta_flat, x1, weights, lam, n):
    """Hessian of `_objective`, flattened row-major (feature, class) like the scorer's."""
    f = x1.shape[1]
    p = scipy.special.softmax(x1 @ theta_flat.reshape(f, -1), axis=1)
    c = p.shape[1]
    xw = x1 * weights[:, None]
    h = np.zeros((f, c, f, c))
    for k in range(c):   # the diag(p) part, class by class: sum_n w_n p_nk x_n x_n^T
        h[:, k, :, k] = (xw * p[:, k:k + 1]).T @ x1
    h = h.reshape(f * c, f * c)
    j = (x1[:, :, None] * p[:, None, :]).reshape(len(x1), f * c)
    return (h - (j * weights[:, None]).T @ j) / n + lam * np.eye(f * c)


def fit(x1, y, weights, theta0, factor=None):
    """Minimise `_objective` to |grad| < 1e-12 (it is strongly convex): Newton's method with
    backtracking, or, given `factor` (the Cholesky factor of a fixed Hessian near the optimum,
    as for a refit from the full fit), the cheaper fixed-Hessian Newton iteration."""
    theta, n = np.array(theta0, np.float64), len(y)
    val, grad = _objective(theta, x1, y, weights, LAM, n)
    for _ in range(50 if factor is None else 1000):
        if np.abs(grad).max() < 1e-12:
            return theta
        if factor is not None:
            theta = theta - scipy.linalg.cho_solve(factor, grad)
            val, grad = _objective(theta, x1, y, weights, LAM, n)
            continue
        step = np.linalg.solve(_hessian(theta, x1, weights, LAM, n), grad)
        t = 1.0
        while True:
            new_val, new_grad = _objective(theta - t * step, x1, y, weights, LAM, n)
            if new_val <= val or t < 1e-8:
                break
            t *= 0.5
        theta, val, grad = theta - t * step, new_val, new_grad
    raise AssertionError(f"fit did not converge: |grad| = {np.abs(grad).max():.2e}")


def mean_ce(x1, y, theta_flat):
    z = x1 @ theta_flat.reshape(x1.shape[1], -1)
    return float(np.mean(scipy.special.logsumexp(z, axis=1) - z[np.arange(len(y)), y]))


def digits_problem(seed: int = 0) -> dict:
    """Train / validation / test rows of sklearn's digits (pixels / 16, plus a bias column),
    the fitted theta, and the val_influence scores at it."""
    from sklearn.datasets import load_digits
    d = load_digits()
    order = np.random.default_rng(seed).permutation(len(d.target))
    x, y = d.data[order] / 16.0, d.target[order].astype(np.int32)
    x1 = np.concatenate([x, np.ones((len(x), 1))], axis=1)
    tr, va, te = (slice(0, N_TRAIN), slice(N_TRAIN, N_TRAIN + N_VAL),
                  slice(N_TRAIN + N_VAL, None))
    with threadpoolctl.threadpool_limits(1):   # small matrices: threads only contend
        theta = fit(x1[tr], y[tr], np.ones(N_TRAIN), np.zeros(x1.shape[1] * 10))
        factor = scipy.linalg.cho_factor(_hessian(theta, x1[tr], np.ones(N_TRAIN), LAM,
                                                  N_TRAIN))
    with jax.enable_x64(True):
        z = x1 @ theta.reshape(x1.shape[1], -1)
        scores = inf.score_examples(
            "val_influence", inf.Outputs(x[tr], z[tr]), y[tr], val=inf.Outputs(x[va], z[va]),
            val_labels=y[va], damping=LAM, hessian="exact", batch_size=128)
    return dict(x1=x1, y=y, tr=tr, va=va, te=te, theta=theta, factor=factor,
                scores=np.asarray(scores))


def removal(p: dict, removed: np.ndarray) -> dict:
    """Retrain without `removed` (bool over train rows): predicted and actual change of the
    mean validation CE, and the actual change of the mean test CE."""
    x1, y, tr, va, te = p["x1"], p["y"], p["tr"], p["va"], p["te"]
    with threadpoolctl.threadpool_limits(1):
        theta = fit(x1[tr], y[tr], (~removed).astype(np.float64), p["theta"], p["factor"])
    return {"predicted": float(p["scores"][removed].sum() / N_TRAIN),
            "val": mean_ce(x1[va], y[va], theta) - mean_ce(x1[va], y[va], p["theta"]),
            "test": mean_ce(x1[te], y[te], theta) - mean_ce(x1[te], y[te], p["theta"])}


@pytest.fixture(scope="module")
def problem():
    return digits_problem()


def test_val_influence_predicts_the_retrained_validation_change(problem):
    """Random 5% subsets: predicted sum s_i / N against the retrained change."""
    p = problem
    rng = np.random.default_rng(1)
    pred, actual = [], []
    for _ in range(12):
        removed = np.zeros(N_TRAIN, bool)
        removed[rng.choice(N_TRAIN, 25, replace=False)] = True
        r = removal(p, removed)
        pred.append(r["predicted"])
        actual.append(r["val"])
    pred, actual = np.array(pred), np.array(actual)
    assert scipy.stats.pearsonr(pred, actual).statistic > 0.9
    assert np.mean(np.sign(pred) == np.sign(actual)) >= 0.9


def test_sign_of_harmful_and_helpful_sets(problem):
    """The rows with s_i < 0 (predicted harmful) lower the validation loss when removed, the top
    20% raise it: the sign is right. DS's D^s (the lowest 20%) holds more rows than have
    s_i < 0, so removing it still raises the validation loss, but by less than a random 20%."""
    p = problem
    s = p["scores"]
    harmful = removal(p, s < 0)
    assert 0 < (s < 0).mean() < 0.2
    assert harmful["predicted"] < 0 and harmful["val"] < 0
    top = removal(p, inf.select_subset(s, 0.2))
    assert top["predicted"] > 0 and top["val"] > 0
    lowest = removal(p, ~inf.select_subset(s, 0.8))
    rng = np.random.default_rng(2)
    random = []
    for _ in range(2):
        removed = np.zeros(N_TRAIN, bool)
        removed[rng.choice(N_TRAIN, 100, replace=False)] = True
        random.append(removal(p, removed)["val"])
    assert lowest["val"] < min(random) < max(random) < top["val"]
