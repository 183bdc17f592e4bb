"""Global batches and checkpoints that work on any topology (processes x devices).

Evaluation pads and masks the last batch, so one set of parameters gets the same correct /
count sums on 1, 8 and 16 devices and on 2 processes, for any eval batch size; a training batch
the mesh cannot split is one line naming the field, the devices and the nearest valid sizes.
"""
import json
import os
import socket
import subprocess
import sys

import jax
import numpy as np
import pytest

from kdjax.data.augment import normalize
from kdjax.train import compiled, inference, loop
from kdjax.train import mesh as mesh_lib
from tests.topology_fixtures import (INFO, MODEL, eval_split, init_params, restore_and_check,
                                     save_state, save_tree)

WORKER = os.path.join(os.path.dirname(__file__), "topology_worker.py")
EVAL_SIZES = (500, 1000, 200, 97)   # the full configs' eval batches, DiSK's 200, a prime


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def run_workers(processes: int, devices: int, *args: str, timeout: float = 120) -> list[str]:
    """Run the worker as `processes` local processes of `devices` CPU devices each; the logs."""
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    port = str(_free_port())
    procs = [subprocess.Popen([sys.executable, WORKER, str(rank), str(processes), str(devices),
                               port, *map(str, args)], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT) for rank in range(processes)]
    logs = [p.communicate(timeout=timeout)[0].decode() for p in procs]
    for p, log in zip(procs, logs):
        assert p.returncode == 0, log[-3000:]
    return logs


def _reference(params, split):
    """Brute force: every example in one forward pass, no batching, no padding, no mesh."""
    logits, _ = MODEL.apply(params, normalize(split.images, INFO.mean, INFO.std), train=False)
    logits = np.asarray(logits, np.float64)
    ce = np.log(np.exp(logits - logits.max(-1, keepdims=True)).sum(-1)) + logits.max(-1) \
        - logits[np.arange(len(split)), split.labels]
    return {"correct": float((logits.argmax(-1) == split.labels).sum()),
            "count": float(len(split)), "loss_sum": float(ce.sum())}, logits


def _assert_same(sums, ref, what):
    assert sums["correct"] == ref["correct"] and sums["count"] == ref["count"], (what, sums, ref)
    np.testing.assert_allclose(sums["loss_sum"], ref["loss_sum"], rtol=1e-5, err_msg=what)


def test_eval_counts_are_the_same_on_1_8_and_16_devices(tmp_path):
    params, split = init_params(), eval_split()
    ref, ref_logits = _reference(params, split)
    assert 0 < ref["correct"] < ref["count"]
    step = compiled.eval_step(MODEL, INFO.mean, INFO.std)
    for mesh in (mesh_lib.make_mesh(devices=jax.devices()[:1]), mesh_lib.make_mesh()):
        for size in (*EVAL_SIZES, len(split), 5000):
            _assert_same(inference.evaluate(step, params, split, size, mesh), ref,
                         f"{mesh.size} devices, eval batch {size}")
        logits, _ = loop.predict_split(MODEL, params, split, INFO, 500, mesh)
        np.testing.assert_allclose(logits, ref_logits, rtol=1e-5, atol=1e-5)

    _check_in_workers(tmp_path, 1, 16, EVAL_SIZES)


@pytest.mark.slow  # the default suite runs 2 processes' eval slices in test_rehearse.py
def test_eval_counts_are_the_same_on_2_processes_of_8_devices(tmp_path):
    _check_in_workers(tmp_path, 2, 8, EVAL_SIZES)


def _check_in_workers(tmp_path, processes: int, devices: int, sizes) -> None:
    params, split = init_params(), eval_split()
    ref, ref_logits = _reference(params, split)
    save_tree(params, tmp_path / "params.npz")
    out = tmp_path / f"eval_{processes}x{devices}.json"
    run_workers(processes, devices, "eval", tmp_path / "params.npz", out,
                ",".join(map(str, sizes)))
    got = json.loads(out.read_text())
    assert (got["devices"], got["processes"]) == (processes * devices, processes)
    for size in sizes:
        _assert_same(got["sums"][str(size)], ref, f"{processes}x{devices}, batch {size}")
    np.testing.assert_allclose(got["logits"], ref_logits, rtol=1e-5, atol=1e-5)


def test_eval_batch_is_rounded_to_the_mesh():
    mesh = mesh_lib.make_mesh()
    assert [mesh_lib.eval_batch_size(b, mesh) for b in (500, 1000, 200, 8, 7, 1)] == \
        [496, 1000, 200, 8, 8, 8]
    assert mesh_lib.eval_batch_size(97, mesh) == 96


def test_unsplittable_training_batch_is_one_line_with_the_nearest_sizes():
    mesh = mesh_lib.make_mesh()
    mesh_lib.check_batch_size(64, mesh, "config.data.batch_size")
    with pytest.raises(ValueError) as err:
        mesh_lib.check_batch_size(60, mesh, "config.data.batch_size")
    assert str(err.value) == ("config.data.batch_size=60 cannot be split over 8 devices "
                              "(1 process); nearest valid: 56, 64")
    with pytest.raises(ValueError, match=r"=5 cannot be split over 8 devices \(1 process\); "
                                         r"nearest valid: 8$"):
        mesh_lib.check_batch_size(5, mesh, "config.data.batch_size")
    model_mesh = mesh_lib.make_mesh((("data", 4), ("model", 2)))
    with pytest.raises(ValueError, match="over 4 data shards"):
        mesh_lib.check_batch_size(6, model_mesh, "config.data.batch_size")


# Checkpoints written on one topology (processes x devices) restore on another, sharded to the
# current mesh: as `fit` resumes a student and as `load_variables` loads a teacher.
TOPOLOGIES = ((1, 1), (1, 8), (2, 4), (2, 2))


def _write(processes: int, devices: int, workdir) -> None:
    if processes == 1 and devices in (1, 8):   # in this process (8 devices)
        save_state(str(workdir), mesh_lib.make_mesh(devices=jax.devices()[:devices]))
    else:
        run_workers(processes, devices, "save", workdir)


def _read(processes: int, devices: int, workdir) -> None:
    if processes == 1 and devices in (1, 8):
        restore_and_check(str(workdir), mesh_lib.make_mesh(devices=jax.devices()[:devices]))
    else:
        run_workers(processes, devices, "restore", workdir)


def test_checkpoint_from_one_process_restores_on_two_and_from_8_devices_on_1(tmp_path):
    """The two reported failures: a checkpoint of 1 process read by 2 (rank 1 had no target
    shardings), and one of several devices read by 1 ('Topology mismatch detected')."""
    _write(1, 8, tmp_path)
    _read(1, 1, tmp_path)
    _read(2, 2, tmp_path)


@pytest.mark.slow  # 16 writer/reader pairs, 10 of them multi-process
@pytest.mark.parametrize("writer", TOPOLOGIES, ids=lambda t: f"{t[0]}x{t[1]}")
def test_checkpoint_matrix(tmp_path, writer):
    _write(*writer, tmp_path)
    for reader in TOPOLOGIES:
        _read(*reader, tmp_path)


# Checkpoint integrity: every array's checksum is saved with it and verified on restore.

def flip_byte_of(directory, raw: bytes) -> list[str]:
    """Flip one byte inside every stored copy of an array's bytes (`raw`: bytes that the data
    files hold verbatim, e.g. an incompressible array's); the files changed."""
    needle, changed = raw[len(raw) // 2:len(raw) // 2 + 64], []
    for root, _, files in os.walk(directory):
        for name in files:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                data = bytearray(f.read())
            at = data.find(needle)
            if at >= 0:
                data[at + 10] ^= 0xFF
                with open(path, "wb") as f:
                    f.write(data)
                changed.append(path)
    return changed


def test_a_damaged_checkpoint_is_set_aside_and_the_previous_one_used(tmp_path, capsys):
    from kdjax.train import checkpoint as ckpt_lib, state as state_lib
    from tests.topology_fixtures import train_state
    mesh = mesh_lib.make_mesh()
    items = state_lib.checkpoint_items(train_state(mesh))
    ckpt = ckpt_lib.Checkpointer(str(tmp_path / "checkpoints"))
    for step in (7, 9):
        ckpt.save(step, items, {"step": step}, force=True)
    ckpt.wait()
    assert flip_byte_of(tmp_path / "checkpoints" / "9",
                        np.asarray(items["extra"]["noise"]).tobytes())
    target = state_lib.checkpoint_items(train_state(mesh, zeros=True))
    with pytest.raises(ckpt_lib.CheckpointError, match=r"checkpoints/9 is damaged: 1 array\(s\) "
                       r"differ .* \(first: \['extra'\]\['noise'\]\)"):
        ckpt.restore(target, 9)
    step, got, meta = ckpt.restore_latest_readable(target, ckpt.all_steps())
    assert (step, meta) == (7, {"step": 7})
    np.testing.assert_array_equal(got["extra"]["noise"], items["extra"]["noise"])
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "checkpoints/9 is unreadable (checkpoint" in out, out
    assert sorted(os.listdir(tmp_path / "checkpoints")) == ["7", "unreadable-9"]
    ckpt.close()


def test_a_damaged_teacher_is_one_error_naming_it(tmp_path):
    from kdjax.train import checkpoint as ckpt_lib
    noise = np.random.default_rng(0).integers(0, 2**32, 4096, dtype=np.uint32)
    ckpt = ckpt_lib.Checkpointer(str(tmp_path / "teacher" / "checkpoints"))
    ckpt.save(3, {"params": {"w": noise}, "batch_stats": {}}, force=True)
    ckpt.wait()
    ckpt.close()
    np.testing.assert_array_equal(ckpt_lib.load_variables(str(tmp_path / "teacher"))
                                  ["params"]["w"], noise)
    assert flip_byte_of(tmp_path / "teacher", noise.tobytes())
    with pytest.raises(ckpt_lib.CheckpointError) as err:
        ckpt_lib.load_variables(str(tmp_path / "teacher"))
    assert str(err.value) == (
        f"checkpoint {tmp_path}/teacher/checkpoints/3 is damaged: 1 array(s) differ from the "
        "checksums saved with them (first: ['params']['w']); train it again or point to "
        "another checkpoint")


def test_a_run_whose_latest_checkpoint_is_damaged_resumes_to_the_same_result(tmp_path):
    """Bytes flipped inside the final checkpoint's array data: the re-run sets it aside,
    resumes from the previous one and ends exactly where the undamaged run ended."""
    from kdjax import experiment
    from kdjax.methods.ce.method import ce_loss
    from kdjax.train.method import Method
    from tests.configs import tiny
    config = tiny.get_config("ce")
    config.train.epochs = 2
    splits, info = experiment.load_splits(config.data)
    model = experiment.build_model(config.model, info.num_classes)

    def fit():
        return loop.fit(config, str(tmp_path), model=model, method=Method(loss=ce_loss),
                        train=splits["train"], info=info, evals={"test": splits["test"]})

    clean = fit()
    params = jax.tree.map(np.asarray, jax.device_get(clean.state.params))
    last = str(clean.history[-1]["step"])
    damaged = [p for leaf in jax.tree.leaves(params)
               for p in flip_byte_of(tmp_path / "checkpoints" / last, leaf.tobytes())]
    assert damaged, "no parameter is stored verbatim"
    again = fit()
    assert f"unreadable-{last}" in os.listdir(tmp_path / "checkpoints")
    assert again.history == clean.history
    jax.tree.map(np.testing.assert_array_equal, jax.device_get(again.state.params), params)


def test_a_non_finite_evaluation_is_an_error_not_a_result(tmp_path):
    """One NaN pixel in the test split makes its loss NaN: the epoch ends in one line naming
    the metric, and no history row (nor results.json) holds it."""
    from kdjax import experiment
    from kdjax.data import make_split
    from kdjax.methods.ce.method import ce_loss
    from kdjax.train.method import Method
    from tests.configs import tiny
    config = tiny.get_config("ce")
    config.train.epochs = 1
    splits, info = experiment.load_splits(config.data)
    test = splits["test"]
    images = test.images.astype(np.float32)
    images[3, 0, 0] = np.nan
    with pytest.raises(FloatingPointError, match=r"^non-finite bad/loss \(nan\) at epoch 1 "
                                                 r"\(step 19\); no result is written"):
        loop.fit(config, str(tmp_path), model=experiment.build_model(config.model,
                                                                     info.num_classes),
                 method=Method(loss=ce_loss), train=splits["train"], info=info,
                 evals={"test": test, "bad": make_split(images, test.labels, test.ids)})
    assert not (tmp_path / "results.json").exists()
