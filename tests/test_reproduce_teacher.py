"""The shared teacher stage: `teacher.seed`, `teacher.workdir`, the harness's shared teacher
folders keyed by `experiment.teacher_key`, and the claim that trains a shared teacher once
(`kdjax.stages`, tests/test_stages.py)."""
import os

import pytest

from kdjax import config as config_lib
from kdjax import experiment
from kdjax.reproduce import execute, report, sweep
from kdjax.reproduce.spec import Metric, TableSpec
from tests.configs import tiny


def _config(method="kd", **dotted):
    return tiny.override(tiny.get_config(method), **dotted)


def test_teacher_seed_default_shares_one_teacher_per_cell():
    c = _config(seed=3)
    assert experiment.teacher_seed(c) == 0 and experiment.teacher_config(c).seed == 0
    assert experiment.teacher_config(_config(seed=3, **{"teacher.seed": -1})).seed == 3
    assert experiment.teacher_config(_config(**{"teacher.seed": 5})).seed == 5
    assert experiment.teacher_dir(c, "/w") == "/w/teacher"
    assert experiment.teacher_dir(_config(**{"teacher.workdir": "/t/x"}), "/w") == "/t/x"
    with pytest.raises(config_lib.ConfigError, match="teacher.seed"):
        config_lib.validate(_config(**{"teacher.seed": -2}))
    for gone in ("alm", "lrds"):   # the per-method stage seeds are gone
        c = _config(gone)
        c[gone].stage_seed = 0
        with pytest.raises(config_lib.ConfigError, match=f"{gone}.stage_seed"):
            config_lib.validate(c)


def test_teacher_key_is_what_determines_the_teacher():
    key = experiment.teacher_key(_config())
    # the student's seed, method, loss and model do not change the teacher ...
    assert experiment.teacher_key(_config(seed=1)) == key
    assert experiment.teacher_key(_config(method="lrds", **{"loss.kd_weight": 0.5})) == key
    assert experiment.teacher_key(_config(**{"model.kwargs": {"hidden": (8,)}})) == key
    assert experiment.teacher_key(_config(**{"teacher.workdir": "/elsewhere"})) == key
    # ... its seed, epochs, model, data, recipe and the method's TEACHER_FIELDS do
    for change in ({"teacher.seed": -1, "seed": 1}, {"teacher.epochs": 2},
                   {"teacher.kwargs": {"hidden": (64,)}}, {"data.num_validation": 100},
                   {"train.learning_rate": 0.2}, {"teacher.learning_rate": 0.3}):
        assert experiment.teacher_key(_config(**change)) != key, change
    alm = _config(method="alm")
    assert experiment.teacher_key(_config(method="alm", **{"alm.variant": "kd"})) == \
        experiment.teacher_key(alm)
    assert experiment.teacher_key(_config(method="alm", **{"data.label_noise": 0.2})) != \
        experiment.teacher_key(alm)


def test_share_teacher_only_for_points_that_train_their_teacher(tmp_path):
    point = sweep.Point("t", "cpu", "p", ())
    c = _config()
    execute.share_teacher(c, str(tmp_path), point)
    assert c.teacher.workdir == os.path.join(str(tmp_path), "t", "cpu", "_teachers",
                                             experiment.teacher_key(c))
    loaded = _config(**{"teacher.checkpoint": "/some/teacher"})
    execute.share_teacher(loaded, str(tmp_path), point)
    assert loaded.teacher.workdir == ""
    ce = _config(method="ce")               # no teacher at all
    execute.share_teacher(ce, str(tmp_path), point)
    assert ce.teacher.workdir == ""
    rad = _config(method="rad_compare")     # a driver with per-trial teachers of its own
    execute.share_teacher(rad, str(tmp_path), point)
    assert rad.teacher.workdir == ""


def _spec() -> TableSpec:
    """Two KD variants x two seeds on digits: one teacher for all four points."""
    return TableSpec(id="tiny_shared", paper="none", title="tiny shared teacher",
                     config="tests/configs/tiny.py", args={"cpu": "kd", "full": "kd"},
                     seeds="grid:seed", default_seeds={"cpu": 2, "full": 2},
                     grid={"loss.kd_weight": (0.5, 0.9), "teacher.epochs": (1,),
                           "train.epochs": (1,), "train.checkpoint_every_steps": (10_000,)},
                     metrics=(Metric("student", "test_accuracy"),
                              Metric("teacher", "teacher.test_accuracy")))


def _check_one_teacher(wd: str, t: TableSpec, n: int) -> None:
    recs = report.finished_records(wd, t.id, "cpu")
    assert len(recs) == n
    shared = os.path.join(wd, t.id, "cpu", "_teachers")
    (tdir,) = os.listdir(shared)
    sources = {r["result"]["teacher"]["source"] for r in recs}
    assert sources == {os.path.join(shared, tdir)}
    assert len({r["result"]["teacher"]["test_accuracy"] for r in recs}) == 1
    trained = [r for r in recs if "train_wall_time" in r["result"]["teacher"]]
    assert len(trained) == 1           # one point trained it, the others read it back
    assert not any(os.path.exists(os.path.join(wd, t.id, "cpu", r["point"], "run", "teacher"))
                   for r in recs)


@pytest.mark.slow
def test_points_of_a_cell_share_one_teacher(tmp_path):
    t = _spec()
    points = sweep.expand(t, "cpu", seeds=1)
    out = execute.run_sweep(t, points, str(tmp_path), seeds=1, log=lambda s: None)
    assert not out.failed and len(out.finished) == 2, out.failed
    _check_one_teacher(str(tmp_path), t, 2)


@pytest.mark.slow
def test_parallel_sweep_trains_the_shared_teacher_once(tmp_path):
    t = _spec()
    points = sweep.expand(t, "cpu")
    out = execute.run_sweep(t, points, str(tmp_path), parallel=2,
                            registry="tests.test_reproduce_teacher:TABLES", log=lambda s: None)
    assert not out.failed and len(out.finished) == 4, out.failed
    _check_one_teacher(str(tmp_path), t, 4)





def test_shared_teachers_train_before_the_fan_out():
    """The first point of each shared teacher runs first (parallel sweeps: a first wave; TPU
    jobs: in the foreground, teachers in the bucket), the other points after it."""
    t = _spec()
    points = sweep.expand(t, "cpu")
    first, rest = execute.stage_waves(t, points, "/w")
    assert [p.name for p in first] == [points[0].name] and rest == points[1:]
    lines = execute.tpu_commands(t, points, "gs://b/r", name_prefix="rp")
    assert "--background" not in lines[0] and all("--background" in line for line in lines[1:])
    assert all("--stages_root=gs://b/r" in line for line in lines)
    local = execute.tpu_commands(t, points, "", name_prefix="rp")   # no bucket: nothing shared
    assert all("--background" in line and "stages_root" not in line for line in local)
TABLES = {"tiny_shared": _spec()}
