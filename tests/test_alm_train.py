"""ALM-KD through the shared core (kdjax.methods.alm_train): end-to-end runner, λ updated only on
meta steps and only on the batch's rows (checked against alm.meta_update), η_λ = 0 equals Hinton
KD with the default step, resume restores λ, early-stopped teacher snapshots."""
import os

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest

from kdjax import experiment
from kdjax.methods import alm, alm_train
from kdjax.train import checkpoint as ckpt_lib
from kdjax.train import loop
from kdjax.train import mesh as mesh_lib
from kdjax.train.state import create_train_state
from tests.configs import tiny


def _config(**overrides):
  c = alm_train.add_alm_fields(tiny.get_config())
  c.train.epochs = 1
  c.teacher.epochs = 1
  return tiny.override(c, **overrides)


@pytest.fixture(scope="module")
def digits():
  return experiment.load_splits(tiny.get_config().data)


@pytest.fixture(scope="module")
def random_teacher(digits):
  """An untrained MLP teacher (its logits are as good as any for the equalities tested)."""
  _, info = digits
  model = experiment.build_model(tiny.get_config().teacher, info.num_classes)
  variables = model.init(jax.random.PRNGKey(7), jnp.zeros((1, *info.image_shape)))
  scaled = jax.tree.map(lambda a: 3.0 * a, dict(variables))  # sharper teacher probabilities
  return alm_train.TeacherSet([model], [scaled], ["random"], [0.0])


def _np(tree):
  return jax.tree.map(np.asarray, jax.device_get(tree))


def test_runner_trains_end_to_end_with_early_stopped_teachers(tmp_path):
  config = _config(**{"alm.variants": ("ce", "ce_early_stop", "kd_0.5", "alm"),
                      "alm.teacher_epochs": (1, 2), "teacher.epochs": 2,
                      "alm.label_noise": 0.3, "alm.update_every": 2})
  res = alm_train.run(config, str(tmp_path))
  rows = {r["variant"]: r for r in res["rows"]}
  assert set(rows) == {"ce", "ce_early_stop", "kd_0.5", "alm"}
  for r in rows.values():
    assert 0.0 < r["test_acc_mean"] <= 100.0 and r["seeds"] == [0]
  assert list(res["teachers"]) == ["mlp@1", "mlp@final"]
  lam = rows["alm"]["lambda"]
  assert set(lam) == {"mlp@1", "mlp@final"} and "mean_flipped" in lam["mlp@final"]
  stored = np.load(tmp_path / "alm" / "seed0" / "lambda.npy")
  assert stored.shape[1] == 2 and not np.allclose(stored, config.alm.lambda_init)
  assert loop.read_results(str(tmp_path))["rows"][0]["variant"] == "ce"
  # Teacher queries (cached soft labels): KD labels the training split once; ALM-KD's two
  # teachers label the training and validation splits once each; CE none.
  splits, _ = experiment.load_splits(config.data)
  n_train, n_val = len(splits["train"].labels), len(splits["validation"].labels)
  assert rows["ce"]["teacher_queries_students"] == 0
  assert rows["kd_0.5"]["teacher_queries_students"] == n_train
  assert rows["alm"]["teacher_queries_students"] == 2 * (n_train + n_val)
  assert res["teacher_queries"] == 3 * n_train + 2 * n_val
  # A finished run is read back, not retrained.
  again = alm_train.run(config, str(tmp_path))
  assert again["rows"][3]["test_accs"] == rows["alm"]["test_accs"]


def test_lambda_changes_only_on_meta_steps_and_only_on_batch_rows(digits, random_teacher):
  splits, info = digits
  config = _config(**{"alm.update_every": 2, "alm.lambda_lr": 50.0})
  cfg = alm_train.alm_config(config)
  model = experiment.build_model(config.model, info.num_classes)
  train, val = splits["train"], splits["validation"]
  num_ids = int(max(train.ids.max(), val.ids.max())) + 1
  lam0 = jnp.asarray(np.random.default_rng(0).uniform(0.2, 0.8, num_ids), jnp.float32)
  t_train = random_teacher.logits(train, info, 200, mesh_lib.make_mesh())
  t_val = random_teacher.logits(val, info, 200, mesh_lib.make_mesh())
  row_of_id = np.zeros(int(val.ids.max()) + 1, np.int32)
  row_of_id[val.ids] = np.arange(len(val.ids))
  lr = 0.1
  builder = alm_train.make_alm_train_step(cfg, lambda t: jnp.float32(lr))
  step = jax.jit(builder(model, alm.student_loss_fn(cfg.temperature), mean=info.mean,
                         std=info.std))
  tx = __import__("optax").sgd(lr)
  state = create_train_state(model, tx, jax.random.PRNGKey(0), info.image_shape,
                             example_state={"lambda": lam0},
                             teacher_variables={"val_logits": jnp.asarray(t_val),
                                                "val_row_of_id": jnp.asarray(row_of_id)})

  def batch(rows, vrows):
    return {"image": train.images[rows], "label": train.labels[rows], "id": train.ids[rows],
            "mask": np.ones(len(rows), np.float32), "teacher_logits": t_train[rows],
            "validation/image": val.images[vrows], "validation/label": val.labels[vrows],
            "validation/id": val.ids[vrows], "validation/mask": np.ones(len(vrows), np.float32)}

  b0 = batch(np.arange(0, 32), np.arange(0, 32))
  params0 = _np(state.params)
  s1, m1 = step(state, b0, jax.random.PRNGKey(1))                      # step 0: meta step
  lam1 = np.asarray(s1.example_state["lambda"])
  ids = b0["id"]
  others = np.setdiff1d(np.arange(num_ids), ids)
  np.testing.assert_array_equal(lam1[others], np.asarray(lam0)[others])
  assert np.abs(lam1[ids] - np.asarray(lam0)[ids]).max() > 1e-4
  # Independent reference: alm.meta_update (its gradient is checked against finite
  # differences in test_alm.py) on the same parameters, batches and normalisation.
  from kdjax.train.step import preprocess
  fwd = lambda p, x: model.apply({"params": p}, x, train=True)
  tr = {"image": preprocess(b0["image"], info.mean, info.std), "label": b0["label"],
        "id": b0["id"], "mask": b0["mask"], "teacher_logits": b0["teacher_logits"]}
  vb = {"image": preprocess(b0["validation/image"], info.mean, info.std),
        "label": b0["validation/label"], "mask": b0["validation/mask"],
        "teacher_logits": t_val[row_of_id[b0["validation/id"]]]}
  ref, _ = alm.meta_update(fwd, params0, lam0, tr, vb, lr, cfg)
  np.testing.assert_allclose(lam1, np.asarray(ref), rtol=1e-5, atol=1e-6)
  assert float(m1["meta_objective"]) > 0
  b1 = batch(np.arange(32, 64), np.arange(32, 64))
  s2, m2 = step(s1, b1, jax.random.PRNGKey(1))                         # step 1: no meta step
  np.testing.assert_array_equal(np.asarray(s2.example_state["lambda"]), lam1)
  assert float(m2["meta_objective"]) == 0.0
  s3, _ = step(s2, b1, jax.random.PRNGKey(1))                          # step 2: meta again
  lam3 = np.asarray(s3.example_state["lambda"])
  changed = np.nonzero(lam3 != lam1)[0]
  assert len(changed) > 0 and set(changed) <= set(b1["id"])


def test_zero_lambda_lr_equals_kd_with_fixed_lambda(tmp_path, digits, random_teacher):
  splits, info = digits
  mesh = mesh_lib.make_mesh()
  config = _config(**{"alm.lambda_lr": 0.0, "alm.lambda_init": 0.7, "alm.update_every": 3})
  kd_run = alm_train.train_student(config, str(tmp_path / "kd"), splits, info, mesh,
                                   mode="kd", teachers=random_teacher, lam=0.7)
  alm_run = alm_train.train_student(config, str(tmp_path / "alm"), splits, info, mesh,
                                    mode="alm", teachers=random_teacher)
  a = ckpt_lib.load_variables(str(tmp_path / "kd"))["params"]
  b = ckpt_lib.load_variables(str(tmp_path / "alm"))["params"]
  for x, y in zip(jax.tree.leaves(_np(a)), jax.tree.leaves(_np(b))):
    np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-5)
  assert abs(kd_run["test_accuracy"] - alm_run["test_accuracy"]) < 1e-6
  np.testing.assert_array_equal(np.load(tmp_path / "alm" / "lambda.npy"), np.float32(0.7))


class _Killed(Exception):
  pass


def test_resume_from_checkpoint_restores_lambda(tmp_path, digits, random_teacher, monkeypatch):
  splits, info = digits
  mesh = mesh_lib.make_mesh()
  config = _config(**{"alm.update_every": 2, "alm.lambda_lr": 50.0})  # 24 steps, 1 epoch
  alm_train.train_student(config, str(tmp_path / "full"), splits, info, mesh, mode="alm",
                          teachers=random_teacher)
  real_iterate, served = loop.iterate_batches, []

  def dying_iterate(split, *args, **kwargs):  # die after the step-12 checkpoint
    for b in real_iterate(split, *args, **kwargs):
      if split is splits["train"]:  # (the validation side batches come from here too)
        if len(served) == 14:
          raise _Killed()
        served.append(1)
      yield b

  monkeypatch.setattr(loop, "iterate_batches", dying_iterate)
  with pytest.raises(_Killed):
    alm_train.train_student(config, str(tmp_path / "cut"), splits, info, mesh, mode="alm",
                            teachers=random_teacher)
  monkeypatch.undo()
  ck = ckpt_lib.Checkpointer(str(tmp_path / "cut" / "checkpoints"))
  assert ck.latest_step() == 12
  restored = ck._manager.restore(12, args=ocp.args.StandardRestore())  # λ of step 12
  lam12 = np.asarray(restored["example_state"]["lambda"])
  assert not np.allclose(lam12, config.alm.lambda_init)
  alm_train.train_student(config, str(tmp_path / "cut"), splits, info, mesh, mode="alm",
                          teachers=random_teacher)
  np.testing.assert_allclose(np.load(tmp_path / "cut" / "lambda.npy"),
                             np.load(tmp_path / "full" / "lambda.npy"), rtol=1e-6, atol=1e-7)


def test_bad_inputs_are_clear_errors(tmp_path):
  with pytest.raises(ValueError, match="unknown ALM variant"):
    alm_train.parse_variant("alm_kd", 0.9)
  assert alm_train.parse_variant("kd_0.1", 0.9) == ("kd", 0.1)
  with pytest.raises(ValueError, match="FGVC-Aircraft is not in TFDS"):
    alm_train.run_one(_config(**{"data.name": "fgvc_aircraft"}), str(tmp_path))
  with pytest.raises(ValueError, match="teacher_epochs"):
    alm_train.run_one(_config(**{"alm.teacher_epochs": (5,)}), str(tmp_path))
  with pytest.raises(ValueError, match="label_noise"):
    alm_train.flip_labels(experiment.load_splits(tiny.get_config().data)[0]["train"], 1.0,
                          10, 0)


def test_flip_labels_flips_exactly_the_fraction_to_other_classes(digits):
  train = digits[0]["train"]
  noisy, flipped = alm_train.flip_labels(train, 0.25, 10, 3)
  assert flipped.sum() == round(0.25 * len(train))
  assert np.all(noisy.labels[flipped] != train.labels[flipped])
  np.testing.assert_array_equal(noisy.labels[~flipped], train.labels[~flipped])


@pytest.mark.slow
def test_table1_chain_variants_takd_dgkd_alm(tmp_path):
  """TAKD / DGKD (stochastic) / ALM over teacher + assistant, as experiments/alm/table1.py."""
  config = _config(**{"alm.variants": ("takd", "dgkd", "alm", "alm_final"),
                      "alm.assistants": ("mlp",), "alm.assistant_kwargs": ({"hidden": (64,)},),
                      "alm.dgkd_drop_prob": 0.5, "alm.paper_table": "table1"})
  res = alm_train.run(config, str(tmp_path))
  rows = {r["variant"]: r for r in res["rows"]}
  assert set(rows) == {"takd", "dgkd", "alm", "alm_final"}
  assert list(rows["alm"]["lambda"]) == ["mlp@final", "mlp(ce)"]
  assert list(rows["alm_final"]["lambda"]) == ["mlp@final"]
  assert set(res["assistants"]) == {"ce", "takd", "dgkd"}
  assert os.path.isdir(tmp_path / "assistants" / "takd_0_mlp")  # DGKD's first TA = TAKD's
  assert not os.path.isdir(tmp_path / "assistants" / "dgkd_0_mlp")
