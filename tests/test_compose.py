"""Compositions (issue 21): each reduces to the plain loss in its neutral setting and trains end
to end on the tiny digits config.

LR+DS around DiSK and ALM-KD (`lrds.base`), and RAD's active loop retrained with a method's loss
(`active.retrain`, kdjax/methods/rad/retrain.py)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from kdjax import config as config_lib
from kdjax import losses
from kdjax import run as run_lib
from kdjax.methods.alm.loss import make_student_loss
from kdjax.methods.disk.method import make_disk_loss
from kdjax.methods.kd.method import make_kd_loss
from kdjax.methods.lrds import loss as lrds_loss
from kdjax.methods.rad import loop as active_loop
from kdjax.methods.rad import retrain as compose
from kdjax.train import checkpoint as ckpt_lib
from papers.rad import compose_active
from tests.configs import tiny

C = 10


def _batch(seed=0, n=32, right=None):
    """A fixed batch: student logits, teacher logits, labels (the teacher's arg-max where
    `right`), DiSK's g and τ_S, ALM's λ."""
    rng = np.random.default_rng(seed)
    t = rng.normal(size=(n, C)).astype(np.float32) * 3
    labels = rng.integers(0, C, n).astype(np.int32)
    if right:
        labels = t.argmax(-1).astype(np.int32)
    batch = {"teacher_logits": jnp.asarray(t), "label": jnp.asarray(labels),
             "ds_mask": jnp.ones(n, jnp.float32),
             "example_state": {"guide": jnp.zeros(n, jnp.float32),
                               "tau_s": jnp.full(n, 4.0, jnp.float32),
                               "lambda": jnp.asarray(rng.uniform(0, 1, n), jnp.float32)}}
    return jnp.asarray(rng.normal(size=(n, C)), jnp.float32), batch


def _disk_config(**disk):
    c = tiny.get_config("disk")
    c.loss.temperature, c.loss.ce_weight, c.loss.kd_weight = 4.0, 0.1, 0.9
    c.disk.top_k = C
    for k, v in disk.items():
        c.disk[k] = v
    return c


def _bases():
    """Per-example losses LR and DS wrap: KD, DiSK (Eq. 4 + α·CE), ALM-KD (Eq. 5 with λ)."""
    return {"kd": make_kd_loss(4.0, 0.9, 0.1), "disk": make_disk_loss(_disk_config()),
            "alm": make_student_loss(4.0)}


# --- neutral settings on a fixed batch ------------------------------------------------------

def test_disk_with_zero_guide_equals_kd():
    """g ≡ 0, τ_S = τ_T, the full target: α·CE + (1 − α)·Eq. 4 = Hinton KD (w_kd = 1 − α)."""
    logits, batch = _batch()
    disk = make_disk_loss(_disk_config(target="full"))(logits, None, batch)
    kd = make_kd_loss(4.0, 0.9, 0.1)(logits, None, batch)
    np.testing.assert_allclose(disk, kd, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("base", ["kd", "disk", "alm"])
def test_ds_with_fraction_one_equals_the_base(base):
    logits, batch = _batch()
    fn = _bases()[base]
    np.testing.assert_allclose(lrds_loss.data_selection(fn, ce_weight=0.1)(logits, None, batch),
                               fn(logits, None, batch), rtol=1e-6)


@pytest.mark.parametrize("base", ["kd", "disk", "alm"])
def test_lr_neutral_limits_equal_the_base(base):
    """β = η / (p_max − p_y + 1): where the teacher is right, η → 1 gives β → 1 (the teacher's
    own targets: the base loss); η → 0 gives β → 0 (the one-hot label as the teacher)."""
    fn = _bases()[base]
    logits, batch = _batch(right=True)
    lr = lrds_loss.label_revision(fn, eta=1 - 1e-6, temperature=4.0)
    np.testing.assert_allclose(lr(logits, None, batch), fn(logits, None, batch), rtol=1e-4)
    logits, batch = _batch(seed=1)
    lr = lrds_loss.label_revision(fn, eta=1e-7, temperature=4.0)
    hard = dict(batch, teacher_logits=jnp.asarray(compose.target_logits(
        np.eye(C, dtype=np.float32)[np.asarray(batch["label"])])))
    np.testing.assert_allclose(lr(logits, None, batch), fn(logits, None, hard), rtol=1e-4,
                               atol=1e-5)


def test_lr_is_the_identity_on_hard_labeled_rows():
    """In the active loop A's targets are one-hot labels: LR leaves them as they are."""
    logits, batch = _batch(seed=2)
    hard = dict(batch, teacher_logits=jnp.asarray(compose.target_logits(
        np.eye(C, dtype=np.float32)[np.asarray(batch["label"])])))
    fn = make_kd_loss(4.0, 0.9, 0.1)
    np.testing.assert_allclose(lrds_loss.label_revision(fn, eta=0.5, temperature=4.0)(
        logits, None, hard), fn(logits, None, hard), rtol=1e-5, atol=1e-6)


def test_target_logits_reproduce_the_targets():
    rng = np.random.default_rng(0)
    soft = np.asarray(jax.nn.softmax(rng.normal(size=(5, C)) * 2), np.float32)
    hard = np.eye(C, dtype=np.float32)[rng.integers(0, C, 5)]
    for targets in (soft, hard):
        z = compose.target_logits(targets)
        assert np.all(np.isfinite(z)) and z.min() >= -compose.HARD_GAP
        np.testing.assert_allclose(np.asarray(losses.teacher_probs(jnp.asarray(z))), targets,
                                   atol=1e-6)
    # One-hot to within 1e-10 per class at τ = 4.
    assert np.asarray(losses.teacher_probs(jnp.asarray(compose.target_logits(hard)),
                                           4.0)).min() < 1e-10


def test_rad_kd_at_unit_temperature_equals_kl_to_targets():
    """retrain='kd' with kd_weight = 1, ce_weight = 0, τ = 1 on `target_logits` is Alg. 1's KL."""
    rng = np.random.default_rng(3)
    soft = np.asarray(jax.nn.softmax(rng.normal(size=(16, C)) * 2), np.float32)
    targets = np.concatenate([np.eye(C, dtype=np.float32)[rng.integers(0, C, 16)], soft])
    logits = jnp.asarray(rng.normal(size=(32, C)), jnp.float32)
    batch = {"teacher_logits": jnp.asarray(compose.target_logits(targets)),
             "label": jnp.asarray(targets.argmax(-1)), "target_probs": jnp.asarray(targets)}
    np.testing.assert_allclose(make_kd_loss(1.0, 1.0, 0.0)(logits, None, batch),
                               active_loop.kl_to_targets(logits, None, batch), rtol=1e-5,
                               atol=1e-6)


def test_retrain_names_a_method():
    with pytest.raises(ValueError, match="active.retrain"):
        compose.retrain_module("rad")


# --- LR+DS around DiSK and ALM-KD, end to end -----------------------------------------------

def _lrds_config(base, lr, ds):
    c = tiny.get_config("lrds")
    config_lib.mount(c, base)
    c.lrds.base = base
    c.lrds.lr.enabled, c.lrds.ds.enabled = lr, ds
    c.lrds.ds.scorer = "random"
    c.lrds.ds.fraction = 0.75
    c.train.epochs = 2
    if base == "disk":
        c.loss.ce_weight, c.loss.kd_weight = 0.1, 0.9
        c.disk.guide_init_epochs = 1
        c.disk.top_k = 5
    if base == "alm":
        c.alm.update_every = 2
    return c


def _params(workdir):
    return jax.tree.leaves(ckpt_lib.load_variables(str(workdir))["params"])


@pytest.mark.slow
@pytest.mark.parametrize("base", ["disk", "alm"])
def test_lrds_around_disk_and_alm(tmp_path, base):
    """LR+DS with LR and DS off trains the same parameters as the base method alone (its
    state, hooks and warm start carried); with both on it trains end to end and reports the
    base's entries beside its own."""
    off = _lrds_config(base, lr=False, ds=False)
    plain = tiny.get_config(base)
    for section in ("loss", "train", base):
        plain[section] = off[section]
    r_plain = run_lib.run(plain, str(tmp_path / "plain"))
    r_off = run_lib.run(off, str(tmp_path / "off"))
    for a, b in zip(_params(tmp_path / "plain"), _params(tmp_path / "off")):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    assert r_off["test_accuracy"] == pytest.approx(r_plain["test_accuracy"])
    r_on = run_lib.run(_lrds_config(base, lr=True, ds=True), str(tmp_path / "on"))
    assert np.isfinite(r_on["history"][-1]["train/loss"])
    assert abs(r_on["lrds"]["teacher_supervised"] - 0.75 * r_on["lrds"]["num_train"]) <= 1
    if base == "disk":
        assert r_on["disk"]["rounds"] == 2
        assert any("disk/round" in h for h in r_on["history"])
    else:
        assert r_on["variant"] == "alm"
        assert 0.0 < r_on["lambda"][next(iter(r_on["lambda"]))]["std"]   # λ meta-learned


# --- RAD's active loop retrained with a method's loss ---------------------------------------

def _active_config(retrain, rounds=1):
    c = tiny.get_config("rad")
    for name in ("lrds", "alm", "disk"):   # the sections the tests set (a config file mounts them)
        config_lib.mount(c, name)
    c.data.eval_batch_size = 120
    c.train.epochs = 2
    c.teacher.epochs = 3
    c.active.strategy = "margin"
    c.active.num_labeled = 300
    c.active.budget = 100
    c.active.rounds = rounds
    c.active.retrain = retrain
    return c


def test_retrain_mounts_the_sections_its_method_reads():
    """A driver's config holds the sections its file mounted; the round's method gets its own
    (and its base's) with their defaults, the loop's config untouched."""
    c = tiny.get_config("rad")
    c.active.retrain = "lrds"
    assert "lrds" not in c
    out = compose.with_sections(c)
    assert out.method == "rad" and "lrds" not in c
    assert out.lrds.to_dict() == config_lib.base_config("lrds").lrds.to_dict()
    c.active.retrain = "kd"
    assert set(compose.with_sections(c).keys()) == set(c.keys()) | set(
        config_lib.base_config("kd").keys())


def test_rad_retrain_kd_neutral_equals_kl(tmp_path):
    """retrain='kd' with kd_weight = 1, ce_weight = 0, τ = 1 retrains to today's loop numbers."""
    base = active_loop.run(_active_config("kl"), str(tmp_path / "kl"))
    c = _active_config("kd")
    c.loss.kd_weight, c.loss.ce_weight, c.loss.temperature = 1.0, 0.0, 1.0
    kd = active_loop.run(c, str(tmp_path / "kd"))
    for a, b in zip(base["records"], kd["records"]):
        assert a["test_accuracy"] == pytest.approx(b["test_accuracy"], abs=1e-6)
        assert a["queries"] == b["queries"]
    for a, b in zip(_params(tmp_path / "kl" / "round_1"), _params(tmp_path / "kd" / "round_1")):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("retrain", ["lrds", "alm",
                                     pytest.param("disk", marks=pytest.mark.slow)])
def test_rad_retrains_with_any_method(tmp_path, retrain):
    c = _active_config(retrain)
    c.lrds.ds.scorer = "random"
    c.disk.guide_init_epochs = 1
    c.disk.top_k = 5
    if retrain == "disk":
        c.loss.ce_weight, c.loss.kd_weight = 0.1, 0.9
    res = active_loop.run(c, str(tmp_path))
    assert [r["queries"] for r in res["records"]] == [0, 100]
    assert res["records"][1]["test_accuracy"] > 0.3
    # Round 0 is Alg. 1's CE-only student whatever the retraining loss (shared, paired).
    kl = active_loop.run(_active_config("kl"), str(tmp_path / "kl"))
    assert res["records"][0]["test_accuracy"] == kl["records"][0]["test_accuracy"]
    assert res["records"][1]["test_accuracy"] != kl["records"][1]["test_accuracy"]


# --- selection × retraining, paired (papers.rad.compose_active) ----------------------------------

def test_grid_arms_and_pairs():
    c = _active_config("kl")
    c.active.strategies, c.active.retrains = ("uniform", "rad"), ("kd", "alm")
    assert compose_active.arms(c) == ["uniform/kd", "rad/kd", "uniform/alm", "rad/alm"]
    assert compose_active.pairs(c) == [("uniform/kd", "rad/kd"), ("uniform/alm", "rad/alm"),
                                       ("uniform/alm", "uniform/kd"), ("rad/alm", "rad/kd")]


@pytest.mark.slow
def test_grid_runs_paired_trials(tmp_path):
    c = _active_config("kl")
    c.method = "papers.rad.compose_active:run"
    c.active.strategies, c.active.retrains = ("uniform", "margin"), ("kd", "lrds")
    c.active.num_trials = 2
    c.lrds.ds.enabled = False
    res = run_lib.run(c, str(tmp_path))
    assert res["seeds"] == [0, 1] and len(res["trials"]) == 2
    alls = {r["comparison"]: r["diff"] for r in res["paired_rows"] if r["round"] == "all"}
    assert set(alls) == {"uniform/kd − margin/kd", "uniform/lrds − margin/lrds",
                         "uniform/lrds − uniform/kd", "margin/lrds − margin/kd"}
    assert all(d["n"] == 2 and d["lo"] <= d["mean"] <= d["hi"] for d in alls.values())
    # Round 0 is shared by every arm of a trial.
    for runs in res["trials"]:
        assert len({r["records"][0]["test_accuracy"] for r in runs.values()}) == 1
    assert {row["retrain"] for row in res["rows"]} == {"kd", "lrds"}
    assert res["placement"]["num_devices"] == jax.device_count()


def test_alm_teacher_sets_are_refused_in_the_loop():
    c = _active_config("alm")
    c.alm.assistants = ("mlp",)
    with pytest.raises(ValueError, match="alm.assistants"):
        compose.check(c)
    compose.check(_active_config("alm"))


def test_lr_feeds_a_base_pre_step_the_revised_targets():
    """ALM-KD's meta-update (a pre_step) sees the targets the LR-wrapped loss distils; the
    batch it hands on keeps the original logits (the loss revises them itself)."""
    from kdjax.methods.lrds.method import revised_pre_step
    _, batch = _batch(seed=4)
    seen = {}

    def spy(state, b, ctx):
        seen["logits"] = b["teacher_logits"]
        return state, b, {}

    _, out, _ = revised_pre_step(spy, eta=0.8, temperature=4.0)(None, batch, None)
    expect, _ = lrds_loss.revised_teacher_logits(batch["teacher_logits"], batch["label"],
                                                 eta=0.8, temperature=4.0)
    np.testing.assert_allclose(seen["logits"], expect, rtol=1e-6)
    np.testing.assert_array_equal(out["teacher_logits"], batch["teacher_logits"])


def test_experiment_configs_validate():
    from experiments.compose import active_retrain
    from kdjax import config as config_lib
    for arg in ("cpu", "full"):
        c = active_retrain.get_config(arg)
        config_lib.validate(c)
        assert compose_active.arms(c)[0] == "uniform/kd" and c.active.num_trials == 8
    with pytest.raises(ValueError, match="active_retrain arg"):
        active_retrain.get_config("gpu")
    c = tiny.get_config("rad")
    c.active.retrain = "rad"
    with pytest.raises(config_lib.ConfigError, match="active.retrain"):
        config_lib.validate(c)
