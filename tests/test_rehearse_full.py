"""Every `--scale=full` config through `launch.main --multihost` on simulated pods (slow).

Each config of `tests/full_scale_fixtures.full_cases()` runs at its own batch sizes (global
train and eval batches as the paper sets them, not shrunk) on 16 CPU devices (2 processes x 8,
as a v4-32 or two 8-GPU nodes) and on 8 (1 x 8, one GPU node): every stage 1 epoch over 2
batches of its batch size, evaluation on an uneven number of test examples (the eval batch's
last slice is padded), held-out splits of two train batches, on fabricated data in the
dataset's real format (TFDS mocks in every process via tests/rehearsal_site/sitecustomize.py;
idx files; prepared array_record shards). Models are the CPU stand-ins of
`full_scale_fixtures.shrink_model` (the same families). Measured: docs/scaling.md.

    python -m pytest -q -m slow tests/test_rehearse_full.py -k "cifar100_kd and 2x8"
"""
import json
import math
import os
import pickle

import pytest

from launch import rehearse
from tests import full_scale_fixtures as F

CASES = F.full_cases()
TOPOLOGIES = ((2, 8), (1, 8))
EVAL_EXAMPLES = 21     # not a multiple of any device count: the last eval batch is padded
SITE = os.path.join(os.path.dirname(__file__), "rehearsal_site")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def rehearsal_config(case, batch: int | None = None):
    """`full_scale_fixtures.shrink` with the config's own batch sizes kept (or train `batch`):
    2 batches of `data.batch_size` per stage (active loops: |A| = 2 batches, b = 1 batch)."""
    config = case.load()
    batch = batch or config.data.batch_size
    eval_batch, held_out = config.data.eval_batch_size, config.data.num_validation
    saved = F.BATCH
    F.BATCH = batch
    try:
        F.shrink(config)
    finally:
        F.BATCH = saved
    config.data.batch_size, config.data.eval_batch_size = batch, eval_batch
    if held_out:   # side batches (ALM's meta-update) draw full train batches from it
        config.data.num_validation = min(held_out, 2 * batch)
        config.data.max_train_examples += config.data.num_validation - F.VALIDATION
    config.data.max_test_examples = EVAL_EXAMPLES
    return config


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    return str(tmp_path_factory.mktemp("fabricated"))


def _data(config, root, monkeypatch) -> dict[str, str]:
    """Fabricate the config's dataset (enough examples for 2 batches plus the held-out ones)
    and return the environment the run's processes need for it."""
    need = config.data.max_train_examples + EVAL_EXAMPLES
    fmt = F.FORMATS[config.data.name]
    env = {"PYTHONPATH": os.pathsep.join([SITE, ROOT, os.environ.get("PYTHONPATH", "")])}
    if fmt.kind == "tfds":
        env["KDJAX_TEST_MOCK_TFDS"] = str(need)
        return env
    if fmt.kind == "prepared":   # enough JPEGs per class for 2 batches
        per_class = max(F.PREPARED_PER_CLASS, math.ceil(need / F.PREPARED_CLASSES))
        monkeypatch.setattr(F, "PREPARED_PER_CLASS", per_class)
        root = os.path.join(root, f"per_class_{per_class}")
    with F.fabricated(config.data.name, root) as data_dir:
        config.data.data_dir = data_dir
    return env


@pytest.mark.slow
@pytest.mark.parametrize("topology", TOPOLOGIES, ids=lambda t: f"{t[0]}x{t[1]}")
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_full_config_on_a_simulated_pod(case, topology, tmp_path, data_root, monkeypatch):
    """The config's own batches on `topology`. A training batch the devices cannot split is
    refused in one line naming the nearest valid sizes; the run then goes on with the nearest
    valid size above the paper's (what a user of that slice would set)."""
    processes, devices = topology
    n = processes * devices
    config = rehearsal_config(case)
    monkeypatch.chdir(ROOT)
    batch = config.data.batch_size
    if batch % n:
        with pytest.raises(RuntimeError, match=rf"error: (process \d+ failed: )?"
                           rf"config\.data\.batch_size={batch} "
                           rf"cannot be split over {n} devices .*nearest valid: "
                           rf"{batch // n * n}, {(batch // n + 1) * n}"):
            _rehearse(config, topology, tmp_path / "refused", data_root, monkeypatch)
        config = rehearsal_config(case, batch=(batch // n + 1) * n)
    workdir = _rehearse(config, topology, tmp_path, data_root, monkeypatch)
    result = json.load(open(os.path.join(workdir, "results.json")))
    if "placement" in result:   # method-interface runs (drivers write their own results)
        assert result["placement"]["num_devices"] == n
        assert result["placement"]["batch_size"] == config.data.batch_size
    log = open(os.path.join(workdir + ".rehearsal", "first", "rank0.log")).read()
    assert (f"x {n} devices, {devices} on process 0/{processes}; batch "
            f"{config.data.batch_size} global" in log), log[-2000:]


def _rehearse(config, topology, folder, data_root, monkeypatch) -> str:
    """Run `config` through launch.main on `topology` (processes, devices); its workdir."""
    os.makedirs(folder, exist_ok=True)
    env = {**os.environ, **_data(config, data_root, monkeypatch)}
    path = os.path.join(folder, "config.pkl")
    with open(path, "wb") as f:
        pickle.dump(config, f)
    workdir = os.path.join(folder, "run")
    cache = os.environ.get("KDJAX_TEST_XLA_CACHE",
                           os.path.expanduser("~/.cache/kdjax/xla-tests"))
    rehearse.rehearse(f"tests/configs/pickled.py:{path}", workdir,
                      [f"--compilation_cache={cache}"], processes=topology[0],
                      cpu_devices=topology[1], resume_processes=1, resume_cpu_devices=8,
                      kill_after_steps=0, timeout=3000, log=lambda s: None, env=env)
    return workdir
