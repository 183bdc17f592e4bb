"""DiSK pieces against hand computation, finite differences and scipy (issue 9 "Done means")."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import optimize

from kdjax import config as config_lib
from kdjax import losses
from kdjax.methods.disk import loss as disk
from kdjax.methods.disk import method as disk_method
from kdjax.methods.disk.guide import GuideMLP

jax.config.update("jax_enable_x64", False)


def _logits(seed, b=6, c=5, scale=2.0):
    rng = np.random.default_rng(seed)
    return jnp.asarray(rng.normal(size=(b, c)) * scale, jnp.float32)


def _softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


# ----------------------------------------------------------------------------- Eq. 4
@pytest.mark.parametrize("tau", [1.0, 4.0])
def test_guided_loss_is_kd_when_guide_zero(tau):
    s, t = _logits(0), _logits(1)
    labels = jnp.array([0, 1, 2, 3, 4, 0])
    g = jnp.zeros(6)
    got = disk.guided_distillation_loss(s, t, g, tau_t=tau, tau_s=tau, top_k=2)
    want = losses.kd_loss(s, labels, t, temperature=tau, alpha=1.0)   # τ²·KL
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    # the whole student objective is KD with the same CE weight
    got = disk.student_loss(s, t, labels, g, alpha=0.1, tau_t=tau, tau_s=tau, top_k=3)
    want = losses.kd_loss(s, labels, t, temperature=tau, alpha=0.9)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_guided_loss_hand_computed():
    s = np.array([[2.0, 0.0, -1.0]], np.float32)
    t = np.array([[0.0, 3.0, 1.0]], np.float32)
    g, tau_t, tau_s = 0.3, 2.0, 1.5
    pt = _softmax(t / tau_t)[0]
    ps = _softmax(s / tau_s)[0]
    # top-2 teacher classes are 1 and 2; class 0 gets no help
    q = ps + np.array([0.0, g, g])
    want = tau_t * tau_s * np.sum(pt * (np.log(pt) - np.log(q)))
    got = disk.guided_distillation_loss(jnp.asarray(s), jnp.asarray(t), jnp.array([g]),
                                        tau_t=tau_t, tau_s=tau_s, top_k=2)
    np.testing.assert_allclose(got[0], want, rtol=1e-5)
    # official top-K target: logits outside the mask -> raw min logit, target masked
    m = np.array([0.0, 1.0, 1.0])
    tt = _softmax(m * t[0] / tau_t + (1 - m) * t[0].min()) * m
    want = tau_t * tau_s * np.sum(np.where(tt > 0, tt * (np.log(np.where(tt > 0, tt, 1)) - np.log(q)), 0))
    got = disk.guided_distillation_loss(jnp.asarray(s), jnp.asarray(t), jnp.array([g]),
                                        tau_t=tau_t, tau_s=tau_s, top_k=2, target="topk")
    np.testing.assert_allclose(got[0], want, rtol=1e-5)


def test_guide_lowers_distillation_loss_and_label_mask():
    s, t = _logits(2), _logits(3)
    lo = disk.guided_distillation_loss(s, t, jnp.full(6, 0.5), tau_t=4.0, tau_s=4.0, top_k=2)
    hi = disk.guided_distillation_loss(s, t, jnp.zeros(6), tau_t=4.0, tau_s=4.0, top_k=2)
    assert np.all(np.asarray(lo) < np.asarray(hi))
    labels = jnp.array([0, 1, 2, 3, 4, 0])
    m = disk.topk_mask(t, 2, labels)
    assert np.all(np.asarray(m.sum(-1)) >= 2) and np.all(np.asarray(m.sum(-1)) <= 3)
    assert np.all(np.asarray(m)[np.arange(6), np.asarray(labels)] == 1)


# ----------------------------------------------------------------------------- Eq. 3
def test_budget_value_and_gradient_hand_computed():
    s = np.array([[2.0, 0.0], [0.0, 1.0], [3.0, -3.0], [0.5, 0.0]], np.float32)
    y = np.array([0, 0, 1, 1])
    g = np.array([0.1, 0.8, 0.9, 0.2], np.float32)
    p = _softmax(s)
    ce = -np.log(p[np.arange(4), y])
    usage = np.sum(g * ce) / 4
    delta = 0.2
    got = disk.budget_loss(jnp.asarray(s), jnp.asarray(g), jnp.asarray(y), delta=delta)
    np.testing.assert_allclose(got, max(usage - delta, 0.0), rtol=1e-5)
    # gradient w.r.t. g: ce_i / N when the hinge is active
    dg = jax.grad(lambda gg: disk.budget_loss(jnp.asarray(s), gg, jnp.asarray(y), delta=delta))(
        jnp.asarray(g))
    np.testing.assert_allclose(dg, ce / 4, rtol=1e-5)
    # gradient w.r.t. student logits: g_i (softmax − onehot) / N
    ds = jax.grad(lambda ss: disk.budget_loss(ss, jnp.asarray(g), jnp.asarray(y), delta=delta))(
        jnp.asarray(s))
    np.testing.assert_allclose(ds, g[:, None] * (p - np.eye(2)[y]) / 4, rtol=1e-5, atol=1e-7)
    # inactive hinge: zero value and gradient
    dg0 = jax.grad(lambda gg: disk.budget_loss(jnp.asarray(s), gg, jnp.asarray(y), delta=10.0))(
        jnp.asarray(g))
    np.testing.assert_allclose(dg0, 0.0)


def test_budget_official_variant_hand_computed():
    s = np.array([[2.0, 0.0], [0.0, 1.0], [3.0, -3.0], [0.5, 0.0]], np.float32)
    t = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0], [2.0, 0.0]], np.float32)
    y = np.array([0, 0, 1, 1])
    g = np.array([0.1, 0.8, 0.9, 0.2], np.float32)
    ty = t.argmax(-1)
    ce = np.minimum(-np.log(_softmax(s)[np.arange(4), ty]), 5.0)     # point 2: CE 6.0 -> 5
    n_wrong = np.sum(s.argmax(-1) != y)                                # points 1, 2, 3 -> 3
    want = np.sum(g * ce) / n_wrong
    kw = dict(teacher_logits=jnp.asarray(t), ce_target="teacher", max_ce=5.0,
              normalize="misclassified")
    got = disk.budget_usage(jnp.asarray(s), jnp.asarray(g), jnp.asarray(y), **kw)
    np.testing.assert_allclose(got, want, rtol=1e-5)
    dg = jax.grad(lambda gg: disk.budget_loss(jnp.asarray(s), gg, jnp.asarray(y), delta=0.1,
                                              **kw))(jnp.asarray(g))
    np.testing.assert_allclose(dg, ce / n_wrong, rtol=1e-5)
    # finite differences on the student logits (clamped point has zero gradient)
    f = lambda ss: disk.budget_loss(ss, jnp.asarray(g), jnp.asarray(y), delta=0.1, **kw)
    ds = np.asarray(jax.grad(f)(jnp.asarray(s)))
    eps = 1e-3
    for i in range(4):
        for j in range(2):
            e = np.zeros_like(s)
            e[i, j] = eps
            fd = (f(jnp.asarray(s + e)) - f(jnp.asarray(s - e))) / (2 * eps)
            np.testing.assert_allclose(ds[i, j], fd, atol=2e-3)
    assert np.allclose(ds[2], 0.0)


def test_guide_loss_gradient_matches_finite_differences():
    s, t = _logits(4, b=5, c=3), _logits(5, b=5, c=3)
    y = jnp.array([0, 1, 2, 0, 1])
    kw = dict(lam=3.0, delta=0.05, alpha=0.1, tau_t=2.0, tau_s=1.5, top_k=2, penalty=0.9)
    f = lambda gg: disk.guide_loss(s, t, y, gg, **kw)
    g = jnp.array([0.2, 0.4, 0.6, 0.1, 0.9])
    dg = np.asarray(jax.grad(f)(g))
    for i in range(5):
        e = np.zeros(5, np.float32)
        e[i] = 1e-3
        fd = (f(g + e) - f(g - e)) / 2e-3
        np.testing.assert_allclose(dg[i], fd, rtol=2e-2, atol=2e-3)
    # the student logits are held fixed in the guide step
    ds = jax.grad(lambda ss: disk.guide_loss(ss, t, y, g, **kw))(s)
    np.testing.assert_allclose(ds, 0.0)


# ----------------------------------------------------------------------------- τ_S fit
@pytest.mark.parametrize("scale,tau_t", [(2.5, 4.0), (0.5, 1.0), (1.0, 3.0)])
def test_fit_student_temperature_recovers_known_temperature(scale, tau_t):
    t = _logits(6, b=64, c=10)
    s = scale * t            # s^{scale·τ_T} == t^{τ_T} exactly
    got = disk.fit_student_temperature(s, t, tau_t)
    np.testing.assert_allclose(got, scale * tau_t, rtol=1e-3)


def test_fit_student_temperature_matches_scipy():
    t, s = _logits(7, b=64, c=10), _logits(8, b=64, c=10, scale=3.0)
    got = float(disk.fit_student_temperature(s, t, 2.0))
    f = lambda lt: float(disk.mean_kl_at_temperature(s, t, 2.0, np.exp(lt)))
    ref = optimize.minimize_scalar(f, bounds=(np.log(0.05), np.log(100.0)), method="bounded",
                                   options={"xatol": 1e-8})
    assert f(np.log(got)) <= ref.fun + 1e-6
    np.testing.assert_allclose(got, np.exp(ref.x), rtol=1e-2)


# ----------------------------------------------------------------------------- schedules
def test_lambda_schedule_matches_alg1_line8():
    lmin, lmax, T = 0.1, 50.0, 50
    r = np.arange(4 * T)
    lam = np.asarray(disk.lambda_schedule(r, lmin, lmax, T))
    want = lmin + (lmax - lmin) * (1 - np.cos(np.pi * (r % T) / T)) / 2
    np.testing.assert_allclose(lam, want, rtol=1e-5)
    assert lam.min() >= lmin - 1e-6 and lam.max() <= lmax + 1e-6
    np.testing.assert_allclose(lam[0], lmin)
    np.testing.assert_allclose(lam[T // 2], (lmin + lmax) / 2, rtol=1e-5)
    np.testing.assert_allclose(lam[:T], lam[T:2 * T])                  # period λ_T
    assert np.all(np.diff(lam[-T:]) > 0)                                # final period rises
    with pytest.raises(ValueError):
        disk.lambda_schedule(0, 1.0, 0.5, 10)


def test_budget_schedule_official_cosine():
    d = np.asarray(disk.budget_schedule(np.arange(40), 0.4, 0.6, 20, gamma=0.9))
    np.testing.assert_allclose(d[0], 0.6)
    np.testing.assert_allclose(d[10], 0.5, rtol=1e-5)
    np.testing.assert_allclose(d[20], 0.54, rtol=1e-5)
    assert np.all(np.diff(d[:20]) < 0)
    np.testing.assert_allclose(disk.budget_schedule(7, 0.1, 0.1, 20), 0.1)


# ----------------------------------------------------------------------------- guide net
def test_guide_mlp_shapes_and_range():
    model = GuideMLP()
    feats, logits = jnp.ones((8, 16)), _logits(9, b=8, c=10)
    variables = model.init(jax.random.PRNGKey(0), feats, logits, train=False)
    widths = [v["kernel"].shape for v in variables["params"].values() if "kernel" in v]
    assert widths == [(26, 64), (64, 128), (128, 1)]
    g, upd = model.apply(variables, feats * jnp.arange(8)[:, None], logits, train=True,
                         mutable=["batch_stats"])
    assert g.shape == (8,) and np.all((np.asarray(g) > 0) & (np.asarray(g) < 1))
    assert "batch_stats" in upd


def test_bad_inputs_raise():
    s = _logits(0)
    with pytest.raises(ValueError, match="top_k"):
        disk.guided_distillation_loss(s, s, jnp.zeros(6), tau_t=1.0, tau_s=1.0, top_k=9)
    with pytest.raises(ValueError, match="tau_t"):
        disk.guided_distillation_loss(s, s, jnp.zeros(6), tau_t=0.0, tau_s=1.0, top_k=2)
    with pytest.raises(ValueError, match="normalize"):
        disk.budget_usage(s, jnp.zeros(6), jnp.zeros(6, jnp.int32), normalize="x")
    with pytest.raises(ValueError, match="teacher_logits"):
        disk.budget_usage(s, jnp.zeros(6), jnp.zeros(6, jnp.int32), ce_target="teacher")
    with pytest.raises(ValueError, match="alpha"):
        disk.student_loss(s, s, jnp.zeros(6, jnp.int32), jnp.zeros(6), alpha=2.0, tau_t=1.0,
                          tau_s=1.0, top_k=2)


def test_lagrangian_and_the_methods_student_loss():
    s, t = _logits(10, b=4, c=3), _logits(11, b=4, c=3)
    y = jnp.array([0, 1, 2, 1])
    g = jnp.array([0.1, 0.5, 0.0, 0.9])
    kw = dict(alpha=0.3, tau_t=2.0, tau_s=1.5, top_k=2)
    lag = disk.lagrangian(s, t, y, g, lam=2.0, delta=0.01, **kw)
    want = (jnp.mean(disk.student_loss(s, t, y, g, **kw))
            + 2.0 * disk.budget_loss(s, g, y, delta=0.01))
    np.testing.assert_allclose(lag, want, rtol=1e-5)
    # the method's per-example loss reads g and τ_S (per example) from example_state and α,
    # τ_T from config.loss
    c = config_lib.base_config("disk")
    c.loss.ce_weight, c.loss.temperature, c.disk.top_k = 0.3, 2.0, 2
    c.disk.include_label, c.disk.target = False, "full"
    fn = disk_method.make_disk_loss(c)
    got = fn(s, None, {"label": y, "teacher_logits": t,
                       "example_state": {"guide": g, "tau_s": jnp.full(4, 1.5)}})
    np.testing.assert_allclose(got, disk.student_loss(s, t, y, g, **kw), rtol=1e-6)
