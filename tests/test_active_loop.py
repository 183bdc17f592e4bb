"""RAD Alg. 1 end to end on sklearn digits: the loop, its accounting and its resumption."""
import json
import os

import jax
import numpy as np
import pytest

from kdjax import placement
from kdjax.methods.rad import compare
from kdjax.methods.rad import loop as active_loop
from tests.configs import tiny


def _config(strategy="rad"):
    c = tiny.get_config("rad")
    c.data.num_validation = 0
    c.data.eval_batch_size = 120
    c.train.epochs = 2
    c.teacher.epochs = 3
    c.active.strategy = strategy
    c.active.num_labeled = 300
    c.active.budget = 100
    c.active.rounds = 2
    c.active.b_uniform = 40
    return c


@pytest.mark.parametrize("strategy", ["rad", "margin", "uniform"])
def test_loop_queries_exactly_the_budget(tmp_path, strategy):
    config = _config(strategy)
    res = active_loop.run(config, str(tmp_path))
    recs = res["records"]
    assert [r["round"] for r in recs] == [0, 1, 2]
    # Round 0 is the CE-only student; every round buys exactly b soft labels (RAD spends
    # b_uniform of its first b on estimating the teacher's error rate, Sec. 3.3).
    assert [r["queries"] for r in recs] == [0, 100, 200]
    assert [r["num_soft"] for r in recs] == [0, 100, 200]
    state = json.load(open(tmp_path / "active_state.json"))
    assert len(set(state["soft_positions"])) == 200  # never the same point twice
    assert (state["error_rate"] is not None) == (strategy == "rad")
    for r in recs[1:]:
        assert 0.0 <= r["teacher_accuracy_on_selected"] <= 1.0
        assert r["test_accuracy"] > 0.5
    _assert_placement(tmp_path, config)


def _assert_placement(workdir, config):
    """A driver's results.json says where it ran, as a method run's does (kdjax/placement.py):
    the tests' 8 CPU devices (tests/conftest.py) and the config's global batch."""
    placed = json.load(open(workdir / "results.json"))["placement"]
    assert placed == placement.describe(config)
    assert placed["num_devices"] == jax.device_count()
    assert placed["batch_size"] == config.data.batch_size


def test_killed_loop_resumes_to_the_same_result(tmp_path, monkeypatch):
    config = _config("rad")
    full = active_loop.run(config, str(tmp_path / "full"))
    real_fit, calls = active_loop.loop.fit, []

    def dying_fit(*args, **kwargs):
        calls.append(1)
        if len(calls) == 4:  # teacher, round 0, round 1, then die in round 2's training
            raise KeyboardInterrupt
        return real_fit(*args, **kwargs)

    monkeypatch.setattr(active_loop.loop, "fit", dying_fit)
    with pytest.raises(KeyboardInterrupt):
        active_loop.run(config, str(tmp_path / "cut"))
    monkeypatch.undo()
    state = json.load(open(tmp_path / "cut" / "active_state.json"))
    assert state["round"] == 1
    resumed = active_loop.run(config, str(tmp_path / "cut"))
    assert json.load(open(tmp_path / "cut" / "active_state.json"))["soft_positions"] == \
        json.load(open(tmp_path / "full" / "active_state.json"))["soft_positions"]
    np.testing.assert_allclose([r["test_accuracy"] for r in resumed["records"]],
                               [r["test_accuracy"] for r in full["records"]])


def test_compare_prints_every_strategy(tmp_path, capsys):
    config = _config()
    config.active.rounds = 1
    config.active.strategies = ("rad", "uniform")
    res = compare.run(config, str(tmp_path))
    out = capsys.readouterr().out
    assert "| round | queries | rad | uniform |" in out
    assert len(res["table"]) == 2
    assert os.path.exists(tmp_path / "trial_0" / "teacher" / "results.json")
    _assert_placement(tmp_path, config)
