"""A real 2-process run (jax.distributed + gloo on localhost) equals the 1-process run."""
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

WORKER = os.path.join(os.path.dirname(__file__), "multihost_worker.py")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def _two(tmp_path, workdir, out, *extra):
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    port = _free_port()
    procs = [subprocess.Popen([sys.executable, WORKER, str(i), "2", str(port), str(workdir),
                               str(out), *extra], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
             for i in range(2)]
    logs = [p.communicate(timeout=300)[0].decode() for p in procs]
    return [p.returncode for p in procs], logs


@pytest.mark.slow  # ~71 s on 2 cores (2026-12-03): `make test-slow`
def test_two_processes_killed_then_resumed_match_one(tmp_path):
    """Both processes die mid-epoch 2 (25 batches served of 38; checkpoints every 4 steps);
    the re-run agrees on the checkpoint to resume from and ends where one process does."""
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    ref = tmp_path / "ref.npz"
    subprocess.run([sys.executable, WORKER, "0", "1", "0", str(tmp_path / "w1"), str(ref)],
                   check=True, env=env, timeout=300)
    out = tmp_path / "multi.npz"
    codes, logs = _two(tmp_path, tmp_path / "w2", out, "25")
    assert codes == [3, 3], logs[0][-2000:]
    codes, logs = _two(tmp_path, tmp_path / "w2", out)
    assert codes == [0, 0], logs[0][-3000:]
    assert "Resumed from step" in logs[0], logs[0][-3000:]
    a, b = np.load(ref), np.load(out)
    np.testing.assert_array_equal(a["history_epochs"], b["history_epochs"])
    for key in a.files:
        if key not in ("devices", "history_epochs"):
            np.testing.assert_allclose(a[key], b[key], rtol=2e-5, atol=2e-6, err_msg=key)


def test_two_processes_match_one(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    ref = tmp_path / "ref.npz"
    subprocess.run([sys.executable, WORKER, "0", "1", "0", str(tmp_path / "w1"), str(ref)],
                   check=True, env=env, timeout=300)
    port = _free_port()
    out = tmp_path / "multi.npz"
    procs = [subprocess.Popen([sys.executable, WORKER, str(i), "2", str(port),
                               str(tmp_path / "w2"), str(out)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
             for i in range(2)]
    logs = [p.communicate(timeout=300)[0].decode() for p in procs]
    for p, log in zip(procs, logs):
        assert p.returncode == 0, log[-3000:]
    a, b = np.load(ref), np.load(out)
    assert int(a["devices"]) == 2 and int(b["devices"]) == 4
    for key in a.files:
        if key != "devices":
            np.testing.assert_allclose(a[key], b[key], rtol=2e-5, atol=2e-6, err_msg=key)
