"""The absl entry point as a user runs it: bad config keys, and a SIGKILLed run that resumes."""
import ast
import os
import signal
import subprocess
import sys
import textwrap
import time

import jax
import numpy as np
import pytest

from kdjax.train import checkpoint as ckpt_lib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = os.path.join(ROOT, "tests", "configs", "tiny.py")


def _cmd(workdir, *extra):
    return [sys.executable, "-m", "launch.main", f"--config={CONFIG}:ce", f"--workdir={workdir}",
            "--config.train.checkpoint_every_steps=1", *extra]


def _env():
    return dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=1")


def test_mistyped_config_key_fails_loudly(tmp_path):
    out = subprocess.run(_cmd(tmp_path, "--config.train.epoch=3"), cwd=ROOT, env=_env(),
                         capture_output=True, text=True, timeout=120)
    assert out.returncode != 0
    assert "did you mean 'epochs'" in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "checkpoints").exists()


def test_unknown_method_is_a_clear_error(tmp_path):
    out = subprocess.run(_cmd(tmp_path, "--config.method=kdd"), cwd=ROOT, env=_env(),
                         capture_output=True, text=True, timeout=120)
    assert out.returncode != 0
    assert "config.method='kdd' is unknown" in out.stderr


def test_a_new_constructor_argument_reaches_the_model(tmp_path):
    """`--config.model.kwargs.<key>` the config file did not set is passed to the
    constructor (any Python literal); one the model does not take is one line naming it."""
    out = subprocess.run(_cmd(tmp_path, "--config.model.kwargs.width=3"), cwd=ROOT,
                         env=_env(), capture_output=True, text=True, timeout=300)
    assert out.returncode == 1
    assert out.stderr.strip().splitlines()[-1] == (
        "error: model 'mlp' does not take the constructor arguments ['hidden', 'width'] "
        "(model.kwargs / teacher.kwargs): MLP.__init__() got an unexpected keyword argument "
        "'width'")


def test_new_constructor_arguments_parse_as_literals():
    """The entry point's --config parser: a new `model.kwargs` key takes a Python literal of
    any type, an existing one keeps its own, beside a composed method's field. In a subprocess:
    importing launch.main defines its absl flags, which launch.rehearse (imported by other tests
    in the same worker) defines too."""
    code = textwrap.dedent(f"""
        import sys
        from absl import flags
        from ml_collections import config_flags
        from launch import main
        argv = ["main", "--config={CONFIG}:lrds", "--config.model.kwargs.widths=(4, 8)",
                "--config.model.kwargs.name=wide", "--config.model.kwargs.hidden=(16,)",
                "--config.lrds.base=disk", "--config.disk.top_k=3"]
        sys.argv = argv
        values = flags.FlagValues()
        config_flags.DEFINE_config_file("config", None, "config", flag_values=values)
        values["config"].parser = main._MountFlagged(values["config"].parser)
        values(argv)
        c = values.config
        print(repr((dict(c.model.kwargs), c.lrds.base, c.disk.top_k)))
        """)
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=_env(),
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    kwargs, base, top_k = ast.literal_eval(out.stdout.strip().splitlines()[-1])
    assert kwargs == {"hidden": (16,), "widths": (4, 8), "name": "wide"}
    assert (base, top_k) == ("disk", 3)


@pytest.mark.slow  # ~54 s on 2 cores (2026-12-03): `make test-slow`
def test_sigkill_mid_training_then_resume_matches_uninterrupted(tmp_path):
    full, cut = tmp_path / "full", tmp_path / "cut"
    subprocess.run(_cmd(full), cwd=ROOT, env=_env(), check=True, capture_output=True,
                   timeout=300)
    proc = subprocess.Popen(_cmd(cut), cwd=ROOT, env=_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    ckpts = cut / "checkpoints"
    deadline = time.time() + 240
    while time.time() < deadline:
        steps = [int(d) for d in os.listdir(ckpts) if d.isdigit()] if ckpts.exists() else []
        if steps and max(steps) >= 20:
            break
        assert proc.poll() is None, "the run finished before it could be killed"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = ckpt_lib.Checkpointer(str(ckpts)).latest_step()
    assert 20 <= killed_at < 57, killed_at  # 3 epochs x 19 steps
    subprocess.run(_cmd(cut), cwd=ROOT, env=_env(), check=True, capture_output=True,
                   timeout=300)
    a = ckpt_lib.load_variables(str(full))
    b = ckpt_lib.load_variables(str(cut))
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_cpu_devices_flag_splits_the_host(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    subprocess.run(_cmd(tmp_path, "--cpu_devices=4", "--config.train.epochs=1"), cwd=ROOT,
                   env=env, check=True, capture_output=True, timeout=300)
    import json
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["provenance"]["num_devices"] == 4
    assert results["provenance"]["platform"] == "cpu"


@pytest.mark.slow  # ~63 s on 2 cores (2026-12-03): `make test-slow`
def test_compilation_cache_reuses_executables_with_the_same_result(tmp_path):
    cache = tmp_path / "xla_cache"
    runs = {}
    for name, flag in [("none", "--compilation_cache="), ("cold", f"--compilation_cache={cache}"),
                       ("warm", f"--compilation_cache={cache}")]:
        subprocess.run(_cmd(tmp_path / name, flag, "--config.train.epochs=1"), cwd=ROOT,
                       env=_env(), check=True, capture_output=True, timeout=300)
        runs[name] = ckpt_lib.load_variables(str(tmp_path / name))
        if name == "cold":
            assert any(cache.iterdir()), "nothing was written to the compilation cache"
    for other in ("cold", "warm"):
        for x, y in zip(jax.tree.leaves(runs["none"]), jax.tree.leaves(runs[other])):
            np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
