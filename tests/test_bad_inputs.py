"""Every bad input of docs/errors.md gets exactly the one line the doc shows."""
import os
import subprocess
import sys
import time

import pytest

from kdjax import workdir as workdir_lib
from tests import bad_inputs
from tests.configs import tiny

ROOT = os.path.dirname(bad_inputs.DOC)[: -len("/docs")]
BY_CLI = {c.cli: c for c in bad_inputs.CASES}


def _main(*args, **kw):
    return subprocess.run([sys.executable, "-m", "launch.main", "--compilation_cache=", *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=300, **kw)


def _last(out) -> str:
    assert "Traceback" not in out.stderr, out.stderr
    return out.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize("case", [c for c in bad_inputs.CASES if c.attempt is not None],
                         ids=lambda c: c.what)
def test_message(case, tmp_path):
    message = bad_inputs.message_of(case, tmp_path)
    assert bad_inputs.matches(message, case.message), message


def test_the_entry_point_prints_one_line_and_no_traceback(tmp_path):
    for cli, args in [
            ("`--config.train.epoch=3`", ["--config.train.epoch=3"]),
            ("`--config.loss.kd_weight=1.5`", ["--config.loss.kd_weight=1.5"]),
            ("`--config=experiments/nosuch.py`", ["--config=experiments/nosuch.py"]),
            ("`--workdir=`", ["--workdir="])]:
        argv = {"--config": "--config=tests/configs/tiny.py",
                "--workdir": f"--workdir={tmp_path / 'w'}"}
        for a in args:
            argv[a.split("=")[0] if a.split("=")[0] in argv else a] = a
        out = _main(*argv.values())
        assert out.returncode == 1
        assert bad_inputs.matches(_last(out), f"error: {BY_CLI[cli].message}"), out.stderr
    assert not os.path.exists(os.path.join(ROOT, "config.json"))   # `--workdir=` wrote nothing


def test_a_second_writer_is_refused_naming_the_first_and_a_dead_one_is_taken_over(tmp_path):
    w = str(tmp_path / "w")
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from kdjax import workdir\n"
         f"with workdir.claim({w!r}):\n    print('held', flush=True); time.sleep(600)"],
        cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        out = _main("--config=tests/configs/tiny.py", f"--workdir={w}")
        assert out.returncode == 1
        line = _last(out)
        case = BY_CLI["the same `--workdir` while a run is at work"]
        assert bad_inputs.matches(line, "error: " + case.message.replace("{tmp}", w)), line
        assert f"PID {holder.pid} on " in line
    finally:
        holder.kill()   # SIGKILL: the kernel releases its flock
        holder.wait()
    with workdir_lib.claim(w):
        pass


def test_a_run_that_failed_before_its_first_checkpoint_leaves_no_claim(tmp_path):
    first = tiny.get_config()   # e.g. a late-caught bad value or a missing teacher
    workdir_lib.check_config(str(tmp_path), first)
    corrected = tiny.override(tiny.get_config(), **{"model.name": "cnn_small"})
    workdir_lib.check_config(str(tmp_path), corrected)   # not "a different config"
    os.makedirs(tmp_path / "teacher" / "checkpoints" / "3")   # a stage, checked by its record
    (tmp_path / "teacher" / "stage.json").write_text("{}")
    workdir_lib.check_config(str(tmp_path), first)
    os.makedirs(tmp_path / "checkpoints" / "3")   # now the run's own training state exists
    with pytest.raises(workdir_lib.WorkdirError, match="different config: model.name"):
        workdir_lib.check_config(str(tmp_path), corrected)


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished two-epoch CE run (no teacher): its workdir and its stdout."""
    w = tmp_path_factory.mktemp("finished") / "w"
    out = _main("--config=tests/configs/tiny.py:ce", "--config.train.epochs=2", f"--workdir={w}")
    assert out.returncode == 0, out.stderr
    return w, out.stdout


def read_only(path):
    """Mount `path` read-only onto itself (root), or drop its write bits (others)."""
    if os.geteuid() == 0:
        subprocess.run(["mount", "--bind", path, path], check=True)
        subprocess.run(["mount", "-o", "remount,ro,bind", path, path], check=True)
        return lambda: subprocess.run(["umount", path], check=True)
    for root, dirs, files in os.walk(path):
        for name in dirs + files + ["."]:
            os.chmod(os.path.join(root, name), 0o555)
    return lambda: [os.chmod(os.path.join(r, n), 0o755)
                    for r, d, f in os.walk(path) for n in d + f + ["."]]


def test_a_finished_run_reads_back_from_a_read_only_folder(finished):
    w, _ = finished
    before = {os.path.join(r, f): os.stat(os.path.join(r, f)).st_mtime_ns
              for r, _, fs in os.walk(w) for f in fs}
    undo = read_only(str(w))
    try:
        out = _main("--config=tests/configs/tiny.py:ce", "--config.train.epochs=2",
                    f"--workdir={w}", "--config.progress_bar=True")   # a cosmetic change
    finally:
        undo()
    assert out.returncode == 0, out.stderr
    assert f"{w} holds a finished run" in out.stdout
    assert {os.path.join(r, f): os.stat(os.path.join(r, f)).st_mtime_ns
            for r, _, fs in os.walk(w) for f in fs} == before


@pytest.mark.slow
def test_fewer_epochs_than_done_are_refused_at_the_entry_point(finished):
    w, _ = finished
    with open(os.path.join(w, "results.json")) as f:
        results = f.read()
    out = _main("--config=tests/configs/tiny.py:ce", "--config.train.epochs=1", f"--workdir={w}",
                "--allow_changes=train.epochs")
    assert out.returncode == 1
    assert _last(out) == (f"error: train.epochs: epochs done 2 > requested 1 (workdir {w} "
                          "holds a finished run); a run can be extended, not shrunk: use a new "
                          "--workdir")
    with open(os.path.join(w, "results.json")) as f:
        assert f.read() == results


def test_the_doc_lists_every_case():
    with open(bad_inputs.DOC) as f:
        assert f.read() == bad_inputs.render(), "run `python -m tests.bad_inputs`"


def test_a_bug_keeps_its_traceback():
    """Only kdjax's own errors become one line; the same types raised inside a library do not."""
    import numpy as np

    from kdjax import config as config_lib
    from launch import failures

    def caught(fn):
        try:
            fn()
        except Exception as err:  # noqa: BLE001
            return err
        raise AssertionError("no error")

    bug = caught(lambda: np.broadcast_to(np.zeros(3), (2, 4)))   # ValueError inside numpy
    assert isinstance(bug, ValueError) and not failures.expected(bug)
    assert not failures.expected(caught(lambda: {}["key"]))          # KeyError, not raised by us
    assert not failures.expected(caught(lambda: int("x")))          # ValueError, not a raise
    own = caught(lambda: config_lib.validate(tiny.override(tiny.get_config(),
                                                           **{"train.epochs": -2})))
    assert failures.expected(own)
