"""LR+DS: label revision properties, DS mask plumbing and equality with plain KD."""
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from kdjax import losses
from kdjax.methods import lrds
from kdjax.methods.influence import select_subset


def _random_teachers(rng, n, c):
    """Teacher distributions from every regime: confident, flat, near-ties, exact ties."""
    scale = rng.choice([0.01, 0.3, 1.0, 5.0, 30.0], size=(n, 1))
    logits = rng.normal(size=(n, c)) * scale
    labels = rng.integers(0, c, size=n)
    rows = np.arange(n)
    best_other = np.where(np.eye(c, dtype=bool)[labels], -np.inf, logits).max(1)
    k = n // 4
    logits[rows[:k], labels[:k]] = best_other[:k] - 1e-5        # teacher wrong by a hair
    logits[rows[k:2 * k], labels[k:2 * k]] = best_other[k:2 * k]  # exact tie with another class
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    return probs.astype(np.float32), labels.astype(np.int32)


@pytest.mark.parametrize("c", [2, 3, 10, 100])
@pytest.mark.parametrize("eta", [0.01, 0.5, 0.8, 0.99, 0.999])
def test_revised_argmax_is_label(c, eta):
    rng = np.random.default_rng(c * 1000 + int(eta * 1000))
    probs, labels = _random_teachers(rng, 400, c)
    revised, wrong = lrds.revise_targets(jnp.asarray(probs), jnp.asarray(labels), eta)
    revised = np.asarray(revised)
    target = revised[np.arange(len(labels)), labels]
    others = np.where(np.eye(c, dtype=bool)[labels], -np.inf, revised).max(1)
    assert np.all(target > others), "label must be the strict arg-max after revision"
    np.testing.assert_allclose(revised.sum(1), 1.0, rtol=1e-5)
    assert np.all(revised >= 0)
    # the flag marks exactly the examples whose teacher arg-max was not the label
    np.testing.assert_array_equal(np.asarray(wrong), probs.argmax(1) != labels)


def test_revision_beta_satisfies_paper_constraint():
    """Recover beta from the revised targets: beta = p_c / p^t_c on a non-target class."""
    rng = np.random.default_rng(0)
    probs, labels = _random_teachers(rng, 300, 7)
    eta = 0.8
    revised = np.asarray(lrds.revise_targets(jnp.asarray(probs), jnp.asarray(labels), eta)[0])
    rows = np.arange(300)
    other = np.where(np.eye(7, dtype=bool)[labels], -1.0, probs).argmax(1)  # largest non-target
    ok = probs[rows, other] > 1e-6
    assert ok.sum() > 200
    beta = revised[rows, other][ok] / probs[rows, other][ok]
    gap = (probs.max(1) - probs[rows, labels])[ok]
    assert np.all(beta < 1.0 / (gap + 1.0))
    np.testing.assert_allclose(beta * (gap + 1.0), eta, rtol=1e-4)


def test_correct_teacher_is_only_sharpened():
    rng = np.random.default_rng(1)
    n, c, eta = 500, 10, 0.7
    logits = rng.normal(size=(n, c)) * 3
    labels = logits.argmax(1).astype(np.int32)          # the teacher is right everywhere
    probs = np.asarray(jax.nn.softmax(jnp.asarray(logits, jnp.float32)))
    revised, wrong = lrds.revise_targets(jnp.asarray(probs), jnp.asarray(labels), eta)
    revised = np.asarray(revised)
    assert not np.asarray(wrong).any()
    idx = np.arange(n)
    assert np.all(revised[idx, labels] >= probs[idx, labels])
    assert np.all(revised[idx, labels] > probs[idx, labels] - 1e-7)
    assert np.all(revised[idx, labels][probs[idx, labels] < 0.999]
                  > probs[idx, labels][probs[idx, labels] < 0.999])
    # every non-target class shrinks by the same factor: ratios among them are preserved
    off = ~np.eye(c, dtype=bool)[labels]
    ratio = revised[off].reshape(n, c - 1) / probs[off].reshape(n, c - 1)
    np.testing.assert_allclose(ratio, eta, rtol=1e-4)


def test_wrong_teacher_keeps_ratios_among_non_targets():
    rng = np.random.default_rng(2)
    probs, labels = _random_teachers(rng, 200, 5)
    revised = np.asarray(lrds.revise_targets(jnp.asarray(probs), jnp.asarray(labels), 0.6)[0])
    off = ~np.eye(5, dtype=bool)[labels]
    r_off, p_off = revised[off].reshape(200, 4), probs[off].reshape(200, 4)
    ok = p_off.sum(1) > 1e-6
    # the non-target part, renormalised, is the teacher's: all ratios among those classes kept
    np.testing.assert_allclose(r_off[ok] / r_off[ok].sum(1, keepdims=True),
                               p_off[ok] / p_off[ok].sum(1, keepdims=True), atol=1e-5)


@pytest.mark.parametrize("eta", [0.0, 1.0, -0.1, 1.5, float("nan")])
def test_bad_eta_raises(eta):
    with pytest.raises(ValueError, match="eta"):
        lrds.revise_targets(jnp.ones((2, 3)) / 3, jnp.array([0, 1]), eta)


def test_bad_labels_raise():
    with pytest.raises(ValueError, match="labels"):
        lrds.revise_targets(jnp.ones((2, 3)) / 3, jnp.array([0, 3]), 0.8)
    with pytest.raises(ValueError, match="labels"):
        lrds.revise_targets(jnp.ones((2, 3)) / 3, jnp.array([-1, 0]), 0.8)


def test_revised_logits_reproduce_revised_probs_and_work_under_jit():
    rng = np.random.default_rng(3)
    z = jnp.asarray(rng.normal(size=(64, 10)) * 4, jnp.float32)
    y = jnp.asarray(rng.integers(0, 10, 64), jnp.int32)
    t = 4.0
    fn = jax.jit(lambda z, y: lrds.revised_teacher_logits(z, y, eta=0.8, temperature=t))
    logits, wrong = fn(z, y)
    expect = lrds.revise_targets(losses.teacher_probs(z, t), y, 0.8)[0]
    np.testing.assert_allclose(jax.nn.softmax(logits / t), expect, atol=1e-6)
    assert np.all(np.asarray(logits).argmax(1) == np.asarray(y))


def _kd_batch(rng, n=32, c=10, num_examples=100):
    return {
        "label": jnp.asarray(rng.integers(0, c, n), jnp.int32),
        "teacher_logits": jnp.asarray(rng.normal(size=(n, c)) * 3, jnp.float32),
        "id": jnp.asarray(rng.choice(num_examples, n, replace=False), jnp.int32),
        "mask": jnp.ones((n,), jnp.float32),
    }, jnp.asarray(rng.normal(size=(n, c)), jnp.float32)


def test_ds_fraction_one_equals_plain_kd():
    rng = np.random.default_rng(4)
    batch, logits = _kd_batch(rng)
    t, alpha = 4.0, 0.9
    ds_mask = select_subset(rng.normal(size=100), 1.0)
    assert ds_mask.all()
    fn = lrds.wrap_kd_loss(lrds.hinton_kd_term(t), temperature=t, lambda1=alpha,
                           lambda2=1 - alpha, ds_mask=ds_mask)
    ref = losses.kd_loss(logits, batch["label"], batch["teacher_logits"], temperature=t,
                         alpha=alpha)
    np.testing.assert_allclose(fn(logits, None, batch), ref, rtol=1e-6, atol=1e-7)
    # under jit XLA may re-associate float32 sums differently: equal to rounding
    np.testing.assert_allclose(jax.jit(fn)(logits, None, batch), ref, rtol=1e-5)
    # a full KD loss (its own CE inside) wrapped with kd_includes_ce, fraction 1.0: unchanged
    full = lambda lg, f, b: losses.kd_loss(lg, b["label"], b["teacher_logits"],
                                           temperature=t, alpha=alpha)
    fn2 = lrds.wrap_kd_loss(full, temperature=t, lambda2=1 - alpha, ds_mask=ds_mask,
                            kd_includes_ce=True)
    np.testing.assert_allclose(fn2(logits, None, batch), ref, rtol=1e-6, atol=1e-7)
    # and the array helper
    np.testing.assert_allclose(
        lrds.lrds_kd_loss(logits, batch["label"], batch["teacher_logits"], temperature=t,
                          eta=None, lambda1=alpha, lambda2=1 - alpha), ref, rtol=1e-6)


def test_ds_mask_routes_examples():
    """D^t rows: lambda1*KD + lambda2*CE; D^s rows: lambda2*CE only, mask indexed by id."""
    rng = np.random.default_rng(5)
    batch, logits = _kd_batch(rng)
    t, l1, l2 = 3.0, 0.7, 0.4
    ds_mask = select_subset(rng.normal(size=100), 0.5)
    fn = lrds.wrap_kd_loss(lrds.hinton_kd_term(t), temperature=t, lambda1=l1, lambda2=l2,
                           ds_mask=ds_mask)
    out = np.asarray(fn(logits, None, batch))
    ce = np.asarray(losses.cross_entropy(logits, batch["label"]))
    kd = np.asarray(t**2 * losses.kl_divergence(
        logits, losses.teacher_probs(batch["teacher_logits"], t), t))
    m = ds_mask[np.asarray(batch["id"])]
    assert 0 < m.sum() < len(m)
    np.testing.assert_allclose(out, np.where(m, l1 * kd + l2 * ce, l2 * ce), rtol=1e-6)
    # the batch's own mask (e.g. from TrainState.example_state) takes precedence
    b2 = dict(batch, example_state={"ds_mask": jnp.zeros((32,), bool)})
    np.testing.assert_allclose(fn(logits, None, b2), l2 * ce, rtol=1e-6)
    # ds disabled ignores every mask
    fn_off = lrds.wrap_kd_loss(lrds.hinton_kd_term(t), temperature=t, lambda1=l1, lambda2=l2,
                               ds_mask=ds_mask, ds_enabled=False)
    np.testing.assert_allclose(fn_off(logits, None, b2), l1 * kd + l2 * ce, rtol=1e-6)


def test_lr_wrapper_feeds_revised_targets_to_any_kd_fn():
    rng = np.random.default_rng(6)
    batch, logits = _kd_batch(rng)
    t, eta = 2.0, 0.8
    seen = {}

    def spy(lg, f, b):
        seen["p"] = losses.teacher_probs(b["teacher_logits"], t)
        seen["revised"] = b["lr_revised"]
        return jnp.zeros(lg.shape[:1])

    lrds.wrap_kd_loss(spy, temperature=t, eta=eta)(logits, None, batch)
    expect, wrong = lrds.revise_targets(losses.teacher_probs(batch["teacher_logits"], t),
                                        batch["label"], eta)
    np.testing.assert_allclose(seen["p"], expect, atol=1e-6)
    np.testing.assert_array_equal(seen["revised"], wrong)
    # no gradient flows into the teacher through the revision
    g = jax.grad(lambda z: lrds.wrap_kd_loss(lrds.hinton_kd_term(t), temperature=t, eta=eta)(
        logits, None, dict(batch, teacher_logits=z)).sum())(batch["teacher_logits"])
    assert np.all(np.asarray(g) == 0)


def test_loss_from_config_switches():
    rng = np.random.default_rng(7)
    batch, logits = _kd_batch(rng)
    cfg = lrds.default_lrds_config()
    cfg.lr.enabled, cfg.ds.enabled = False, False
    cfg.lambda1, cfg.lambda2 = 0.9, 0.1
    ref = losses.kd_loss(logits, batch["label"], batch["teacher_logits"],
                         temperature=cfg.temperature, alpha=0.9)
    out = lrds.loss_from_config(cfg, ds_mask=np.zeros(100, bool))(logits, None, batch)
    np.testing.assert_allclose(out, ref, rtol=1e-6)
    cfg.lr.enabled = True
    out_lr = lrds.loss_from_config(cfg)(logits, None, batch)
    assert not np.allclose(out_lr, ref)
    assert isinstance(cfg, ml_collections.ConfigDict)


def test_mask_by_id_and_validation():
    ids = np.array([4, 0, 2])
    np.testing.assert_array_equal(lrds.mask_by_id(np.array([True, False, True]), ids, 5),
                                  [False, False, True, False, True])
    with pytest.raises(ValueError, match="ids"):
        lrds.mask_by_id(np.array([True]), np.array([5]), 5)
    with pytest.raises(ValueError, match="temperature"):
        lrds.wrap_kd_loss(lrds.hinton_kd_term(1.0), temperature=0.0)


def test_runner_end_to_end_on_digits(tmp_path):
    """The real runner on sklearn digits: teacher, DS scoring student, KD and KD+LR+DS students."""
    from experiments import default
    from kdjax.methods import lrds_train

    c = default.get_config()
    c.method = "lrds"
    c.progress_bar = False
    c.tensorboard = False
    c.data.name = "digits"
    c.data.num_validation = 200
    c.data.batch_size = 64
    c.data.eval_batch_size = 200
    c.model.name = c.teacher.name = "mlp"
    c.model.kwargs = {"hidden": (16,)}
    c.teacher.kwargs = {"hidden": (8,)}
    c.teacher.epochs = c.train.epochs = 1
    c.train.learning_rate = 0.1
    c.train.checkpoint_every_steps = 1000
    c.lrds = lrds.default_lrds_config()
    c.lrds.variants = ("kd", "kd_lr_ds")
    c.lrds.ds.fraction = 0.75
    res = lrds_train.run(c, str(tmp_path))
    kd, full = res["rows"]
    n = kd["num_train"]
    assert n == 1437 - 200   # digits: 1437 train images, 200 held out for validation
    assert kd["revised_targets"] == 0 and kd["teacher_supervised"] == n
    # LR corrects the teacher-wrong examples that DS hands to the teacher
    assert 0 < full["revised_targets"] == full["teacher_wrong_supervised"] \
        <= res["teacher_train_errors"] == kd["teacher_wrong_supervised"]
    assert full["teacher_supervised"] == round(0.75 * n)
    assert 0.0 <= full["test_acc_mean"] <= 100.0
    scores = np.load(tmp_path / "ds" / "scores_influence.npy")
    assert scores.shape == (n,) and np.all(np.isfinite(scores)) and np.all(scores >= 0)
    # re-running the same workdir reuses every finished piece and adds a new scorer's run
    c.lrds.scorer_sweep = ("margin",)
    res2 = lrds_train.run(c, str(tmp_path))
    assert [r["test_acc_mean"] for r in res2["rows"][:2]] == [kd["test_acc_mean"],
                                                              full["test_acc_mean"]]
    assert res2["rows"][2]["ds_scorer"] == "margin"
    np.testing.assert_array_equal(np.load(tmp_path / "ds" / "scores_influence.npy"), scores)


def test_multi_teacher_revision_is_per_teacher():
    rng = np.random.default_rng(8)
    probs = np.stack([_random_teachers(rng, 50, 6)[0] for _ in range(3)], axis=1)  # (B, K, C)
    labels = rng.integers(0, 6, 50).astype(np.int32)
    rev, wrong = lrds.revise_targets(jnp.asarray(probs), jnp.asarray(labels), 0.8)
    assert rev.shape == probs.shape and wrong.shape == (50, 3)
    for k in range(3):
        rk, wk = lrds.revise_targets(jnp.asarray(probs[:, k]), jnp.asarray(labels), 0.8)
        np.testing.assert_allclose(rev[:, k], rk, rtol=1e-6)
        np.testing.assert_array_equal(wrong[:, k], wk)
    assert np.all(np.asarray(rev).argmax(-1) == labels[:, None])


def test_wrap_plugs_into_disk_and_alm_losses():
    """DiSK's guided distillation term and ALM-KD's student loss take LR/DS unchanged."""
    disk = pytest.importorskip("kdjax.methods.disk")
    alm = pytest.importorskip("kdjax.methods.alm")
    rng = np.random.default_rng(9)
    batch, logits = _kd_batch(rng)
    t, eta = 4.0, 0.8
    guide = jnp.asarray(rng.random((32, 10)) * 0.1, jnp.float32)
    disk_term = lambda lg, f, b: disk.guided_distillation_loss(lg, b["teacher_logits"], guide,
                                                               tau_t=t, tau_s=t, top_k=3)
    lam = jnp.asarray(rng.random(32), jnp.float32)
    alm_full = lambda lg, f, b: alm.student_loss(lg, b["label"], b["teacher_logits"], lam, t)
    ds_mask = select_subset(rng.normal(size=100), 1.0)
    # DS at fraction 1.0, LR off: each loss is returned unchanged
    np.testing.assert_allclose(
        lrds.wrap_kd_loss(alm_full, temperature=t, lambda2=0.1, ds_mask=ds_mask,
                          kd_includes_ce=True)(logits, None, batch),
        alm_full(logits, None, batch), rtol=1e-6)
    ce = losses.cross_entropy(logits, batch["label"])
    np.testing.assert_allclose(
        lrds.wrap_kd_loss(disk_term, temperature=t, lambda1=0.9, lambda2=0.1,
                          ds_mask=ds_mask)(logits, None, batch),
        0.9 * disk_term(logits, None, batch) + 0.1 * ce, rtol=1e-6)
    # LR on: identical to calling the loss on the revised teacher logits
    rev, _ = lrds.revised_teacher_logits(batch["teacher_logits"], batch["label"], eta=eta,
                                         temperature=t)
    for fn in (disk_term, alm_full):
        got = lrds.wrap_kd_loss(fn, temperature=t, eta=eta, kd_includes_ce=True)(
            logits, None, batch)
        np.testing.assert_allclose(got, fn(logits, None, dict(batch, teacher_logits=rev)),
                                   rtol=1e-6)


def test_loss_from_config_rejects_unknown_base_kd():
    cfg = lrds.default_lrds_config()
    cfg.base_kd = "disk"
    with pytest.raises(ValueError, match="base_kd"):
        lrds.loss_from_config(cfg)


def test_variant_list_and_configs():
    from kdjax.methods import lrds_train
    from experiments.lrds import ablation_eta, ablation_fraction, cifar100, imagenet
    cfg = cifar100.get_config("full")
    assert len(cfg.pairs) == 5 and cfg.method == "lrds"
    names = [v["name"] for v in lrds_train.variant_list(cfg.lrds)]
    assert names == ["kd", "kd_lr", "kd_ds", "kd_lr_ds"]
    v = {x["name"]: x for x in lrds_train.variant_list(ablation_eta.get_config("full").lrds)}
    assert v["kd_lr_ds_eta0.5"]["eta"] == 0.5 and v["kd_lr_ds_eta0.5"]["lr"]
    v = lrds_train.variant_list(ablation_fraction.get_config("full").lrds)
    assert [x["fraction"] for x in v[1:]] == [0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
    assert imagenet.get_config("full").lrds.ds.hessian == "auto"
    with cfg.unlocked():
        cfg.paper_row = "resnet56:resnet20"
    assert lrds_train._paper_number(cfg, "kd") == 70.66
    assert lrds_train._paper_number(cfg, "kd_lr") is None
    cfg.lrds.variants = ("kd", "nope")
    with pytest.raises(ValueError, match="variant"):
        lrds_train.variant_list(cfg.lrds)
