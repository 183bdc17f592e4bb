"""The shared training core on tiny real data (sklearn digits) with the real code path."""
import json
import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from kdjax import experiment, losses
from kdjax import run as run_lib
from kdjax.methods.ce.method import ce_loss
from kdjax.methods.kd.method import make_kd_loss
from kdjax.train import checkpoint as ckpt_lib
from kdjax.train import loop
from kdjax.train import mesh as mesh_lib
from kdjax.train.method import Method
from kdjax.train.optim import make_schedule
from tests import fit_probes
from tests.configs import tiny


def _config(**overrides):
    return tiny.override(tiny.get_config(), **overrides)


@pytest.fixture(scope="module")
def digits():
    return experiment.load_splits(tiny.get_config().data)


def _params(state):
    return jax.tree.map(np.asarray, jax.device_get(state.params))


def test_schedules_hit_their_boundaries():
    cfg = ml_collections.ConfigDict(dict(learning_rate=1e-3, epochs=100, schedule="rad_piecewise",
                                         warmup_epochs=0))
    sched = make_schedule(cfg, steps_per_epoch=10)
    # RAD App. D.1: 1e-3 until 2/5, 1e-4 until 3/5, 1e-5 until 4/5, 1e-6 until 9/10, then 5e-7.
    for epoch, lr in [(0, 1e-3), (39, 1e-3), (40, 1e-4), (60, 1e-5), (80, 1e-6), (95, 5e-7)]:
        np.testing.assert_allclose(sched(epoch * 10), lr, rtol=1e-6)
    cfg = ml_collections.ConfigDict(dict(learning_rate=0.1, epochs=200, schedule="step",
                                         decay_epochs=(60, 120, 160), decay_factor=0.2,
                                         warmup_epochs=0))
    sched = make_schedule(cfg, steps_per_epoch=1)
    np.testing.assert_allclose([sched(59), sched(60), sched(120), sched(199)],
                               [0.1, 0.02, 0.004, 0.0008], rtol=1e-5)
    cfg = ml_collections.ConfigDict(dict(learning_rate=0.1, epochs=10, schedule="cosine",
                                         warmup_epochs=2))
    sched = make_schedule(cfg, steps_per_epoch=1)
    np.testing.assert_allclose([sched(0), sched(1), sched(2), sched(10)], [0, 0.05, 0.1, 0],
                               atol=1e-7)
    with pytest.raises(ValueError, match="schedule='bogus'"):
        make_schedule(ml_collections.ConfigDict(dict(learning_rate=0.1, epochs=1,
                                                     schedule="bogus")), 1)


def test_fit_learns_and_does_not_recompile(tmp_path, digits, monkeypatch):
    splits, info = digits
    config = _config()
    traces = []
    fit_probes.count_traces(monkeypatch, traces)
    model = experiment.build_model(config.model, info.num_classes)
    result = loop.fit(config, str(tmp_path), model=model, method=Method(loss=ce_loss),
                      train=splits["train"], info=info, evals={"test": splits["test"]})
    assert len(traces) == 1, f"the train step was traced {len(traces)} times, not once"
    assert result.history[-1]["test/accuracy"] > 0.85
    lines = open(tmp_path / "metrics.jsonl").read().splitlines()
    assert any("train/loss" in l for l in lines) and any("test/accuracy" in l for l in lines)


def test_one_device_and_eight_devices_agree(tmp_path, digits):
    """Data-parallel over 8 devices is the same computation as on 1 (to float32 round-off)."""
    splits, info = digits
    assert jax.device_count() == 8
    config = _config(**{"train.epochs": 2, "train.momentum": 0.0})
    model = experiment.build_model(config.model, info.num_classes)
    runs = []
    for n in (1, 8):
        mesh = mesh_lib.make_mesh((("data", -1),), devices=jax.devices()[:n])
        res = loop.fit(config, str(tmp_path / str(n)), model=model,
                       method=Method(loss=ce_loss), train=splits["train"], info=info, mesh=mesh)
        runs.append(_params(res.state))
    for a, b in zip(jax.tree.leaves(runs[0]), jax.tree.leaves(runs[1])):
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-6)



def test_resume_from_checkpoint_matches_uninterrupted(tmp_path, digits, monkeypatch):
    splits, info = digits
    config = _config()
    model = experiment.build_model(config.model, info.num_classes)
    full = loop.fit(config, str(tmp_path / "full"), model=model, method=Method(loss=ce_loss),
                    train=splits["train"], info=info)
    # Die mid-epoch 2 (step 27; the last checkpoint is step 24), then run the same call again.
    fit_probes.die_after(monkeypatch, loop, 27)
    with pytest.raises(fit_probes.Killed):
        loop.fit(config, str(tmp_path / "cut"), model=model, method=Method(loss=ce_loss),
                 train=splits["train"], info=info)
    monkeypatch.undo()
    assert ckpt_lib.Checkpointer(str(tmp_path / "cut" / "checkpoints")).latest_step() == 24
    resumed = loop.fit(config, str(tmp_path / "cut"), model=model,
                       method=Method(loss=ce_loss), train=splits["train"], info=info)
    for a, b in zip(jax.tree.leaves(_params(full.state)), jax.tree.leaves(_params(resumed.state))):
        np.testing.assert_array_equal(a, b)


def test_nan_loss_stops_with_the_step(tmp_path, digits):
    splits, info = digits
    config = _config()
    model = experiment.build_model(config.model, info.num_classes)

    def nan_after_7(logits, features, batch):
        return losses.cross_entropy(logits, batch["label"]) / (batch["id"] < 10**9) * jnp.where(
            jnp.any(batch["id"] >= 0), jnp.nan, 1.0)

    with pytest.raises(FloatingPointError, match=r"non-finite training loss .* at step 1 "):
        loop.fit(config, str(tmp_path), model=model, method=Method(loss=nan_after_7),
                 train=splits["train"], info=info)


def test_cached_teacher_equals_teacher_in_the_step(tmp_path, digits):
    splits, info = digits
    config = _config(**{"train.epochs": 1})
    teacher, _ = experiment.get_teacher(config, str(tmp_path / "t"), splits, info,
                                        mesh_lib.make_mesh())
    assert teacher.logits_cache.shape == (len(splits["train"]), info.num_classes)
    model = experiment.build_model(config.model, info.num_classes)
    kd = Method(loss=make_kd_loss(4.0, 0.9))
    cached = loop.fit(config, str(tmp_path / "a"), model=model, method=kd,
                      train=splits["train"], info=info, teachers=[teacher])
    live = loop.fit(config, str(tmp_path / "b"), model=model, method=kd,
                    train=splits["train"], info=info,
                    teachers=[loop.Teacher(teacher.model, teacher.variables)])
    steps = len(splits["train"]) // config.data.batch_size
    assert cached.teacher_queries == len(splits["train"])  # each example labelled once
    assert live.teacher_queries == steps * 64
    for a, b in zip(jax.tree.leaves(_params(cached.state)), jax.tree.leaves(_params(live.state))):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_kd_run_trains_teacher_and_student_and_reports(tmp_path):
    config = _config()
    results = run_lib.run(config, str(tmp_path))
    assert 0.8 < results["teacher"]["test_accuracy"] <= 1.0
    assert 0.8 < results["test_accuracy"] <= 1.0
    assert results["teacher_queries"] == 1437 - 200  # digits train minus validation
    assert [h["epoch"] for h in results["history"]] == [1, 2, 3]
    # Re-running the finished run reads it back and trains nothing.
    again = run_lib.run(config, str(tmp_path))
    assert again["test_accuracy"] == results["test_accuracy"]


def test_missing_teacher_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing checkpoint"):
        ckpt_lib.load_variables(str(tmp_path / "nowhere"))


def test_batch_size_must_divide_the_mesh(tmp_path, digits):
    splits, info = digits
    config = _config(**{"data.batch_size": 60})
    model = experiment.build_model(config.model, info.num_classes)
    with pytest.raises(ValueError, match="batch_size=60 cannot be split over 8 devices"):
        loop.fit(config, str(tmp_path), model=model, method=Method(loss=ce_loss),
                 train=splits["train"], info=info)


def test_bad_mesh_is_a_clear_error():
    with pytest.raises(ValueError, match="needs 6 devices"):
        mesh_lib.make_mesh((("data", 3), ("model", 2)))
    with pytest.raises(ValueError, match="'data' axis"):
        mesh_lib.make_mesh((("model", -1),))


@pytest.mark.slow  # ~45-60 s on 2 cores: `make test-slow`
def test_kd_run_on_tfds_cifar10_mock_data(tmp_path):
    """The real CIFAR path (TFDS data_source, crop+flip, teacher in the step) for a few steps."""
    import tensorflow_datasets as tfds
    config = _config(**{"data.name": "cifar10", "data.num_validation": 16,
                        "data.augment": True, "data.batch_size": 16, "data.eval_batch_size": 16,
                        "model.name": "resnet8", "teacher.name": "resnet8", "train.epochs": 1,
                        "teacher.epochs": 1})
    config.model.kwargs = {}
    config.teacher.kwargs = {}
    with tfds.testing.mock_data(num_examples=48):
        kd_run = run_lib.run(config, str(tmp_path))
    assert kd_run["teacher_queries"] == 32  # two steps of 16, teacher inside the step
    assert 0.0 <= kd_run["test_accuracy"] <= 1.0
    assert np.isfinite(kd_run["history"][-1]["test/loss"])


def test_side_batches_and_pre_step_reach_the_loss(tmp_path, digits):
    """A method's pre-step hook sees a side split's batch (e.g. ALM-KD's validation batch) and
    can update its per-example state; the update is checkpointed."""
    splits, info = digits
    config = _config(**{"train.epochs": 1})
    model = experiment.build_model(config.model, info.num_classes)
    num_ids = int(splits["train"].ids.max()) + 1

    def count_visits(state, batch, ctx):
        assert batch["validation/image"].shape == batch["image"].shape
        visits = state.example_state["visits"].at[batch["id"]].add(1.0)
        state = state.replace(example_state={"visits": visits})
        return state, batch, {"validation_batch_labels": jnp.sum(batch["validation/mask"])}

    method = Method(loss=ce_loss, example_state={"visits": np.zeros(num_ids, np.float32)},
                    side_splits={"validation": splits["validation"]}, pre_step=count_visits)
    result = loop.fit(config, str(tmp_path), model=model, method=method,
                      train=splits["train"], info=info)
    visits = np.asarray(jax.device_get(result.state.example_state["visits"]))
    steps = len(splits["train"]) // config.data.batch_size
    assert visits.sum() == steps * config.data.batch_size and visits.max() == 1.0
    lines = [l for l in open(tmp_path / "metrics.jsonl").read().splitlines()
             if "train/validation_batch_labels" in l]
    assert lines, "a method's own step metrics are logged"


def test_side_split_smaller_than_a_batch_is_refused_before_any_step(tmp_path, digits):
    """On 8 devices (tests/conftest.py) a held-out side split of 1.5x the device count (12,
    below the batch of 64 and not a multiple of 8) is refused in one line naming its field,
    its size, the batch and the devices, before any step (it crashed assembling the first side
    batch); a split of exactly one batch gives full side batches at every step."""
    splits, info = digits
    n = jax.device_count()
    config = _config(**{"train.epochs": 1})
    batch = config.data.batch_size
    model = experiment.build_model(config.model, info.num_classes)
    small = splits["validation"].subset(np.arange(n + n // 2))
    assert len(small) < batch and len(small) % n

    def count_side_rows(state, b, ctx):
        return state, b, {"side_rows": jnp.sum(b["validation/mask"])}

    def fit(split, name):
        method = Method(loss=ce_loss, side_splits={"validation": split},
                        pre_step=count_side_rows)
        return loop.fit(config, str(tmp_path / name), model=model, method=method,
                        train=splits["train"], info=info)

    with pytest.raises(ValueError, match=(
            rf"^config\.data\.num_validation={len(small)} is smaller than one side batch: "
            rf"each step draws config\.data\.batch_size={batch} .*over {n} devices.*"
            rf"hold out at least {batch}$")):
        fit(small, "small")
    assert not os.path.exists(tmp_path / "small" / "checkpoints")
    fit(splits["validation"].subset(np.arange(batch)), "exact")
    rows = [json.loads(l)["train/side_rows"]
            for l in open(tmp_path / "exact" / "metrics.jsonl").read().splitlines()
            if "train/side_rows" in l]
    assert rows and set(rows) == {batch}


def test_epoch_hook_rows_join_the_history_and_survive_resume(tmp_path, digits, monkeypatch):
    """A per-epoch hook (DiSK's guide phase) changes the method's state before each epoch; its
    row is in the history, and a run killed mid-epoch resumes to the same history and state."""
    splits, info = digits
    config = _config(**{"train.epochs": 3, "train.eval_every_epochs": 2})
    model = experiment.build_model(config.model, info.num_classes)

    def phase(state, ctx):
        logits, _ = ctx.predict(state)
        acc = float(np.mean(logits.argmax(-1) == ctx.train.labels))
        extra = {"phases": state.extra["phases"] + 1}
        return state.replace(extra=extra), {"train_accuracy_before": acc}

    method = Method(loss=ce_loss, extra={"phases": jnp.zeros((), jnp.int32)}, epoch_start=phase)
    fit = lambda d: loop.fit(config, str(tmp_path / d), model=model, method=method,
                             train=splits["train"], info=info, evals={"test": splits["test"]})
    full = fit("full")
    assert [h["epoch"] for h in full.history] == [1, 2, 3]
    assert "test/accuracy" not in full.history[0] and "test/accuracy" in full.history[1]
    assert int(full.state.extra["phases"]) == 3
    fit_probes.die_after(monkeypatch, loop, 30)   # mid-epoch 2; last checkpoint at step 28
    with pytest.raises(fit_probes.Killed):
        fit("cut")
    monkeypatch.undo()
    resumed = fit("cut")
    strip = lambda h: [{k: v for k, v in r.items()} for r in h]
    assert strip(resumed.history) == strip(full.history)
    assert int(resumed.state.extra["phases"]) == 3
    steps = [json_step(l) for l in open(tmp_path / "cut" / "metrics.jsonl")]
    assert steps == [json_step(l) for l in open(tmp_path / "full" / "metrics.jsonl")]
    for a, b in zip(jax.tree.leaves(_params(full.state)), jax.tree.leaves(_params(resumed.state))):
        np.testing.assert_array_equal(a, b)


def json_step(line):
    import json
    record = json.loads(line)
    return record["step"], sorted(record)


def test_unreadable_latest_checkpoint_falls_back_to_the_previous_one(tmp_path, digits, capsys):
    splits, info = digits
    config = _config(**{"train.epochs": 1})
    model = experiment.build_model(config.model, info.num_classes)
    full = loop.fit(config, str(tmp_path / "full"), model=model, method=Method(loss=ce_loss),
                    train=splits["train"], info=info)
    ckpts = tmp_path / "full" / "checkpoints"
    steps = sorted(int(p.name) for p in ckpts.iterdir() if p.name.isdigit())
    latest = ckpts / str(steps[-1])
    for f in latest.rglob("*"):
        if f.is_file():
            f.write_bytes(b"\xff\xfe garbage")
    again = loop.fit(config, str(tmp_path / "full"), model=model, method=Method(loss=ce_loss),
                     train=splits["train"], info=info)
    out = capsys.readouterr().out
    assert f"checkpoint {latest} is unreadable" in out
    assert (ckpts / f"unreadable-{steps[-1]}").is_dir()   # kept aside, not deleted
    for a, b in zip(jax.tree.leaves(_params(full.state)), jax.tree.leaves(_params(again.state))):
        np.testing.assert_array_equal(a, b)


@pytest.mark.slow  # ~35 s on 2 cores (2026-12-03): `make test-slow`
def test_kd_run_on_tfds_imagenet_mock_data(tmp_path, monkeypatch):
    """ImageNet (a lazy, on-disk split: JPEG decode + RandomResizedCrop 224 + flip in the grain
    loader, resize + centre crop for evaluation, the teacher inside the step) trains and
    evaluates under tfds.testing.mock_data."""
    import tensorflow_datasets as tfds
    monkeypatch.setenv("KDJAX_DATA_WORKERS", "0")   # evaluation decodes in this process
    config = _config(**{"data.name": "imagenet2012", "data.num_validation": 16,
                        "data.augment": True, "data.batch_size": 8, "data.eval_batch_size": 8,
                        "data.workers": 0, "model.name": "cnn_small",
                        "teacher.name": "cnn_small", "train.epochs": 1, "teacher.epochs": 1})
    config.model.kwargs = {"widths": (4, 8), "hidden": 16}
    config.teacher.kwargs = {"widths": (4, 8), "hidden": 16}
    with tfds.testing.mock_data(num_examples=32):
        results = run_lib.run(config, str(tmp_path))
    assert results["teacher_queries"] == 2 * 8   # two steps of 8, teacher inside the step
    (row,) = results["history"]
    assert row["step"] == 2 and np.isfinite(row["train/loss"]) and np.isfinite(row["test/loss"])
    assert 0.0 <= results["test_accuracy"] <= 1.0
