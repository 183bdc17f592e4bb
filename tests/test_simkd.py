"""SimKD (kdjax.methods.simkd) and DiSK inside SimKD (A.7 Eq. 9), against independent
references: numpy losses by hand, closed-form gradients checked by central finite differences,
the teacher's own forward pass for the reused head, and tiny end-to-end runs (SimKD on its own,
and as DiSK's 'simkd' / 'simkd_disk' variants)."""
import copy

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from kdjax import config as config_lib
from kdjax import run as run_lib
from kdjax.methods.disk.guide import GuideTrainer
from kdjax.methods.simkd import loss as simkd
from kdjax.methods.simkd import model as simkd_model
from kdjax.models import get_model
from kdjax.train import checkpoint as ckpt_lib


def _np_ce(logits, labels):
    z = logits - logits.max(-1, keepdims=True)
    return -(z[np.arange(len(labels)), labels] - np.log(np.exp(z).sum(-1)))


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    b, f, c = 6, 5, 4
    return dict(p=rng.normal(size=(b, f)).astype(np.float32),
                t=np.abs(rng.normal(size=(b, f))).astype(np.float32),
                logits=rng.normal(size=(b, c)).astype(np.float32),
                labels=rng.integers(0, c, size=b).astype(np.int32),
                g=rng.uniform(size=b).astype(np.float32))


def test_feature_distance_and_student_loss_by_hand(data):
    p, t, g, alpha = data["p"], data["t"], data["g"], 0.3
    d_ref = ((p - t) ** 2).sum(-1) / p.shape[1]
    np.testing.assert_allclose(simkd.feature_distance(p, t), d_ref, rtol=1e-6)
    ce = _np_ce(data["logits"].astype(np.float64), data["labels"])
    want = alpha * ce + (1 - alpha) * (1 - g) * d_ref
    got = simkd.student_loss(data["logits"], p, t, data["labels"], g, alpha=alpha)
    np.testing.assert_allclose(got, want, rtol=1e-5)
    # g ≡ 0 is plain SimKD; g = 1 censors the feature term entirely (only α·CE is left)
    plain = simkd.student_loss(data["logits"], p, t, data["labels"], alpha=alpha)
    zero = simkd.student_loss(data["logits"], p, t, data["labels"], np.zeros(6, np.float32),
                              alpha=alpha)
    np.testing.assert_allclose(plain, zero, rtol=1e-6)
    one = simkd.student_loss(data["logits"], p, t, data["labels"], np.ones(6, np.float32),
                             alpha=alpha)
    np.testing.assert_allclose(one, alpha * ce, rtol=1e-5)
    # SimKD's own loss (α = 0) is the feature MSE alone
    np.testing.assert_allclose(simkd.student_loss(data["logits"], p, t, data["labels"]), d_ref,
                               rtol=1e-6)


def test_student_loss_gradient_finite_differences(data):
    p, t, g, alpha = data["p"], data["t"], data["g"], 0.3
    f = lambda x: jnp.sum(simkd.student_loss(data["logits"], x, t, data["labels"], g,
                                             alpha=alpha))
    grad = np.asarray(jax.grad(f)(jnp.asarray(p)))
    closed = (1 - alpha) * (1 - g)[:, None] * 2 * (p - t) / p.shape[1]
    np.testing.assert_allclose(grad, closed, rtol=1e-5, atol=1e-7)
    eps, fd = 1e-2, np.zeros_like(p)          # the loss is quadratic in p: central FD exact
    for i in range(p.shape[0]):
        for j in range(p.shape[1]):
            e = np.zeros_like(p)
            e[i, j] = eps
            fd[i, j] = (float(f(p + e)) - float(f(p - e))) / (2 * eps)
    np.testing.assert_allclose(grad, fd, rtol=2e-3, atol=2e-4)
    # no gradient flows into the teacher's features or the frozen guide
    gt = jax.grad(lambda tt: jnp.sum(simkd.student_loss(data["logits"], p, tt, data["labels"],
                                                        g)))(jnp.asarray(t))
    assert np.all(np.asarray(gt) == 0.0)


def test_guide_loss_gradient_in_g(data):
    """Eq. 9 as L_dist: ∂/∂g_i = −(1 − α)·d_i/N + λ·CE_i/N (budget active, normalize='mean')."""
    p, t, g, alpha, lam = data["p"], data["t"], data["g"], 0.1, 2.0
    d = ((p - t) ** 2).mean(-1)
    kw = dict(lam=lam, alpha=alpha, top_k=2, normalize="mean", ce_target="label")
    obj = lambda gg, delta: simkd.guide_loss(data["logits"], data["logits"], data["labels"], gg,
                                             d, delta=delta, **kw)
    ce = _np_ce(data["logits"].astype(np.float64), data["labels"])
    n = len(g)
    np.testing.assert_allclose(obj(g, 0.0), (1 - alpha) * np.mean((1 - g) * d)
                               + lam * max(np.sum(g * ce) / n, 0.0), rtol=1e-5)
    active = np.asarray(jax.grad(obj)(jnp.asarray(g), 0.0))     # budget above δ = 0
    np.testing.assert_allclose(active, -(1 - alpha) * d / n + lam * ce / n, rtol=1e-4)
    inactive = np.asarray(jax.grad(obj)(jnp.asarray(g), 1e6))   # hinge off
    np.testing.assert_allclose(inactive, -(1 - alpha) * d / n, rtol=1e-4)
    eps = 1e-3
    fd = [(float(obj(g + eps * np.eye(n)[i], 0.0)) - float(obj(g - eps * np.eye(n)[i], 0.0)))
          / (2 * eps) for i in range(n)]
    np.testing.assert_allclose(active, fd, rtol=1e-2, atol=1e-4)


def test_reused_head_gives_teacher_logits_and_backbone_warm_start():
    x = jax.random.normal(jax.random.PRNGKey(0), (4, 12))
    teacher = get_model("mlp", 10, hidden=(16,))
    tv = teacher.init(jax.random.PRNGKey(1), x)
    t_logits, t_feats = teacher.apply(tv, x)
    kernel, bias = simkd_model.teacher_head(tv)
    # projected features equal to the teacher's -> the teacher's own logits
    np.testing.assert_allclose(simkd_model.reuse_teacher_head(t_feats, kernel, bias), t_logits,
                               rtol=1e-5, atol=1e-5)
    backbone = get_model("mlp", 10, hidden=(6,))
    bv = backbone.init(jax.random.PRNGKey(2), x)
    student = simkd_model.wrap_student(backbone, tv)
    sv = simkd_model.init_from_backbone(student.init(jax.random.PRNGKey(3), x), bv)
    logits, proj = student.apply(sv, x)
    assert proj.shape == t_feats.shape and np.all(np.asarray(proj) >= 0.0)
    # the wrapper = teacher head ∘ projector ∘ (the warm-start backbone), composed by hand
    _, f_s = backbone.apply(bv, x)
    proj_ref = simkd_model.Projector(t_feats.shape[1]).apply(
        {"params": sv["params"]["projector"], "batch_stats": sv["batch_stats"]["projector"]},
        f_s)
    np.testing.assert_allclose(proj, proj_ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(logits, np.asarray(proj_ref) @ kernel + bias, rtol=1e-5,
                               atol=1e-5)
    # the teacher head is a constant, not a trainable parameter
    assert set(sv["params"]) == {"backbone", "projector"}


def test_bad_input_raises(data):
    with pytest.raises(ValueError, match="shape"):
        simkd.feature_distance(data["p"], data["t"][:, :3])
    with pytest.raises(ValueError, match="alpha"):
        simkd.student_loss(data["logits"], data["p"], data["t"], data["labels"], alpha=1.5)
    with pytest.raises(ValueError, match="head"):
        simkd_model.teacher_head({"params": {"dense": {}}})
    with pytest.raises(ValueError, match="expects"):
        simkd_model.reuse_teacher_head(data["p"], np.zeros((3, 4), np.float32), np.zeros(4))
    with pytest.raises(ValueError, match="guide objective"):
        GuideTrainer(config_lib.base_config("disk"), 8, "fitnet")


def _params(workdir):
    return jax.tree.leaves(ckpt_lib.load_variables(workdir)["params"])


@pytest.mark.slow
def test_simkd_runs(tmp_path):
    """SimKD through kdjax.run.run (digits, MLPs, 2 epochs): on its own (`config.method =
    'simkd'`) it equals DiSK's 'simkd' variant without a warm start; SimKD + DiSK with g ≡ 0 is
    SimKD exactly, and with the guide it logs its rounds."""
    from tests.test_disk_method import make_config   # the DiSK method's test config
    c = make_config(variant="simkd")
    c.disk.warm_start_epochs = 0
    base = run_lib.run(c, str(tmp_path / "simkd"))
    assert 0.3 < base["test_accuracy"] <= 1.0                  # digits: chance 10%
    runs = {}
    for name, change in (("alone", {"method": "simkd"}),
                         ("zero", {"disk.variant": "simkd_disk", "disk.guide_zero": True}),
                         ("guided", {"disk.variant": "simkd_disk"})):
        cc = copy.deepcopy(c)
        cc.teacher.checkpoint = str(tmp_path / "simkd" / "teacher")
        for field, value in change.items():
            node, _, leaf = field.rpartition(".")
            (cc[node] if node else cc)[leaf] = value
        config_lib.validate(cc)
        runs[name] = run_lib.run(cc, str(tmp_path / name))
    for name in ("alone", "zero"):
        assert runs[name]["test_accuracy"] == pytest.approx(base["test_accuracy"], abs=1e-9)
        for a, b in zip(_params(str(tmp_path / name)), _params(str(tmp_path / "simkd"))):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    rounds = [h for h in runs["guided"]["history"] if "disk/round" in h]
    assert len(rounds) == 2 and all(0.0 <= r["disk/guide_on_misclassified"] <= 1.0
                                    for r in rounds)
    assert 0.3 < runs["guided"]["test_accuracy"] <= 1.0
