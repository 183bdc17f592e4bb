"""A fifth method, defined in this file, runs through `launch.main` like the built-in ones.

Confidence-weighted KD: each example mixes CE and KD by the teacher's confidence c_i =
max_k softmax(t_i)_k, loss_i = (1 − c_i)·CE + c_i·τ²·KL(t^τ ‖ s^τ); the run reports the mean
weight. `config.method = "tests.test_fifth_method"` selects this module.
"""
import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from kdjax import losses
from kdjax.methods.api import Plan
from kdjax.train.method import Method


def confidence_kd(temperature):
    def loss(logits, features, batch):
        t = batch["teacher_logits"]
        c = jnp.max(jax.nn.softmax(t), -1)
        kl = losses.kl_divergence(logits, losses.teacher_probs(t, temperature), temperature)
        return (1 - c) * losses.cross_entropy(logits, batch["label"]) + c * temperature**2 * kl
    return loss


def make_method(config, run):
    teacher, _ = run.teacher()
    weight = float(np.mean(np.max(jax.nn.softmax(teacher.logits_cache), -1)))
    return Plan(Method(loss=confidence_kd(config.loss.temperature)), teachers=[teacher],
                summarize=lambda result: {"mean_kd_weight": weight})


@pytest.mark.slow  # ~27 s on 2 cores (2026-12-03): `make test-slow`
def test_fifth_method_runs_through_launch_main(tmp_path):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run(
        [sys.executable, "-m", "launch.main", "--compilation_cache=",
         f"--config={root}/tests/configs/tiny.py:tests.test_fifth_method",
         f"--workdir={tmp_path}"], cwd=root, capture_output=True, text=True, timeout=300,
        env=dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=1"))
    assert out.returncode == 0, out.stderr[-2000:]
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["method"] == "tests.test_fifth_method"
    assert 0.8 < results["test_accuracy"] <= 1.0
    assert 0.0 < results["mean_kd_weight"] < 1.0
    assert [h["epoch"] for h in results["history"]] == [1, 2, 3]
