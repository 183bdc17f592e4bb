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
from tests.topology_fixtures import INFO, MODEL, eval_split, init_params, save_tree

WORKER = os.path.join(os.path.dirname(__file__), "topology_worker.py")
EVAL_SIZES = (500, 1000, 200, 7)   # the full configs' eval batches, DiSK's 200, a prime


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

    save_tree(params, tmp_path / "params.npz")
    # 16 devices; and 2 processes feeding their own slices (not batch 7 there: 78 steps of 16
    # devices over gloo take a minute on 2 cores)
    for processes, devices, sizes in ((1, 16, EVAL_SIZES), (2, 8, EVAL_SIZES[:3])):
        out = tmp_path / f"eval_{processes}x{devices}.json"
        run_workers(processes, devices, "eval", tmp_path / "params.npz", out,
                    ",".join(map(str, sizes)))
        got = json.loads(out.read_text())
        assert (got["devices"], got["processes"]) == (16, processes)
        for size in sizes:
            _assert_same(got["sums"][str(size)], ref, f"{processes}x{devices}, batch {size}")
        np.testing.assert_allclose(got["logits"], ref_logits, rtol=1e-5, atol=1e-5)


def test_eval_batch_is_rounded_to_the_mesh():
    mesh = mesh_lib.make_mesh()
    assert [mesh_lib.eval_batch_size(b, mesh) for b in (500, 1000, 200, 8, 7, 1)] == \
        [496, 1000, 200, 8, 8, 8]


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
