"""DiSK guide / budget diagnosis (Eq. 3-5, Alg. 1 line 6): signs, the Lagrangian optimum, and
the guide's sigmoid saturation.

* When the budget of Eq. 3 is violated and λ is large, the guide objective's gradient pushes g
  DOWN on misclassified (high-CE) points; when it is satisfied the hinge is off and Eq. 4 alone
  pushes g up on every point (∂/∂g of −log(s + g) < 0).
* The minimiser over a free per-point g of (1 − α)·L_dist + λ·(usage − δ)_+ (convex when the
  official log(1 + K·g) penalty is off) is found independently by dual bisection: per point a
  1-D bisection on the derivative, then a bisection on the multiplier μ so that usage = δ. Once
  λ > μ*, the code's objective is minimised at usage = δ (exact penalty); for λ < μ* the budget
  cannot bind (usage > δ at the optimum) — the cpu configs' old λ ∈ [1, 5] at μ* ≈ 8.
* GuideTrainer (kdjax.methods.disk.guide): at the old default guide lr (0.01) a phase at
  λ_min drives the sigmoid into its flat tail (σ = 1.0 exactly in float32 on some points), so
  its gradient vanishes and a larger λ no longer brings g back; at the default lr (1e-3) the
  guide stays responsive and meets the budget once λ > μ*.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from kdjax import config as config_lib
from kdjax.methods.disk import loss as disk
from kdjax.methods.disk.guide import GuideTrainer

ALPHA, TAU_T, TAU_S, TOP_K = 0.1, 4.0, 4.0, 2
KW = dict(alpha=ALPHA, tau_t=TAU_T, tau_s=TAU_S, top_k=TOP_K, include_label=False, target="full",
          penalty=0.0, ce_target="label", max_ce=None, normalize="mean")


def _batch(seed=0, n=24, c=5):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, c, n).astype(np.int32)
    t = rng.normal(size=(n, c)) * 2.0
    t[np.arange(n), labels] += 4.0                       # teacher right on every point
    s = rng.normal(size=(n, c))
    s[np.arange(n), labels] += np.where(np.arange(n) < n // 3, -3.0, 3.0)   # first third wrong
    return (jnp.asarray(s, jnp.float32), jnp.asarray(t, jnp.float32), jnp.asarray(labels))


def _guide_loss(s, t, y, g, lam, delta):
    return disk.guide_loss(s, t, y, g, lam=lam, delta=delta, **KW)


def _usage(s, y, g):
    return float(disk.budget_usage(s, g, y, normalize="mean", ce_target="label"))


def test_gradient_signs_follow_the_budget():
    s, t, y = _batch()
    wrong = np.asarray(jnp.argmax(s, -1) != y)
    assert wrong.sum() >= 4 and (~wrong).sum() >= 4
    g1 = jnp.full(y.shape, 0.999)
    assert _usage(s, y, g1) > 0.5                    # g ≡ 1 violates δ = 0.05
    grad = np.asarray(jax.grad(lambda g: _guide_loss(s, t, y, g, 200.0, 0.05))(g1))
    assert np.all(grad[wrong] > 0), grad[wrong]      # budget violated: g pushed down on wrong pts
    # hinge inactive (δ above the usage): only Eq. 4, which raises g everywhere
    grad = np.asarray(jax.grad(lambda g: _guide_loss(s, t, y, g, 200.0, 10.0))(g1))
    assert np.all(grad < 0)
    # finite differences of the code's objective agree with its gradient (budget active)
    g0 = jnp.full(y.shape, 0.6)
    grad = np.asarray(jax.grad(lambda g: _guide_loss(s, t, y, g, 3.0, 0.05))(g0))
    eps = 1e-3
    for i in (0, int(np.argmax(~wrong))):
        e = jnp.zeros(y.shape).at[i].set(eps)
        fd = (float(_guide_loss(s, t, y, g0 + e, 3.0, 0.05))
              - float(_guide_loss(s, t, y, g0 - e, 3.0, 0.05))) / (2 * eps)
        np.testing.assert_allclose(grad[i], fd, rtol=2e-2, atol=1e-4)


def _reference_optimum(s, t, y, delta):
    """Independent dual solution (numpy): per-point weights of Eq. 4 and of the budget, g_i(μ) by
    bisection on the per-point derivative, μ* by bisection on usage(μ) = δ."""
    s, t, y = (np.asarray(a, np.float64) for a in (s, t, y))
    n, c = s.shape
    pt = np.exp((t - t.max(1, keepdims=True)) / TAU_T)
    pt /= pt.sum(1, keepdims=True)
    ps = np.exp((s - s.max(1, keepdims=True)) / TAU_S)
    ps /= ps.sum(1, keepdims=True)
    mask = np.zeros_like(pt)
    mask[np.arange(n)[:, None], np.argsort(-t, 1)[:, :TOP_K]] = 1.0
    ls = s - s.max(1, keepdims=True)
    ce = -(ls[np.arange(n), y.astype(int)] - np.log(np.exp(ls).sum(1)))
    a = (1 - ALPHA) * TAU_T * TAU_S / n                  # weight of each point's −Σ t log(s + g)

    def g_of(mu):
        lo, hi = np.zeros(n), np.ones(n)
        for _ in range(60):                              # derivative is increasing in g (convex)
            mid = (lo + hi) / 2
            dd = -a * np.sum(mask * pt / (ps + mid[:, None]), 1) + mu * ce / n
            lo, hi = np.where(dd < 0, mid, lo), np.where(dd < 0, hi, mid)
        return (lo + hi) / 2

    usage = lambda mu: float(np.sum(g_of(mu) * ce) / n)
    lo, hi = 0.0, 1.0
    while usage(hi) > delta:
        hi *= 2
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if usage(mid) > delta else (lo, mid)
    return hi, g_of(hi), usage


def _minimise(s, t, y, lam, delta, steps=4000):
    """Projected (sub)gradient descent on the code's guide objective from g ≡ 1 (the saturated
    start), iterate averaged over the second half."""
    f = jax.grad(lambda g: _guide_loss(s, t, y, g, lam, delta))

    def body(i, carry):
        g, avg = carry
        g = jnp.clip(g - 0.5 / jnp.sqrt(1.0 + i) * f(g), 0.0, 1.0)
        return g, avg + jnp.where(i >= steps // 2, g, 0.0)

    g, avg = jax.lax.fori_loop(0, steps, body, (jnp.ones(y.shape), jnp.zeros(y.shape)))
    return avg / (steps - steps // 2)


@pytest.mark.parametrize("delta", [0.15, 0.3])
def test_lagrangian_optimum_sits_on_the_budget(delta):
    s, t, y = _batch(1)
    mu_star, g_ref, usage = _reference_optimum(s, t, y, delta)
    assert usage(0.0) > delta + 0.1                      # unconstrained optimum violates δ
    # λ above μ*: the code's objective is minimised on the budget, at the reference point
    g = _minimise(s, t, y, 3.0 * mu_star, delta)
    assert abs(_usage(s, y, g) - delta) < 0.02, (_usage(s, y, g), delta, mu_star)
    # the reference point (on the budget by construction) is the code objective's minimum
    f_ref = float(_guide_loss(s, t, y, jnp.asarray(g_ref, jnp.float32), 3 * mu_star, delta))
    f_pgd = float(_guide_loss(s, t, y, g, 3 * mu_star, delta))
    assert f_ref <= f_pgd + 1e-4, (f_ref, f_pgd)
    rng = np.random.default_rng(0)                       # convex: local minimum = global
    for _ in range(100):
        gp = np.clip(g_ref + 0.02 * rng.normal(size=g_ref.shape), 0.0, 1.0)
        assert float(_guide_loss(s, t, y, jnp.asarray(gp, jnp.float32), 3 * mu_star,
                                 delta)) >= f_ref - 1e-5
    assert abs(_usage(s, y, jnp.asarray(g_ref, jnp.float32)) - delta) < 1e-3
    # λ below μ*: the budget cannot bind, the optimum overspends it (as λ ∈ [1, 5] at μ* ≈ 8)
    g = _minimise(s, t, y, 0.3 * mu_star, delta)
    assert _usage(s, y, g) > delta + 0.05
    assert _usage(s, y, g) == pytest.approx(usage(0.3 * mu_star), abs=0.03)


def _guide_data(n=512, c=5, seed=0):
    """Teacher features/logits with a clean feature that marks the points the fixed student
    gets wrong (a quarter of them), so a small guide can find them."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, c, n).astype(np.int32)
    hard = rng.random(n) < 0.25
    t = rng.normal(size=(n, c)) + 4.0 * np.eye(c)[labels]
    s = rng.normal(size=(n, c)) + np.where(hard, -2.0, 3.0)[:, None] * np.eye(c)[labels]
    feats = np.concatenate([rng.normal(size=(n, 6)), 3.0 * hard[:, None] - 1.5], 1)
    return {"features": feats.astype(np.float32), "teacher_logits": t.astype(np.float32),
            "student_logits": s.astype(np.float32), "label": labels}


def _trainer(lr):
    c = config_lib.base_config("disk")
    c.disk.top_k = 2
    c.disk.guide_learning_rate = lr
    return GuideTrainer(c, batch_size=64), c.disk


def _run_guide(lr, data, lam_min, lam_max, delta):
    trainer, d = _trainer(lr)
    gv, go = trainer.init(jax.random.PRNGKey(0), data["features"], data["teacher_logits"])
    rows = []
    for r, lam in enumerate([lam_min, lam_max, lam_max]):   # 3 guide epochs per phase
        gv, go = trainer.train(gv, go, data, epochs=3, seed=0, salt=r, lam=lam, delta=delta,
                               tau_s=4.0)
        g = trainer.values(gv, data["features"], data["teacher_logits"])
        usage = float(disk.budget_usage(
            jnp.asarray(data["student_logits"]), jnp.asarray(g), jnp.asarray(data["label"]),
            teacher_logits=jnp.asarray(data["teacher_logits"]), ce_target=d.ce_target,
            max_ce=d.max_ce, normalize=d.normalize))
        rows.append((g, usage))
    return rows


def test_guide_saturates_at_old_lr_and_follows_lambda_at_default():
    data = _guide_data()
    wrong = data["student_logits"].argmax(-1) != data["label"]
    delta, lam_min, lam_max = 0.5, 0.1, 10.0
    # old default lr 0.01: one λ_min phase drives the sigmoid to g > 0.9994 on every point
    # (σ = 1.0 exactly in float32 on some), its slope vanishes, and two phases at λ = 10 leave
    # the budget usage where it was, 8x over δ
    old = _run_guide(0.01, data, lam_min, lam_max, delta)
    assert old[0][0].min() > 0.999 and np.any(old[0][0] == 1.0)
    assert old[-1][1] > 3 * delta and abs(old[-1][1] - old[0][1]) < 1e-3
    assert old[-1][0][wrong].mean() > 0.999
    # default lr (1e-3): the λ_min phase also raises g (its argmin is g ≈ 1: the budget does not
    # bind at λ_min), but at λ = 10 > μ* the guide spends within the budget and censors the
    # points the student gets right more than those it gets wrong
    new = _run_guide(config_lib.base_config("disk").disk.guide_learning_rate, data, lam_min,
                     lam_max, delta)
    assert new[0][1] > 3 * delta
    g, usage = new[-1]
    assert usage <= delta + 0.05, usage
    assert g[wrong].mean() < 0.2 < g[~wrong].mean()
