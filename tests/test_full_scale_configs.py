"""Every `--scale=full` config of experiments/ (tests/full_scale_fixtures.py enumerates them)
validates, builds its paper-size models on its dataset's input shape (jax.eval_shape), and —
slow — trains 2 steps per stage on fabricated data of its dataset's real format, with only the
CPU reduction of `full_scale_fixtures.shrink` applied.

    python -m pytest -q tests/test_full_scale_configs.py            # enumeration + eval_shape
    python -m pytest -q -m slow tests/test_full_scale_configs.py    # 2 steps of each config

Measured 2026-12-01 on the shared 2-core machine (load average 10-14): the default tests
~50 s; the slow one, run in five parts, 40 cases passed or strict-xfailed in ~62 min of wall
time (alm_table2 alone 846 s: ALM's exact meta-gradient through DenseNet-40-12, whose depth the
zoo fixes; most cases 15-180 s with a warm compilation cache).
"""
import functools
import json
import math
import os

import jax
import jax.numpy as jnp
import pytest

from experiments.tables import TABLES
from kdjax import config as config_lib
from kdjax import experiment
from kdjax import run as run_lib
from kdjax.train import loop
from tests import full_scale_fixtures as F

CASES = F.full_cases()
# Full configs that cannot be built today (the lead has the report): case id -> why.
KNOWN_BROKEN: dict[str, str] = {}
# Full configs that build but do not train 2 steps today: case id -> the error.
BROKEN_RUN: dict[str, str] = {}


def _params(case, broken=KNOWN_BROKEN):
    why = broken.get(case.id) or KNOWN_BROKEN.get(case.id)
    marks = [pytest.mark.xfail(reason=why, strict=True)] if why else []
    return pytest.param(case, id=case.id, marks=marks)


def test_every_full_config_is_enumerated():
    """A registry entry, or a config file of experiments/, is either run here or listed with
    the reason it is not (so a new entry is covered without editing this test)."""
    cases, no_data = F.registry_cases()
    # A data-less entry is a toy or an exact computation whose full setting runs on this CPU
    # (full_here: its own tests run it) or is listed with its reason.
    unlisted = [t for t in no_data if t not in F.NO_DATA and not TABLES[t].full_here]
    assert not unlisted, f"list these data-less entries in F.NO_DATA with a reason: {unlisted}"
    assert set(F.NO_DATA) <= set(no_data), "F.NO_DATA names an entry that reads a dataset"
    assert {c.table for c in cases} | set(no_data) == set(TABLES)
    known = ({s.config for s in TABLES.values()} | {f for f, _ in F.STANDALONE_FULL}
             | set(F.NOT_FULL))
    unlisted = sorted(set(F.config_files()) - known)
    assert not unlisted, f"classify these config files in tests/full_scale_fixtures.py: {unlisted}"
    assert len({c.id for c in CASES}) == len(CASES)


def _models(config):
    """(section name, model section) of every network a run trains: student, teacher and
    ALM's assistants."""
    out = [("model", config.model), ("teacher", config.teacher)]
    if "alm" in config and config.alm.assistants:
        kws = config.alm.assistant_kwargs or ({},) * len(config.alm.assistants)
        for name, kw in zip(config.alm.assistants, kws):
            out.append(("assistant", {"name": name, "kwargs": dict(kw), "dtype": "float32"}))
    return out


@functools.lru_cache(maxsize=None)
def _param_count(name: str, kwargs: tuple, dtype: str, shape: tuple, num_classes: int) -> int:
    import ml_collections
    section = ml_collections.ConfigDict({"name": name, "kwargs": dict(kwargs), "dtype": dtype})
    model = experiment.build_model(section, num_classes)
    variables = jax.eval_shape(lambda x: model.init(jax.random.PRNGKey(0), x, train=False),
                               jnp.zeros((1,) + shape, jnp.float32))
    return sum(math.prod(v.shape) for v in jax.tree.leaves(variables["params"]))


def _count(section, fmt) -> int:
    kw = tuple(sorted((k, tuple(v) if isinstance(v, list) else v)
                      for k, v in dict(section["kwargs"] or {}).items()))
    return _param_count(section["name"], kw, section.get("dtype", "float32"),
                        fmt.image_shape, fmt.num_classes)


@pytest.mark.parametrize("case", [_params(c) for c in CASES])
def test_full_config_validates_and_builds(case):
    """The paper-size config passes the schema, its dataset has a fabricated format, and its
    models initialise (shapes only) on that format's inputs; so does its CPU reduction, whose
    models are smaller ones of the same families."""
    config = case.load()
    config_lib.validate(config)
    fmt = F.FORMATS[config.data.name]
    full = {what: _count(section, fmt) for what, section in _models(config)}
    small = F.shrink(case.load())
    config_lib.validate(small)
    assert small.method == config.method and small.data.name == config.data.name
    assert small.data.augment == config.data.augment and small.loss == config.loss
    for (what, section), big in zip(_models(small), full.values()):
        assert 0 < _count(section, fmt) <= big, what


# ---------------------------------------------------------------- 2 steps of each (slow)
@pytest.fixture(scope="module")
def compile_cache():
    """JAX's persistent compilation cache (as launch/runtime.py sets it): the families recur
    across configs. KDJAX_TEST_XLA_CACHE overrides the folder; '' turns it off."""
    folder = os.environ.get("KDJAX_TEST_XLA_CACHE",
                            os.path.expanduser("~/.cache/kdjax/xla-tests"))
    before = {k: getattr(jax.config, k) for k in (
        "jax_compilation_cache_dir", "jax_persistent_cache_min_compile_time_secs",
        "jax_persistent_cache_min_entry_size_bytes")}
    if folder:
        jax.config.update("jax_compilation_cache_dir", folder)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    yield
    for k, v in before.items():
        jax.config.update(k, v)


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    return str(tmp_path_factory.mktemp("fabricated"))


def _spy(monkeypatch):
    """Records what every dataset load returned and every training stage (`loop.fit`) ran."""
    loads, stages = [], []
    real_load, real_fit = experiment.load_dataset, loop.fit

    def load(name, data_dir=None, **kw):
        splits, info = real_load(name, data_dir=data_dir, **kw)
        loads.append({"name": name, "data_dir": data_dir, "info": info,
                      "sizes": {k: len(v) for k, v in splits.items()},
                      "types": {k: type(v).__name__ for k, v in splits.items()}})
        return splits, info

    def fit(config, workdir, **kw):
        result = real_fit(config, workdir, **kw)
        stages.append({"workdir": workdir, "n": len(kw["train"]), "epochs": config.train.epochs,
                       "batch": config.data.batch_size, "step": int(result.state.step),
                       "history": result.history})
        return result

    monkeypatch.setattr(experiment, "load_dataset", load)
    monkeypatch.setattr(loop, "fit", fit)
    return loads, stages


def _finite_losses(obj, path=""):
    """Every number under a key naming a loss, anywhere in a result."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            if "loss" in str(k) and isinstance(v, (int, float)) and not isinstance(v, bool):
                yield f"{path}{k}", float(v)
            else:
                yield from _finite_losses(v, f"{path}{k}.")
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            yield from _finite_losses(v, f"{path}{i}.")


def _check_fabricated(load, config, root):
    fmt = F.FORMATS[config.data.name]
    assert load["name"] == config.data.name
    if fmt.kind == "tfds":      # tfds.testing.mock_data's examples, through tfds.data_source
        assert load["sizes"]["train"] == F.MOCK_EXAMPLES
    elif fmt.kind == "idx":     # the idx files the fixture wrote
        assert load["data_dir"] == os.path.join(root, "fashion-mnist")
        assert load["sizes"] == {"train": 60000, "test": 10000}
    else:                       # kdjax array_record shards prepared from the JPEG folder
        assert load["data_dir"] == os.path.join(root, "prepared")
        assert load["sizes"]["train"] == F.PREPARED_CLASSES * F.PREPARED_PER_CLASS
        assert load["info"].num_classes == F.PREPARED_CLASSES
    if fmt.image_shape[0] == 224:   # variable-size JPEGs: on-disk splits through grain
        assert load["types"]["train"] == "LazySplit"
    assert tuple(load["info"].image_shape) == fmt.image_shape


@pytest.mark.slow  # every full config, 2 steps per stage: see the module docstring for timings
@pytest.mark.parametrize("case", [_params(c, BROKEN_RUN) for c in CASES])
def test_full_config_trains_two_steps(case, tmp_path, data_root, compile_cache, monkeypatch):
    config = F.shrink(case.load())
    loads, stages = _spy(monkeypatch)
    workdir = str(tmp_path / "run")
    with F.fabricated(config.data.name, data_root) as data_dir:
        config.data.data_dir = data_dir
        result = run_lib.run(config, workdir)
    assert os.path.exists(os.path.join(workdir, "results.json"))
    json.load(open(os.path.join(workdir, "results.json")))
    assert loads, "the run loaded no dataset"
    for load in loads:
        _check_fabricated(load, config, data_root)
    assert stages, "the run trained nothing"
    for s in stages:   # every stage: its epochs (1) over 2 batches (3 in active rounds >= 1)
        assert s["step"] == s["epochs"] * (s["n"] // s["batch"]) and s["epochs"] == 1, s
        assert s["step"] in (2, 3), s
        assert all(math.isfinite(v) for _, v in _finite_losses(s["history"])), s["history"]
    assert any(s["step"] == 2 for s in stages)
    losses = list(_finite_losses(result))
    assert all(math.isfinite(v) for _, v in losses), losses
