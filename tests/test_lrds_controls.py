"""LR+DS controls and counts of issue 20: LR on teacher-wrong rows only, the random-80% D^t,
the per-example-loss scorer, the 'revised targets' count against brute force, the agreement of
a DS score with the loss, the strong-teacher table and the ImageNet recipe."""
import types

import jax.numpy as jnp
import numpy as np
import pytest
import scipy.special

from experiments import default, tables
from experiments.lrds import imagenet, strong_teacher, variants
from kdjax import config as config_lib
from kdjax import losses
from kdjax.methods.lrds import influence, method, selection
from kdjax.methods.lrds import loss as lrds
from kdjax.reproduce import sweep

N, C, T, ETA = 400, 10, 2.0, 0.8


def _teacher(seed=0, n=N):
    rng = np.random.default_rng(seed)
    logits = (rng.normal(size=(n, C)) * rng.choice([0.3, 2.0, 8.0], size=(n, 1)))
    labels = rng.integers(0, C, n)
    logits[np.arange(n)[: n // 2], labels[: n // 2]] += 6.0   # half the rows: teacher right
    return logits.astype(np.float32), labels.astype(np.int32)


def test_wrong_only_revision_touches_only_teacher_wrong_rows():
    z, y = _teacher()
    wrong = z.argmax(1) != y
    assert 0 < wrong.sum() < N
    only, flag = lrds.revise_wrong_only(jnp.asarray(z), jnp.asarray(y), eta=ETA, temperature=T)
    full, _ = lrds.revised_teacher_logits(jnp.asarray(z), jnp.asarray(y), eta=ETA, temperature=T)
    only, full = np.asarray(only), np.asarray(full)
    np.testing.assert_array_equal(np.asarray(flag), wrong)
    np.testing.assert_array_equal(only[~wrong], z[~wrong])     # teacher-right rows untouched
    np.testing.assert_array_equal(only[wrong], full[wrong])    # wrong rows: the full revision
    assert np.all(np.asarray(losses.teacher_probs(only, T)).argmax(1) == y)   # label = arg-max


def test_wrong_only_wrapper_feeds_the_loss():
    z, y = _teacher(1)
    seen = {}

    def probe(logits, features, batch):
        seen["t"] = batch["teacher_logits"]
        return jnp.zeros(logits.shape[0])

    wrapped = lrds.label_revision(probe, eta=ETA, temperature=T, only_wrong=True)
    wrapped(jnp.zeros((N, C)), None, {"teacher_logits": jnp.asarray(z), "label": jnp.asarray(y)})
    ref, _ = lrds.revise_wrong_only(jnp.asarray(z), jnp.asarray(y), eta=ETA, temperature=T)
    np.testing.assert_array_equal(np.asarray(seen["t"]), np.asarray(ref))


class _Train:
    def __init__(self, labels):
        self.labels = labels

    def __len__(self):
        return len(self.labels)


def _config(**lrds_fields):
    c = default.get_config("lrds")
    c.loss.temperature = T
    c.lrds.lr.eta = ETA
    for field, value in lrds_fields.items():
        *parents, leaf = field.split("__")
        node = c.lrds
        for p in parents:
            node = node[p]
        node[leaf] = value
    return c


def _run(z, y, tmp_path):
    return types.SimpleNamespace(splits={"train": _Train(y)}, workdir=str(tmp_path))


def _base(z):
    """A base method's plan: one teacher with cached logits z, no entries of its own."""
    return types.SimpleNamespace(summarize=None, teachers=[types.SimpleNamespace(logits_cache=z)])


def test_random_80_is_uniform_at_a_fixed_seed(tmp_path):
    n = 20000
    run = _run(None, np.zeros(n, np.int32), tmp_path)
    cfg = _config(ds__scorer="random", ds__fraction=0.8)
    mask = selection.teacher_set(cfg, run)
    assert mask.sum() == 0.8 * n
    np.testing.assert_array_equal(mask, selection.teacher_set(cfg, run))   # fixed seed
    with cfg.unlocked():
        cfg.teacher.seed = 1
    other = selection.teacher_set(cfg, run)
    assert other.sum() == 0.8 * n and 0.6 < (mask & other).mean() < 0.7   # independent: 0.64
    # uniform: every block of rows keeps ~80% (binomial sd over 2000 rows ~0.9%)
    blocks = mask.reshape(10, -1).mean(1)
    assert np.all(np.abs(blocks - 0.8) < 0.04)
    assert not (tmp_path / "ds").exists()   # no warm-up student for the control


def test_random_80_variant_is_kd_ds_with_random_scorer():
    v = dict(variants.KD_RANDOM.fields)
    assert v == {"method": "lrds", "lrds.lr.enabled": False, "lrds.ds.enabled": True,
                 "lrds.ds.scorer": "random"}
    w = dict(variants.KD_LR_WRONG.fields)
    assert w["lrds.lr.only_wrong"] is True and w["lrds.ds.enabled"] is False


def test_per_example_loss_scorer_equals_cross_entropy():
    rng = np.random.default_rng(2)
    feats = rng.normal(size=(300, 5)).astype(np.float32)
    z = rng.normal(size=(300, C)).astype(np.float32) * 3
    y = rng.integers(0, C, 300).astype(np.int32)
    s = influence.score_examples("loss", influence.Outputs(feats, z), y, batch_size=64)
    ce = scipy.special.logsumexp(z.astype(np.float64), 1) - z[np.arange(300), y]
    np.testing.assert_allclose(s, ce, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(s, np.asarray(losses.cross_entropy(jnp.asarray(z),
                                                                  jnp.asarray(y))), atol=1e-6)


def _brute_force_changed(z, y, supervised, only_wrong):
    """Per row in float64: p^t = softmax(z / T), p = β p^t + (1 − β) y (teacher-wrong rows
    only with `only_wrong`), changed when some class moves by more than 1e-6."""
    count = wrong_count = 0
    for i in range(len(y)):
        p = scipy.special.softmax(z[i].astype(np.float64) / T)
        wrong = p.argmax() != y[i]
        beta = ETA / (p.max() - p[y[i]] + 1.0)
        q = beta * p + (1 - beta) * np.eye(C)[y[i]]
        if only_wrong and not wrong:
            q = p
        if supervised[i] and np.abs(q - p).max() > 1e-6:
            count += 1
            wrong_count += int(wrong)
    return count, wrong_count


@pytest.mark.parametrize("only_wrong", [False, True])
@pytest.mark.parametrize("ds", [False, True])
def test_revised_targets_count_equals_brute_force(tmp_path, only_wrong, ds):
    z, y = _teacher(3)
    z[:5] = 0.0
    z[np.arange(5), y[:5]] = 200.0   # one-hot teachers: LR changes nothing there
    cfg = _config(lr__only_wrong=only_wrong, ds__enabled=ds, ds__scorer="random")
    run = _run(z, y, tmp_path)
    out = method.summarize(cfg, run, _base(z), {})["lrds"]
    supervised = selection.teacher_set(cfg, run) if ds else np.ones(N, bool)
    count, wrong_count = _brute_force_changed(z, y, supervised, only_wrong)
    assert (out["revised_targets"], out["revised_teacher_wrong"]) == (count, wrong_count)
    wrong = z.argmax(1) != y
    assert out["teacher_wrong_supervised"] == wrong[supervised].sum() == wrong_count
    assert count == (wrong_count if only_wrong else supervised[5:].sum())
    off = method.summarize(_config(lr__enabled=False, ds__enabled=False), run, _base(z),
                           {})["lrds"]
    assert off["revised_targets"] == off["revised_teacher_wrong"] == 0


def test_agreement_of_a_score_with_itself_and_with_noise():
    rng = np.random.default_rng(4)
    a = rng.normal(size=5000)
    same = selection.agreement(a, 2 * a + 1, 0.8)
    assert same == {"spearman": pytest.approx(1.0), "topk_overlap": 1.0}
    noise = selection.agreement(a, rng.normal(size=5000), 0.8)
    assert abs(noise["spearman"]) < 0.05 and noise["topk_overlap"] == pytest.approx(0.8, abs=0.02)


def test_strong_teacher_table():
    spec = tables.TABLES["lrds_strong_teacher"]
    assert spec.default_seeds["cpu"] == 2 and spec.draw == "teacher_seed"
    arms = {getattr(v, "label", v) for v in spec.grid["variant"]}
    assert arms == {"CE", "KD", "KD+LR", "KD+DS", "KD+LR+DS", "KD+random 80%",
                    "KD+LR (wrong only)"}
    temps = {dict(t.fields)["loss.temperature"] for t in spec.grid["temperature"]}
    assert temps == {2.0, 4.0}
    pairs = {(b.value, b.values) for b in spec.paired}
    # every arm but CE against KD; KD against CE once (CE − KD is not counted again in Holm's m)
    vs_kd = ("KD", ("KD+LR", "KD+DS", "KD+LR+DS", "KD+random 80%", "KD+LR (wrong only)"))
    assert {vs_kd, ("CE", ("KD",)), ("KD+LR", ("KD+LR+DS",)),
            ("KD+random 80%", ("KD+DS",)), ("KD+LR (wrong only)", ("KD+LR",))} <= pairs
    c = strong_teacher.get_config()
    config_lib.validate(c)
    assert (c.teacher.name, c.model.name, c.data.name) == ("cnn_small", "mlp", "fashion_mnist")
    assert c.data.num_validation > 0    # the hyper-parameters were chosen on validation
    for tid in ("lrds_cifar100", "lrds_cifar100_cross_family", "lrds_imagenet",
                "lrds_ablation_eta", "lrds_ablation_fraction"):
        assert "CE" in {v.label for v in tables.TABLES[tid].grid["variant"]}, tid


def test_teacher_epochs_rule_and_table():
    """The fewest epochs within one binomial SE of the best validation accuracy; the table
    trains the teacher alone exactly as kdjax.experiment.teacher_config would."""
    # n = 2000, best 0.90: SE = 0.0067, so 0.894 is within it and 0.89 is not
    assert strong_teacher.choose_teacher_epochs({3: 0.85, 5: 0.89, 10: 0.894, 15: 0.90},
                                                2000) == 10
    assert strong_teacher.choose_teacher_epochs({3: 0.85, 5: 0.90, 10: 0.894}, 2000) == 5
    with pytest.raises(ValueError, match="validation accuracies"):
        strong_teacher.choose_teacher_epochs({}, 2000)
    spec = tables.TABLES["lrds_strong_teacher_epochs"]
    assert spec.grid["train.epochs"] == strong_teacher.TEACHER_EPOCH_GRID
    assert strong_teacher.TEACHER_EPOCHS in strong_teacher.TEACHER_EPOCH_GRID
    assert [m.path for m in spec.metrics] == ["validation_accuracy"]   # test is not read
    from kdjax import experiment
    student = strong_teacher.get_config("cpu")
    alone = strong_teacher.get_config("cpu:teacher")
    want = experiment.teacher_config(student)
    for field in ("seed", "method"):
        assert alone[field] == want[field]
    assert alone.model.name == want.model.name and alone.data == want.data
    assert {k: v for k, v in alone.train.items() if k != "eval_every_epochs"} == {
        k: v for k, v in want.train.items() if k != "eval_every_epochs"}


def test_every_claim_table_is_judged_over_ten_teacher_draws():
    """Issue 33 item 3: the claim is about the method, so each table that judges it pairs over
    >= 10 teacher draws (teacher.seed: teacher, DS warm-up and D^t), the draw axis outermost so
    that a partial run holds whole draws, each draw with >= 2 student seeds (the within-teacher
    interval beside the judged one)."""
    claims = [s for s in tables.TABLES.values() if s.paper == "lrds" and s.claim]
    assert {s.id for s in claims} >= {"lrds_cifar100", "lrds_cifar100_cross_family",
                                      "lrds_imagenet", "lrds_strong_teacher"}
    for spec in claims:
        assert spec.draw == "teacher_seed" and next(iter(spec.grid)) == spec.draw, spec.id
        for scale in ("cpu", "full"):
            points = sweep.expand(spec, scale)
            teachers = {p.param_dict["teacher_seed"] for p in points}
            assert len(teachers) >= 10 and spec.default_seeds[scale] >= 2, (spec.id, scale)
            first = [p.param_dict["teacher_seed"] for p in points[:len(points) // 10]]
            assert set(first) == {"0"}, spec.id      # whole draws first


def test_imagenet_recipe_has_its_own_temperature_and_weights():
    for arg in ("full", "cpu"):
        c = imagenet.get_config(arg)
        assert (c.loss.temperature, c.loss.kd_weight, c.loss.ce_weight) == (1.0, 0.5, 0.5)
    assert "torchdistill" in imagenet.__doc__ and "[ours]" in imagenet.__doc__
