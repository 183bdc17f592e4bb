"""Children never outlive a killed parent: `launch.prepare` workers and `launch.reproduce
--parallel` points (kdjax.children). Processes are found through /proc (no psutil)."""
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from tests.test_prepare import smooth_jpeg

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="PR_SET_PDEATHSIG is Linux's")


def _children(pid: int) -> set[int]:
    """Live children of `pid` (from /proc/<pid>/stat's ppid field)."""
    out = set()
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != "Z":
                out.add(int(name))
    return out


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _wait(predicate, what: str, timeout: float = 120.0):
    deadline = time.time() + timeout
    while not predicate():
        assert time.time() < deadline, what
        time.sleep(0.05)


def _blocking_image_folder(root) -> list[str]:
    """A class-folder dataset whose train images are FIFOs: a worker that opens one blocks
    until the test writes to it, so the workers are busy at a point the test can see."""
    fifos = []
    for split in ("train", "test"):
        for c in ("ant", "bee"):
            os.makedirs(os.path.join(root, split, c))
            path = os.path.join(root, split, c, "0.jpg")
            if split == "train":
                os.mkfifo(path)
                fifos.append(path)
            else:
                smooth_jpeg(path, 40, 30, seed=len(fifos))
    return fifos


def _open_writers(fifos, proc):
    """Write ends of the FIFOs once a worker has each open for reading (the worker then
    blocks in read(): it is past its initializer, inside a shard)."""
    fds = {}

    def opened():
        for path in fifos:
            if path not in fds:
                try:
                    fds[path] = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
                except OSError:  # ENXIO: no reader yet
                    pass
        assert proc.poll() is None, proc.stderr.read()
        return len(fds) == len(fifos)
    _wait(opened, "the workers never opened their images")
    return list(fds.values())


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT],
                         ids=["SIGKILL", "SIGTERM", "SIGINT"])
def test_prepare_workers_die_with_a_killed_parent(tmp_path, sig):
    fifos = _blocking_image_folder(str(tmp_path / "src"))
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "launch.prepare", "--dataset=folder",
                             f"--source={tmp_path / 'src'}", f"--out={out}", "--workers=2",
                             "--examples_per_shard=1"], cwd=ROOT, stderr=subprocess.PIPE,
                            text=True)
    fds = []
    try:
        fds = _open_writers(fifos, proc)
        kids = _children(proc.pid)
        assert len(kids) >= 2  # two workers (and multiprocessing's resource tracker)
        proc.send_signal(sig)
        proc.wait(timeout=60)
        _wait(lambda: not any(_alive(k) for k in kids), f"children of a {sig.name}-ed "
              f"prepare still running: {[k for k in kids if _alive(k)]}", timeout=10)
    finally:
        for fd in fds:
            os.close(fd)
        if proc.poll() is None:
            proc.kill()
    if sig == signal.SIGKILL:
        assert proc.returncode == -signal.SIGKILL
    else:  # handled: workers stopped, the aside folder removed, one line
        assert proc.returncode == 128 + sig
        assert proc.stderr.read().strip().splitlines() == [
            f"error: interrupted; {out} is as it was before (run the same command again)"]
        assert os.listdir(tmp_path) == ["src"]
    assert not out.exists()


@pytest.mark.slow  # each point process imports JAX: about 20 s on 2 busy cores
def test_parallel_sweep_points_die_with_a_killed_parent(tmp_path):
    (tmp_path / "slowpkg").mkdir()
    (tmp_path / "slowpkg" / "__init__.py").write_text("")
    (tmp_path / "slowpkg" / "points.py").write_text(textwrap.dedent(f"""
        import os, time
        import ml_collections
        from kdjax.reproduce.spec import Metric, TableSpec

        def get_config(arg=None):
            c = ml_collections.ConfigDict()
            c.method = "slowpkg.points:run"
            c.variant = "a"
            c.seed = 0
            c.scale_note = "reduced: test"
            return c

        def run(config, workdir):
            open(os.path.join({str(tmp_path)!r}, f"pid-{{os.getpid()}}"), "w").close()
            time.sleep(600)

        TABLES = {{"slow": TableSpec(id="slow", paper="test", kind="figure", title="Slow",
                                     config={str(tmp_path / 'slowpkg' / 'points.py')!r},
                                     grid={{"variant": ("a", "b")}},
                                     metrics=(Metric("acc", "acc"),))}}
    """))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(tmp_path), os.environ.get("PYTHONPATH", ""), ROOT]))
    proc = subprocess.Popen([sys.executable, "-m", "launch.reproduce", "--table=slow",
                             "--registry=slowpkg.points:TABLES", "--parallel=2", "--seeds=1",
                             f"--workdir={tmp_path / 'w'}"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        def two_points():
            assert proc.poll() is None, proc.stderr.read()
            return len([n for n in os.listdir(tmp_path) if n.startswith("pid-")]) == 2
        _wait(two_points, "the two points never started", timeout=300)
        points = {int(n[4:]) for n in os.listdir(tmp_path) if n.startswith("pid-")}
        assert points <= _children(proc.pid)
        proc.kill()
        proc.wait(timeout=60)
        _wait(lambda: not any(_alive(p) for p in points),
              f"points of a killed sweep still running: {points}", timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.slow  # grain's spawned workers import grain and numpy: about 15 s here
def test_grain_data_workers_die_with_a_killed_training_process(tmp_path):
    """GrainLoader's worker processes (started by grain) end when the process that iterates
    them is SIGKILLed, as a killed `launch.main` is."""
    (tmp_path / "iterate.py").write_text(textwrap.dedent("""
        import os, sys, time
        import numpy as np

        if __name__ == "__main__":
            from kdjax.data import make_split
            from kdjax.data.loader import GrainLoader
            split = make_split(np.zeros((64, 8, 8, 3), np.uint8), np.zeros(64, np.int32))
            it = iter(GrainLoader(split, 8, worker_count=2, process_index=0, process_count=1))
            next(it)
            open(sys.argv[1], "w").close()
            time.sleep(600)
    """))
    ready = tmp_path / "ready"
    proc = subprocess.Popen([sys.executable, str(tmp_path / "iterate.py"), str(ready)],
                            cwd=ROOT, stderr=subprocess.DEVNULL)
    try:
        _wait(lambda: ready.exists() or proc.poll() is not None, "no batch came")
        assert proc.poll() is None
        kids = _children(proc.pid)
        assert len(kids) >= 2
        proc.kill()
        proc.wait(timeout=60)
        _wait(lambda: not any(_alive(k) for k in kids),
              f"grain workers of a killed process still running: {kids}", timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
