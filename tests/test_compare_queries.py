"""Compare runs report the teacher queries they spent (the reproduce harness reads them)."""
import json
import os

from kdjax.methods.rad import compare
from kdjax.reproduce import execute
from tests.configs import tiny


def test_queries_by_strategy_sums_over_trials():
    per_trial = [{"rad": {"teacher_queries": 200, "records": []},
                  "uniform": {"records": [{"queries": 0}, {"queries": 150}]}},
                 {"rad": {"teacher_queries": 210, "records": []},
                  "uniform": {"teacher_queries": 150, "records": []}}]
    assert compare.queries_by_strategy(per_trial) == {"rad": 410, "uniform": 300}


def test_label_oracle_queries_are_not_teacher_queries():
    per_trial = [{"rad": {"teacher_queries": 100, "records": []}}] * 2
    assert compare.query_totals(per_trial) == {"teacher_queries": 200,
                                               "teacher_queries_by_strategy": {"rad": 200}}
    oracle = compare.query_totals(per_trial, label_oracle=True)
    assert oracle["teacher_queries"] == 0 and oracle["label_queries"] == 200
    assert execute.teacher_queries(oracle) == 0


def test_compare_reports_the_queries_the_loop_spent(tmp_path):
    c = tiny.get_config("rad")
    c.data.num_validation = 0
    c.data.eval_batch_size = 120
    c.train.epochs = 1
    c.teacher.epochs = 2
    c.active.num_labeled = 300
    c.active.budget = 60
    c.active.rounds = 1
    c.active.b_uniform = 20
    c.active.num_trials = 2
    c.active.plot = False
    c.active.strategies = ("rad", "uniform")
    res = compare.run(c, str(tmp_path))
    # Independent count: the soft-labeled pool points each loop saved, over trials/strategies.
    bought = {}
    for trial in range(2):
        for s in c.active.strategies:
            path = tmp_path / f"trial_{trial}" / s / "active_state.json"
            bought[s] = bought.get(s, 0) + len(json.load(open(path))["soft_positions"])
    assert bought == {"rad": 2 * 60, "uniform": 2 * 60}
    assert res["teacher_queries_by_strategy"] == bought
    assert res["teacher_queries"] == 240
    # What the harness records for the point (it does not descend into the per-trial lists).
    assert execute.teacher_queries(res) == 240
    on_disk = json.load(open(os.path.join(tmp_path, "results.json")))
    assert execute.teacher_queries(on_disk) == 240
