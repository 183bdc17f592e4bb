"""RAD experiment configs (experiments/rad/): every module and panel builds, its fields are
known to kdjax, and the compare runner runs every strategy end to end on digits."""
import importlib
import json
import os

import numpy as np
import pytest

from experiments.rad import d3_gains, d4_active_learning, d5_w_sweep, d6_entropy_gain, \
    d7_svhn_grid, fig3, fig4_imagenet
from kdjax.methods.rad import compare
from kdjax.methods.rad.strategies import STRATEGIES
from kdjax.config import validate
from kdjax.data import list_datasets
from kdjax.models import list_models
from kdjax.train.optim import make_schedule
from tests.configs import tiny

MODULES = {
    "fig3": fig3, "fig4_imagenet": fig4_imagenet, "d3_gains": d3_gains,
    "d4_active_learning": d4_active_learning, "d5_w_sweep": d5_w_sweep,
    "d6_entropy_gain": d6_entropy_gain, "d7_svhn_grid": d7_svhn_grid,
}
PANEL_MODULES = (fig3, d3_gains, d4_active_learning, d5_w_sweep, d6_entropy_gain)


def _all_args():
    for name, mod in MODULES.items():
        for scale in ("cpu", "full"):
            yield name, mod, scale
            if mod in PANEL_MODULES:
                for panel in fig3.PANELS:
                    yield name, mod, f"{scale}:{panel}"
            if mod is d7_svhn_grid:
                for cell in d7_svhn_grid.grid():
                    yield name, mod, f"{scale}:{cell}"


def _check(config, scale):
    assert config.method == "kdjax.methods.rad.compare:run"
    mod, fn = config.method.split(":")
    assert callable(getattr(importlib.import_module(mod), fn))
    validate(config)   # every field declared in kdjax/config.py
    assert config.scale_note
    if scale == "cpu":
        assert config.data.name == "fashion_mnist" and "reduced" in config.scale_note
    assert config.data.name in list_datasets()
    models = set(list_models())
    assert config.model.name in models and config.teacher.name in models
    assert config.active.strategies
    for s in config.active.strategies:
        base, _ = compare.parse_strategy(s)
        assert base in STRATEGIES
    make_schedule(config.train, steps_per_epoch=10)   # raises for an unknown schedule
    assert config.train.optimizer in ("adam", "sgd")
    assert config.active.m_estimate in ("validation", "uniform", "oracle", "fixed")
    if config.active.m_estimate == "validation":
        assert config.data.num_validation > 0
    assert config.active.num_trials >= 1 and config.active.rounds >= 1
    assert 0 < config.active.budget and 0 < config.active.num_labeled


def test_every_config_and_panel_builds():
    n = 0
    for _, mod, arg in _all_args():
        _check(mod.get_config(arg), arg.split(":")[0])
        n += 1
    assert n == 7 * 2 + 5 * 2 * len(fig3.PANELS) + 2 * 48


@pytest.mark.parametrize("name", sorted(MODULES))
def test_docstring_carries_the_command(name):
    doc = MODULES[name].__doc__
    assert f"--config=experiments/rad/{name}.py:cpu" in doc
    assert f"--config=experiments/rad/{name}.py:full" in doc


def test_paper_settings():
    # Sec. 4.1 / D.1: Adam 1e-3, batch 128, no augmentation, no weight decay, |val| = 1000,
    # rad_piecewise for ResNets, constant for MobileNet, 10 trials, all seven strategies.
    c = fig3.get_config("full:cifar100:resnet:e100:A20000:b5000:T3")
    assert (c.model.name, c.teacher.name) == ("resnetv2_20", "resnet50")
    assert (c.train.epochs, c.active.num_labeled, c.active.budget, c.active.rounds) == \
        (100, 20000, 5000, 3)
    assert c.train.schedule == "rad_piecewise" and c.train.optimizer == "adam"
    assert c.train.learning_rate == 1e-3 and c.train.weight_decay == 0.0
    assert c.data.batch_size == 128 and not c.data.augment and c.data.num_validation == 1000
    assert c.active.num_trials == 10 and c.data.name == "cifar100"
    assert set(c.active.strategies) == {"rad", "margin", "entropy", "coreset",
                                        "cluster_margin", "unixkd", "uniform"}
    m = fig3.get_config("full:svhn:mobilenet")
    assert (m.model.name, m.teacher.name, m.train.schedule) == ("mobilenet", "mobilenet_w2",
                                                                 "constant")
    assert m.data.name == "svhn_cropped"
    # D.2: ImageNet ResNet-50 -> ResNet-18, SGD 0.9, batch 256, piecewise, flips, |A| = 10%.
    i = fig4_imagenet.get_config("full")
    assert (i.model.name, i.teacher.name, i.data.name) == ("resnet18", "resnet50",
                                                           "imagenet2012")
    assert (i.train.optimizer, i.train.momentum, i.data.batch_size) == ("sgd", 0.9, 256)
    assert i.train.schedule == "imagenet_piecewise" and i.train.warmup_epochs == 5
    assert i.train.epochs == 100 and i.data.augment and i.data.num_validation == 10_000
    assert i.active.num_labeled == 128_116 and i.active.num_trials == 3
    assert "coreset" not in i.active.strategies and "unixkd" not in i.active.strategies
    # Every plotted budget (3..11% of |I|) is a round boundary.
    pct = {round(100 * i.active.budget * t / 1_281_167) for t in range(1, 12)}
    assert {3, 5, 7, 9, 11} <= pct
    # D.4 / D.5 / D.6 / D.7.
    a = d4_active_learning.get_config("full")
    assert a.active.label_oracle and a.active.m_fraction == 0.05
    w = d5_w_sweep.get_config("full")
    ws = sorted(compare.parse_strategy(s)[1].get("w", -1) for s in w.active.strategies)
    assert ws == [-1, 0.0, 0.1, 0.2, 0.3, 0.5, 0.6, 0.7, 0.8, 1.0]
    assert w.active.num_trials == 5
    assert d6_entropy_gain.get_config("full").active.strategies == ("rad", "rad_entropy")
    cells = d7_svhn_grid.grid()
    assert len(cells) == len(set(cells)) == 8 * 2 * 3
    g = d7_svhn_grid.get_config("full:resnetv2_29:resnetv2_110:e200:A5000:b2000")
    assert (g.model.name, g.teacher.name, g.data.name) == ("resnetv2_29", "resnetv2_110",
                                                           "svhn_cropped")
    assert g.active.strategies == ("rad", "margin", "uniform")


@pytest.mark.parametrize("mod,arg", [
    (fig3, "gpu"), (fig3, "full:mnist:resnet"), (fig3, "full:cifar10"),
    (fig3, "full:cifar10:resnet:x5"), (fig3, "cpu:cifar10:resnet:e0"),
    (fig4_imagenet, "full:cifar10"), (d7_svhn_grid, "full:resnetv2_20:resnetv2_56:e100:A20000:b1000"),
    (d7_svhn_grid, "full:resnetv2_20"), (d5_w_sweep, "tpu")])
def test_bad_args_raise(mod, arg):
    with pytest.raises(ValueError):
        mod.get_config(arg)


def test_parse_strategy():
    assert compare.parse_strategy("margin") == ("margin", {})
    assert compare.parse_strategy("rad@w=0.3") == ("rad", {"w": 0.3})
    assert compare.parse_strategy("rad_entropy@w=1") == ("rad_entropy", {"w": 1.0})
    for bad in ("greedy", "margin@w=0.5", "rad@w=1.5", "rad@w=x", "rad@v=0.1"):
        with pytest.raises(ValueError):
            compare.parse_strategy(bad)


def test_label_oracle_queries_true_labels_without_error_rate_queries(tmp_path):
    """D.4: a query returns the ground-truth label; RAD uses m = m_fraction·n, spending nothing
    on estimating it; the queried points enter training with one-hot targets."""
    from kdjax.methods.rad import loop as active_loop
    c = tiny.get_config("rad")
    c.data.num_validation = 0
    c.data.eval_batch_size = 120
    c.train.epochs = 1
    c.teacher.epochs = 1
    c.active.strategy = "rad"
    c.active.num_labeled = 300
    c.active.budget = 100
    c.active.rounds = 1
    c.active.label_oracle = True
    c.active.m_estimate = "fixed"
    c.active.m_fraction = 0.05
    res = active_loop.run(c, str(tmp_path))
    last = res["records"][-1]
    assert last["queries"] == 100 and last["teacher_accuracy_on_selected"] == 1.0
    assert res["estimated_teacher_error_rate"] == 0.05


@pytest.mark.slow  # ~45-60 s on 2 cores: `make test-slow`
def test_compare_all_strategies_on_digits(tmp_path, capsys):
    c = tiny.get_config("rad_compare")
    c.data.num_validation = 100
    c.data.eval_batch_size = 200
    c.train.epochs = 1
    c.train.checkpoint_every_steps = 10_000   # one checkpoint per training, at its end
    c.train.log_every_steps = 10_000
    c.teacher.epochs = 2
    c.active.m_estimate = "validation"
    c.active.num_labeled = 200
    c.active.budget = 60
    c.active.rounds = 1
    c.active.num_trials = 1
    c.active.num_clusters = 8
    c.active.strategies = fig3.get_config("cpu").active.strategies + ("rad@w=0.5",)
    res = compare.run(c, str(tmp_path))
    strategies = list(c.active.strategies)
    assert len(res["rows"]) == 2 * len(strategies)
    for row in res["rows"]:
        # Independent recomputation of each cell from the per-trial records.
        accs = [t[row["strategy"]]["records"][row["round"]]["test_accuracy"]
                for t in res["trials"]]
        assert row["test_accuracy"]["mean"] == pytest.approx(np.mean(accs))
        assert row["test_accuracy"]["std"] == pytest.approx(
            np.std(accs, ddof=1) if len(accs) > 1 else 0.0)
        assert row["queries"] == 60 * row["round"] and row["seeds"] == [0]
        if row["round"]:
            assert 0.0 <= row["teacher_acc_selected"] <= 1.0
    for trial in res["trials"]:
        for s in strategies:
            recs = trial[s]["records"]
            assert [r["queries"] for r in recs] == [0, 60]
    # The w variant ran RAD with w = 0.5 (its own directory and config).
    cfg = json.load(open(tmp_path / "trial_0" / "rad@w=0.5" / "results.json"))["config"]
    assert cfg["active"]["w"] == 0.5 and cfg["active"]["strategy"] == "rad"
    assert os.path.getsize(tmp_path / "accuracy.png") > 0
    assert os.path.getsize(tmp_path / "gain.png") > 0
    # Trials run as separate processes merge into the same table (here: one run).
    merged = compare.merge([str(tmp_path)], c)
    assert merged["table"] == res["table"] and merged["seeds"] == [0]
    out = capsys.readouterr().out
    assert "| round | queries |" in out and "unixkd" in out
