"""Faults a user meets, for every runner: a finished run on a read-only folder (read back,
nothing written); a second writer on the workdir, Ctrl-C, a full disk (each ends in one line of
docs/errors.md, and running the same command again finishes with exactly the uninterrupted
run's results.json and metrics log)."""
import json
import os
import signal
import subprocess
import time

import pytest

from launch import failures
from tests import bad_inputs
from tests import kill_resume as kr
from tests.test_bad_inputs import read_only
from tests.test_kill_resume import RUNNERS, SLOW_RUNNERS

ALL = {**RUNNERS, **SLOW_RUNNERS}
MESSAGE = {c.what: c.message for c in bad_inputs.CASES}
NO_CHECKPOINT_YET = MESSAGE["a full disk"].replace(
    "earlier checkpoints are intact (latest: step … in …)", "no checkpoint was written yet")


def _start(cmd):
    return subprocess.Popen(cmd, cwd=kr.ROOT, env=kr.env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _wait_for(test, proc, timeout=600):
    deadline = time.time() + timeout
    while not test():
        assert proc.poll() is None, proc.communicate()
        assert time.time() < deadline
        time.sleep(0.02)


def _holder(workdir):
    try:
        with open(os.path.join(workdir, ".lock")) as f:
            return json.loads(f.read() or "{}").get("pid")
    except (OSError, ValueError):
        return None


def _checkpoints(workdir):
    return [s for s in kr._checkpoint_steps(str(workdir)) if os.path.isdir(s)]


def _one_line(proc, out_err, code, *messages):
    """The last stderr line, checked against one of `messages` (no traceback before it)."""
    _, err = out_err
    assert proc.returncode == code, err
    assert "Traceback" not in err, err
    line = err.strip().splitlines()[-1]
    assert any(bad_inputs.matches(line, f"error: {m}") for m in messages), err
    return line


def _files(path):
    return {os.path.join(r, f): os.stat(os.path.join(r, f)).st_mtime_ns
            for r, _, fs in os.walk(path) for f in fs}


def _same_as_clean(cmd, cut, full):
    out = subprocess.run(cmd, cwd=kr.ROOT, env=kr.env(), capture_output=True, text=True,
                         timeout=900)
    assert out.returncode == 0, out.stderr
    assert kr.results(cut) == kr.results(full)
    assert kr.logged_steps(cut) == kr.logged_steps(full)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(ALL))
def test_faults_end_in_one_line_and_resume_to_the_clean_result(name, tmp_path):
    config, overrides = ALL[name]
    full = tmp_path / "full"
    subprocess.run(kr.command(config, full, *overrides), cwd=kr.ROOT, env=kr.env(), check=True,
                   capture_output=True, timeout=900)

    # The finished run reads back from a read-only folder, writing nothing.
    before = _files(full)
    undo = read_only(str(full))
    try:
        out = subprocess.run(kr.command(config, full, *overrides), cwd=kr.ROOT, env=kr.env(),
                             capture_output=True, text=True, timeout=300)
    finally:
        undo()
    assert out.returncode == 0 and f"{full} holds a finished run" in out.stdout, out.stderr
    assert _files(full) == before

    # A second writer is refused naming the first; after kill -9 of the first, a re-run resumes.
    cut = tmp_path / "two_writers"
    cmd = kr.command(config, cut, *overrides)
    first = _start(cmd)
    _wait_for(lambda: _holder(cut) == first.pid, first)
    second = _start(cmd)
    line = _one_line(second, second.communicate(timeout=300), 1,
                     MESSAGE["a workdir another run writes to"].replace("{tmp}", str(cut)))
    assert f"PID {first.pid} on " in line
    first.send_signal(signal.SIGKILL)
    first.communicate()
    _same_as_clean(cmd, cut, full)

    # Ctrl-C after the first checkpoint: one line, exit 130; the same command resumes.
    cut = tmp_path / "ctrl_c"
    cmd = kr.command(config, cut, *overrides)
    run = _start(cmd)
    _wait_for(lambda: _checkpoints(cut), run)
    run.send_signal(signal.SIGINT)
    _one_line(run, run.communicate(timeout=300), 130, MESSAGE["Ctrl-C"])
    _same_as_clean(cmd, cut, full)

    # A full disk: one line naming the full file system; after space is freed, a re-run resumes.
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    size = sum(os.stat(os.path.join(r, f)).st_blocks * 512   # what the run takes on disk
               for r, _, fs in os.walk(full) for f in fs)
    mount = tmp_path / "small_disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size // 2}", "tmpfs", str(mount)],
                   check=True)
    try:
        cut = mount / "w"
        cmd = kr.command(config, cut, *overrides)
        run = _start(cmd)
        line = _one_line(run, run.communicate(timeout=900), 1, MESSAGE["a full disk"],
                         NO_CHECKPOINT_YET)
        assert f": {mount} is full (writing " in line and str(cut) in line
        subprocess.run(["mount", "-o", f"remount,size={4 * size + 2**24}", str(mount)],
                       check=True)
        _same_as_clean(cmd, cut, full)
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def test_ctrl_c_ends_in_one_line(tmp_path):
    """The default suite's Ctrl-C: a CE run interrupted after its first checkpoint."""
    cmd = kr.command(f"{kr.ROOT}/tests/configs/tiny.py:ce", tmp_path / "w",
                     "--config.train.checkpoint_every_steps=2")
    run = _start(cmd)
    _wait_for(lambda: _checkpoints(tmp_path / "w"), run)
    run.send_signal(signal.SIGINT)
    _one_line(run, run.communicate(timeout=300), 130, MESSAGE["Ctrl-C"])
    assert not (tmp_path / "w" / "results.json").exists()


def test_a_full_disk_is_named_from_python_and_from_tensorstore(tmp_path):
    tensorstore = ValueError(
        f'RESOURCE_EXHAUSTED: Error writing local file "{tmp_path}/checkpoints/4.orbax-'
        'checkpoint-tmp/x": Failed to write 115 bytes to file 9: No space left on device '
        "[os_error_code='28']")
    for err, path in [(OSError(28, "No space left on device", str(tmp_path / "m.jsonl")),
                       f"{tmp_path}/m.jsonl"),
                      (tensorstore, f"{tmp_path}/checkpoints/4.orbax-checkpoint-tmp/x"),
                      (OSError(28, "No space left on device"), f"under {tmp_path}")]:
        full = failures.disk_full(err, str(tmp_path))
        assert failures.expected(full)
        message = failures.one_line(full)
        assert bad_inputs.matches(message, NO_CHECKPOINT_YET), message
        assert f"(writing {path});" in message
    assert failures.disk_full(ValueError("a bug"), str(tmp_path)) is None
