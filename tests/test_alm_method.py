"""ALM-KD on the method interface (kdjax.methods.alm.method through kdjax.run / loop.fit): one run
per variant end to end, λ updated only on meta steps and only on the batch's rows (checked
against meta.meta_update), η_λ = 0 equals Hinton KD, resume restores λ, DGKD's keep mask, the
config files validate."""
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp
import pytest

from kdjax import config as config_lib
from kdjax import experiment
from kdjax import run as run_lib
from kdjax.data import flip_labels, flip_mask
from kdjax.methods.alm import meta
from kdjax.methods.alm import method as alm_method
from kdjax.methods.alm import teachers as teachers_lib
from kdjax.reproduce.spec import load_config
from kdjax.train import checkpoint as ckpt_lib
from kdjax.train import loop
from kdjax.train import mesh as mesh_lib
from kdjax.train.method import StepContext
from kdjax.train.state import create_train_state
from kdjax.train.step import make_train_step, preprocess
from tests.configs import tiny


def _config(**overrides):
    c = tiny.get_config("alm")
    c.train.epochs = 1
    c.teacher.epochs = 1
    return tiny.override(c, **overrides)


@pytest.fixture(scope="module")
def digits():
    return experiment.load_splits(tiny.get_config().data)


@pytest.fixture(scope="module")
def random_teacher(digits):
    """An untrained MLP teacher (its logits are as good as any for the equalities tested)."""
    splits, info = digits
    model = experiment.build_model(tiny.get_config().teacher, info.num_classes)
    variables = model.init(jax.random.PRNGKey(7), jnp.zeros((1, *info.image_shape)))
    scaled = jax.tree.map(lambda a: 3.0 * a, dict(variables))  # sharper teacher probabilities
    cache, _ = loop.predict_split(model, scaled, splits["train"], info, 200, mesh_lib.make_mesh())
    return loop.Teacher(model, scaled, np.asarray(cache, np.float32))


@pytest.fixture(scope="module")
def teacher_dir(tmp_path_factory):
    """A trained 1-epoch teacher shared by the runs that compare students."""
    root = str(tmp_path_factory.mktemp("teacher"))
    run_lib.run(_config(**{"alm.variant": "kd"}), root)
    return os.path.join(root, "teacher")


def _np(tree):
    return jax.tree.map(np.asarray, jax.device_get(tree))


def test_one_run_per_variant_with_early_stopped_teachers_and_noisy_labels(tmp_path, digits):
    common = {"alm.teacher_epochs": (1, 2), "teacher.epochs": 2, "data.label_noise": 0.3,
              "alm.update_every": 2, "loss.kd_weight": 0.5}
    res = {v: run_lib.run(_config(**common, **{"alm.variant": v}), str(tmp_path / v))
           for v in ("kd", "alm")}
    # the CE row: method='ce' on the same noisy labels (the alm section is not its)
    res["ce"] = run_lib.run(_config(**common, method="ce"), str(tmp_path / "ce"))
    assert res["ce"]["config"]["data"]["label_noise"] == 0.3 and "alm" not in res["ce"]["config"]
    for v, r in res.items():
        assert 0.0 < r["test_accuracy"] <= 1.0 and (v == "ce" or r["early_stop"]["epoch"] == 1)
    assert [t["name"] for t in res["alm"]["teachers"]] == ["mlp@1", "mlp@final"]
    assert res["alm"]["teacher"]["name"] == "mlp@final"
    lam = res["alm"]["lambda"]
    assert set(lam) == {"mlp@1", "mlp@final"} and "mean_flipped" in lam["mlp@final"]
    stored = np.load(tmp_path / "alm" / "lambda.npy")
    assert stored.shape[1] == 2 and not np.allclose(stored, 0.5)
    # Teacher queries (cached soft labels): KD labels the training split once; ALM-KD's two
    # teachers label the training and validation splits once each; CE none.
    n_train = len(digits[0]["train"])
    n_val = len(digits[0]["validation"])
    assert res["ce"]["teacher_queries"] == 0
    assert res["kd"]["teacher_queries"] == n_train
    assert res["alm"]["teacher_queries"] == 2 * (n_train + n_val)
    # A finished run is read back, not retrained.
    again = run_lib.run(_config(**common, **{"alm.variant": "alm"}), str(tmp_path / "alm"))
    assert again["history"] == res["alm"]["history"]


def test_lambda_changes_only_on_meta_steps_and_only_on_batch_rows(tmp_path, digits,
                                                                  random_teacher):
    splits, info = digits
    config = _config(**{"alm.update_every": 2, "alm.lambda_lr": 50.0})
    cfg = meta.MetaConfig.from_config(config)
    run = run_lib.Context(config, str(tmp_path), dict(splits), info, mesh_lib.make_mesh(),
                          given_teacher=(random_teacher, {}))
    method = alm_method.make_method(config, run).method
    model = experiment.build_model(config.model, info.num_classes)
    train, val = splits["train"], splits["validation"]
    num_ids = method.example_state["lambda"].shape[0]
    lam0 = jnp.asarray(np.random.default_rng(0).uniform(0.2, 0.8, num_ids), jnp.float32)
    lr = 0.1
    step = jax.jit(make_train_step(model, method, mean=info.mean, std=info.std,
                                   schedule=lambda t: jnp.float32(lr)))
    state = create_train_state(model, optax.sgd(lr), jax.random.PRNGKey(0), info.image_shape,
                               example_state={"lambda": lam0},
                               frozen={"teachers": None, "method": method.constants})
    t_train, t_val = random_teacher.logits_cache, method.constants["val_logits"]
    row_of_id = np.asarray(method.constants["val_row_of_id"])

    def batch(rows, vrows):
        return {"image": train.images[rows], "label": train.labels[rows], "id": train.ids[rows],
                "mask": np.ones(len(rows), np.float32), "teacher_logits": t_train[rows],
                "validation/image": val.images[vrows], "validation/label": val.labels[vrows],
                "validation/id": val.ids[vrows],
                "validation/mask": np.ones(len(vrows), np.float32)}

    b0 = batch(np.arange(0, 32), np.arange(0, 32))
    params0 = _np(state.params)
    s1, m1 = step(state, b0, jax.random.PRNGKey(1))                      # step 0: meta step
    lam1 = np.asarray(s1.example_state["lambda"])
    ids = b0["id"]
    others = np.setdiff1d(np.arange(num_ids), ids)
    np.testing.assert_array_equal(lam1[others], np.asarray(lam0)[others])
    assert np.abs(lam1[ids] - np.asarray(lam0)[ids]).max() > 1e-4
    # Independent reference: meta.meta_update (its gradient is checked against finite
    # differences in test_alm.py) on the same parameters, batches and normalisation.
    fwd = lambda p, x: model.apply({"params": p}, x, train=True)
    tr = {"image": preprocess(b0["image"], info.mean, info.std), "label": b0["label"],
          "id": b0["id"], "mask": b0["mask"], "teacher_logits": b0["teacher_logits"]}
    vb = {"image": preprocess(b0["validation/image"], info.mean, info.std),
          "label": b0["validation/label"], "mask": b0["validation/mask"],
          "teacher_logits": t_val[row_of_id[b0["validation/id"]]]}
    ref, _ = meta.meta_update(fwd, params0, lam0, tr, vb, lr, cfg)
    np.testing.assert_allclose(lam1, np.asarray(ref), rtol=1e-5, atol=1e-6)
    assert float(m1["meta_objective"]) > 0
    b1 = batch(np.arange(32, 64), np.arange(32, 64))
    s2, m2 = step(s1, b1, jax.random.PRNGKey(1))                         # step 1: no meta step
    np.testing.assert_array_equal(np.asarray(s2.example_state["lambda"]), lam1)
    assert float(m2["meta_objective"]) == 0.0
    s3, _ = step(s2, b1, jax.random.PRNGKey(1))                          # step 2: meta again
    changed = np.nonzero(np.asarray(s3.example_state["lambda"]) != lam1)[0]
    assert len(changed) > 0 and set(changed) <= set(b1["id"])


def test_zero_lambda_lr_equals_kd_with_fixed_lambda(tmp_path, teacher_dir):
    common = {"teacher.checkpoint": teacher_dir, "loss.kd_weight": 0.7,
              "alm.lambda_lr": 0.0, "alm.lambda_init": 0.7, "alm.update_every": 3}
    kd = run_lib.run(_config(**common, **{"alm.variant": "kd"}), str(tmp_path / "kd"))
    alm = run_lib.run(_config(**common, **{"alm.variant": "alm"}), str(tmp_path / "alm"))
    a = ckpt_lib.load_variables(str(tmp_path / "kd"))["params"]
    b = ckpt_lib.load_variables(str(tmp_path / "alm"))["params"]
    for x, y in zip(jax.tree.leaves(_np(a)), jax.tree.leaves(_np(b))):
        np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-5)
    assert abs(kd["test_accuracy"] - alm["test_accuracy"]) < 1e-6
    np.testing.assert_array_equal(np.load(tmp_path / "alm" / "lambda.npy"), np.float32(0.7))


class _Killed(Exception):
    pass


def test_resume_from_checkpoint_restores_lambda(tmp_path, teacher_dir, monkeypatch):
    config = _config(**{"alm.update_every": 2, "alm.lambda_lr": 50.0,   # 24 steps, 1 epoch
                        "teacher.checkpoint": teacher_dir})
    run_lib.run(config, str(tmp_path / "full"))
    real_iterate, served = loop.iterate_batches, []

    def dying_iterate(split, *args, **kwargs):  # die after the step-12 checkpoint
        for b in real_iterate(split, *args, **kwargs):
            if len(split) > 1000:  # the training split (validation side batches come here too)
                if len(served) == 14:
                    raise _Killed()
                served.append(1)
            yield b

    monkeypatch.setattr(loop, "iterate_batches", dying_iterate)
    with pytest.raises(_Killed):
        run_lib.run(config, str(tmp_path / "cut"))
    monkeypatch.undo()
    ck = ckpt_lib.Checkpointer(str(tmp_path / "cut" / "checkpoints"))
    assert ck.latest_step() == 12
    restored = ck._manager.restore(12, args=ocp.args.Composite(
        state=ocp.args.StandardRestore()))["state"]                     # λ of step 12
    assert not np.allclose(np.asarray(restored["example_state"]["lambda"]), 0.5)
    run_lib.run(config, str(tmp_path / "cut"))
    np.testing.assert_allclose(np.load(tmp_path / "cut" / "lambda.npy"),
                               np.load(tmp_path / "full" / "lambda.npy"), rtol=1e-6, atol=1e-7)


def test_dgkd_drops_teachers_with_the_step_key_folded_with_2():
    method = teachers_lib.dgkd_method(4.0, 0.9, 3, 0.5)
    rng = jax.random.PRNGKey(3)
    ctx = StepContext(model=None, x=None, rng=rng, dropout_rng=rng, learning_rate=0.1)
    _, batch, _ = method.pre_step(None, {"label": jnp.zeros(4, jnp.int32)}, ctx)
    keep = teachers_lib.dgkd_keep_mask(jax.random.fold_in(rng, 2), 3, 0.5)
    np.testing.assert_allclose(np.asarray(batch["lambda"]),
                               np.broadcast_to(0.9 * np.asarray(keep, np.float32), (4, 3)))
    assert teachers_lib.dgkd_method(4.0, 0.9, 3, 0.0).pre_step is None


def test_bad_inputs_are_clear_errors(tmp_path, digits):
    with pytest.raises(config_lib.ConfigError, match="alm.variant"):
        config_lib.validate(_config(**{"alm.variant": "alm_kd"}))
    with pytest.raises(config_lib.ConfigError, match="alm.dgkd_drop_prob"):
        config_lib.validate(_config(**{"alm.dgkd_drop_prob": 1.0}))
    # The meta-update draws validation minibatches of data.batch_size: a smaller held-out
    # split is refused before anything runs (the non-meta variants do not draw them).
    small = {"data.num_validation": 12, "data.batch_size": 64}
    with pytest.raises(config_lib.ConfigError, match=r"^config field data\.num_validation=12 "
                       r"must be >= data\.batch_size=64: alm\.variant='alm_final' draws"):
        config_lib.validate(_config(**small, **{"alm.variant": "alm_final"}))
    config_lib.validate(_config(**small, **{"alm.variant": "kd"}))
    with pytest.raises(ValueError, match="teacher_epochs"):
        run_lib.run(_config(**{"alm.teacher_epochs": (5,)}), str(tmp_path))
    with pytest.raises(ValueError, match="label_noise"):
        flip_labels(digits[0]["train"], 1.0, 10, 0)


def test_flip_labels_flips_exactly_the_fraction_to_other_classes(digits):
    train = digits[0]["train"]
    noisy, flipped = flip_labels(train, 0.25, 10, 3)
    assert flipped.sum() == round(0.25 * len(train))
    assert np.all(noisy.labels[flipped] != train.labels[flipped])
    np.testing.assert_array_equal(noisy.labels[~flipped], train.labels[~flipped])
    np.testing.assert_array_equal(flip_mask(len(train), 0.25, 3), flipped)


_CONFIG_ARGS = {"fashion_mnist_reduced.py": ("cpu", "clean"),
                "fig5.py": ("cpu", "full", "full_resnet"),
                "table1.py": ("cpu", "full"), "table2.py": ("cpu", "full"),
                "table3.py": ("cpu", "full")}


@pytest.mark.parametrize("name", sorted(_CONFIG_ARGS))
def test_every_alm_config_file_validates(name):
    for arg in _CONFIG_ARGS[name]:
        config = load_config(os.path.join("experiments", "alm", name), arg)
        config_lib.validate(config)
        assert config.method == "alm"


@pytest.mark.slow
def test_table1_chain_variants_takd_dgkd_alm(tmp_path, digits):
    """TAKD / DGKD (stochastic) / ALM over teacher + assistant, as experiments/alm/table1.py."""
    common = {"alm.assistants": ("mlp",), "alm.assistant_kwargs": ({"hidden": (64,)},),
              "alm.dgkd_drop_prob": 0.5}
    res = {v: run_lib.run(_config(**common, **{"alm.variant": v}), str(tmp_path / v))
           for v in ("takd", "dgkd", "alm", "alm_final")}
    assert list(res["alm"]["lambda"]) == ["mlp@final", "mlp(ce)"]
    assert list(res["alm_final"]["lambda"]) == ["mlp@final"]
    assert [t["name"] for t in res["dgkd"]["teachers"]] == ["mlp@final", "mlp(takd)"]
    assert os.path.isdir(tmp_path / "dgkd" / "assistants" / "takd_0_mlp")  # DGKD's first TA
    assert not os.path.isdir(tmp_path / "dgkd" / "assistants" / "dgkd_0_mlp")
    # Queries include the assistants' training: TAKD's student + its KD assistant, DGKD's two
    # cached teachers + the same assistant.
    n_train = len(digits[0]["train"])
    assert res["takd"]["teacher_queries"] == 2 * n_train
    assert res["dgkd"]["teacher_queries"] == 3 * n_train
