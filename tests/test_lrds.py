"""LR+DS: label revision properties, the LR / DS wrappers around any loss, the method end to end."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from kdjax import losses
from kdjax.methods.kd.method import make_kd_loss
from kdjax.methods.lrds import loss as lrds
from kdjax.methods.lrds.influence import select_subset
from kdjax.train.mesh import make_mesh


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


def _kd_batch(rng, n=32, c=10):
    return {
        "label": jnp.asarray(rng.integers(0, c, n), jnp.int32),
        "teacher_logits": jnp.asarray(rng.normal(size=(n, c)) * 3, jnp.float32),
        "mask": jnp.ones((n,), jnp.float32),
    }, jnp.asarray(rng.normal(size=(n, c)), jnp.float32)


def test_ds_fraction_one_equals_plain_kd():
    rng = np.random.default_rng(4)
    batch, logits = _kd_batch(rng)
    t, w = 4.0, 0.9
    kd = make_kd_loss(t, w, 1 - w)
    batch["ds_mask"] = jnp.asarray(select_subset(rng.normal(size=32), 1.0), jnp.float32)
    fn = lrds.data_selection(kd, ce_weight=1 - w)
    ref = losses.kd_loss(logits, batch["label"], batch["teacher_logits"], temperature=t,
                         alpha=w)
    np.testing.assert_allclose(fn(logits, None, batch), ref, rtol=1e-6, atol=1e-7)
    # under jit XLA may re-associate float32 sums differently: equal to rounding
    np.testing.assert_allclose(jax.jit(fn)(logits, None, batch), ref, rtol=1e-5)


def test_ds_mask_routes_examples():
    """D^t rows: the wrapped loss (w_ce·CE + w_kd·τ²·KL for KD); D^s rows: w_ce·CE only."""
    rng = np.random.default_rng(5)
    batch, logits = _kd_batch(rng)
    t, w_kd, w_ce = 3.0, 0.7, 0.4
    m = select_subset(rng.normal(size=32), 0.5)
    batch["ds_mask"] = jnp.asarray(m, jnp.float32)
    out = np.asarray(lrds.data_selection(make_kd_loss(t, w_kd, w_ce), ce_weight=w_ce)(
        logits, None, batch))
    ce = np.asarray(losses.cross_entropy(logits, batch["label"]))
    kd = np.asarray(t**2 * losses.kl_divergence(
        logits, losses.teacher_probs(batch["teacher_logits"], t), t))
    assert 0 < m.sum() < len(m)
    np.testing.assert_allclose(out, np.where(m, w_kd * kd + w_ce * ce, w_ce * ce), rtol=1e-6)
    with pytest.raises(ValueError, match="ce_weight"):
        lrds.data_selection(make_kd_loss(t, w_kd, w_ce), ce_weight=-0.1)


def test_lr_wrapper_feeds_revised_targets_to_any_loss():
    rng = np.random.default_rng(6)
    batch, logits = _kd_batch(rng)
    t, eta = 2.0, 0.8
    seen = {}

    def spy(lg, f, b):
        seen["p"] = losses.teacher_probs(b["teacher_logits"], t)
        seen["revised"] = b["lr_revised"]
        return jnp.zeros(lg.shape[:1])

    lrds.label_revision(spy, temperature=t, eta=eta)(logits, None, batch)
    expect, wrong = lrds.revise_targets(losses.teacher_probs(batch["teacher_logits"], t),
                                        batch["label"], eta)
    np.testing.assert_allclose(seen["p"], expect, atol=1e-6)
    np.testing.assert_array_equal(seen["revised"], wrong)
    assert "lr_revised" not in batch   # the caller's batch is left alone
    # identical to the wrapped loss on the revised teacher logits; no gradient into the teacher
    kd = make_kd_loss(t, 0.9)
    rev, _ = lrds.revised_teacher_logits(batch["teacher_logits"], batch["label"], eta=eta,
                                         temperature=t)
    np.testing.assert_allclose(lrds.label_revision(kd, eta=eta, temperature=t)(
        logits, None, batch), kd(logits, None, dict(batch, teacher_logits=rev)), rtol=1e-6)
    g = jax.grad(lambda z: lrds.label_revision(kd, temperature=t, eta=eta)(
        logits, None, dict(batch, teacher_logits=z)).sum())(batch["teacher_logits"])
    assert np.all(np.asarray(g) == 0)
    with pytest.raises(ValueError, match="temperature"):
        lrds.label_revision(kd, eta=eta, temperature=0.0)
    with pytest.raises(ValueError, match="eta"):
        lrds.label_revision(kd, eta=1.0, temperature=t)


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


def test_wrappers_compose_around_a_multi_teacher_loss():
    """LR revises each of K stacked teachers; DS keeps the loss on D^t, CE on D^s."""
    rng = np.random.default_rng(9)
    n, k, c, t = 16, 3, 5, 2.0
    batch = {"label": jnp.asarray(rng.integers(0, c, n), jnp.int32),
             "teacher_logits": jnp.asarray(rng.normal(size=(n, k, c)) * 3, jnp.float32),
             "ds_mask": jnp.asarray(rng.random(n) < 0.5, jnp.float32)}
    logits = jnp.asarray(rng.normal(size=(n, c)), jnp.float32)

    def mean_kl(lg, f, b):   # an ALM-like loss over K teachers
        probs = losses.teacher_probs(b["teacher_logits"], t)
        return jnp.mean(jax.vmap(lambda p: losses.kl_divergence(lg, p, t), 1, 1)(probs), -1)

    got = lrds.data_selection(lrds.label_revision(mean_kl, eta=0.8, temperature=t),
                              ce_weight=0.1)(logits, None, batch)
    rev, _ = lrds.revised_teacher_logits(batch["teacher_logits"], batch["label"], eta=0.8,
                                         temperature=t)
    want = np.where(np.asarray(batch["ds_mask"]) > 0,
                    mean_kl(logits, None, dict(batch, teacher_logits=rev)),
                    0.1 * losses.cross_entropy(logits, batch["label"]))
    np.testing.assert_allclose(got, want, rtol=1e-5)


# --- the method: config, one run per variant, the DS stage ----------------------------------

def _digits_config(**lrds_fields):
    from experiments import default
    c = default.get_config("lrds")
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
    c.lrds.ds.fraction = 0.75
    for field, value in lrds_fields.items():
        node = c.lrds
        *parents, leaf = field.split("__")
        for p in parents:
            node = node[p]
        node[leaf] = value
    return c


def test_config_section_and_checks():
    from kdjax import config as config_lib
    c = _digits_config()
    config_lib.validate(c)
    assert (c.lrds.lr.enabled, c.lrds.ds.enabled, c.lrds.lr.eta) == (True, True, 0.8)
    for field, bad in (("lr__eta", 1.0), ("ds__fraction", 1.5), ("ds__scorer", "shapley"),
                       ("ds__warmup_epochs", 0), ("base", "lrds")):
        with pytest.raises(config_lib.ConfigError, match="lrds." + field.replace("__", ".")):
            config_lib.validate(_digits_config(**{field: bad}))
    c = _digits_config()
    with c.unlocked():
        c.lrds.lambda1 = 0.9   # the old name: the shared loss.kd_weight now
    with pytest.raises(config_lib.ConfigError, match="lrds.lambda1"):
        config_lib.validate(c)


@pytest.mark.slow
def test_one_run_per_variant_on_digits(tmp_path):
    """KD and KD+LR+DS runs: same teacher (stage seed) in each workdir, D^t from the cached
    warm-up scores, the per-run counts the tables read."""
    from kdjax import run as run_lib
    from kdjax.methods.lrds import selection
    kd = run_lib.run(_digits_config(lr__enabled=False, ds__enabled=False), str(tmp_path / "kd"))
    full = run_lib.run(_digits_config(), str(tmp_path / "kd_lr_ds"))
    n = kd["lrds"]["num_train"]
    assert n == 1437 - 200   # digits: 1437 train images, 200 held out for validation
    assert kd["teacher"]["test_accuracy"] == full["teacher"]["test_accuracy"]
    errors = kd["lrds"]["teacher_train_errors"]
    assert errors == full["lrds"]["teacher_train_errors"] > 0
    assert kd["lrds"]["revised_targets"] == 0 and kd["lrds"]["teacher_supervised"] == n
    assert kd["lrds"]["teacher_wrong_supervised"] == errors and kd["lrds"]["ds_scorer"] is None
    # LR changes every target DS hands to the teacher: it corrects the teacher-wrong ones
    f = full["lrds"]
    assert f["revised_targets"] == f["teacher_supervised"]
    assert 0 < f["revised_teacher_wrong"] == f["teacher_wrong_supervised"] <= errors
    assert -1 <= f["ds_spearman_vs_loss"] <= 1 and 0 <= f["ds_topk_overlap_vs_loss"] <= 1
    assert f["teacher_supervised"] == round(0.75 * n) and f["ds_scorer"] == "influence"
    assert 0.0 <= full["test_accuracy"] <= 1.0 and len(full["history"]) == 1
    scores = np.load(tmp_path / "kd_lr_ds" / "ds" / "scores_influence.npy")
    assert scores.shape == (n,) and np.all(np.isfinite(scores)) and np.all(scores >= 0)
    assert not (tmp_path / "kd" / "ds").exists()   # no DS, no warm-up stage
    # a finished stage is read back, not retrained; a new scorer reuses the warm-up student
    ddir = tmp_path / "kd_lr_ds" / "ds"
    stamp = (ddir / "warmup" / "results.json").stat().st_mtime_ns
    cfg = _digits_config(ds__scorer="margin")
    run = run_lib.Context(cfg, str(tmp_path / "kd_lr_ds"), *_splits(cfg), mesh=make_mesh())
    margin = selection.scores(cfg, run)
    assert (ddir / "scores_margin.npy").exists() and margin.shape == (n,)
    assert (ddir / "warmup" / "results.json").stat().st_mtime_ns == stamp
    again = run_lib.run(_digits_config(), str(tmp_path / "kd_lr_ds"))
    assert again["test_accuracy"] == full["test_accuracy"] and again["lrds"] == f


def _splits(cfg):
    from kdjax import experiment
    return experiment.load_splits(cfg.data)


def test_random_and_lowest_selection(tmp_path):
    from kdjax import run as run_lib
    from kdjax.methods.lrds import selection
    cfg = _digits_config(ds__scorer="random")
    run = run_lib.Context(cfg, str(tmp_path), *_splits(cfg), mesh=make_mesh())
    top = selection.teacher_set(cfg, run)
    assert top.sum() == round(0.75 * len(top))
    np.testing.assert_array_equal(top, selection.teacher_set(cfg, run))   # fixed by teacher.seed
    low = selection.teacher_set(_digits_config(ds__scorer="random", ds__lowest=True), run)
    assert low.sum() == top.sum() and (low & top).sum() < top.sum()
    assert selection.teacher_set(_digits_config(ds__enabled=False), run) is None
    assert not (tmp_path / "ds").exists()   # 'random' needs no warm-up student
