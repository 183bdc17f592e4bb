"""launch/slurm: the exact script and sbatch command, and the script run under a local stand-in
for `srun` (N tasks with SLURM's per-task variables) so jax.distributed.initialize() really
auto-detects SLURM: 2 processes, one coordinator, in `launch.reproduce --multihost`."""
import os
import shlex
import socket
import stat
import subprocess
import sys

import pytest

from launch.slurm import sbatch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
JOB = "python -m launch.main --config=experiments/quickstart.py --workdir=/shared/run 1"

# What srun does for one node: start $SLURM_NTASKS tasks with their step variables.
FAKE_SRUN = """#!/bin/bash
set -u
while [[ $# -gt 0 && "$1" == --* ]]; do echo "srun option: $1" >&2; shift; done
pids=()
for ((i = 0; i < SLURM_NTASKS; i++)); do
  SLURM_PROCID=$i SLURM_LOCALID=$i SLURM_STEP_NODELIST=$SLURM_JOB_NODELIST \\
    SLURM_STEP_NUM_NODES=1 "$@" > "$SRUN_LOG_DIR/task$i.log" 2>&1 &
  pids+=($!)
done
rc=0; for p in "${pids[@]}"; do wait "$p" || rc=1; done; exit $rc
"""


def _dry_run(*args):
    return subprocess.run([sys.executable, "-m", "launch.slurm.sbatch", "--dry_run", *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)


def test_dry_run_prints_the_exact_script_and_sbatch_command():
    proc = _dry_run("--nodes=4", "--gpus_per_node=4", "--cpus_per_task=12", "--time=2-00:00:00",
                    "--partition=a100", "--account=lab", "--env=KDJAX_DATA_DIR=/shared/data",
                    f"--command={JOB}")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "#!/bin/bash"
    directives = [ln for ln in lines if ln.startswith("#SBATCH")]
    assert directives == ["#SBATCH --job-name=kdjax", "#SBATCH --nodes=4",
                          "#SBATCH --ntasks-per-node=4", "#SBATCH --gpus-per-node=4",
                          "#SBATCH --cpus-per-task=12", "#SBATCH --time=2-00:00:00",
                          "#SBATCH --output=kdjax-%j.out", "#SBATCH --partition=a100",
                          "#SBATCH --account=lab"]
    first_command = next(i for i, ln in enumerate(lines) if not ln.startswith("#"))
    assert all(ln.startswith("#") for ln in lines[:first_command])  # directives come first
    assert "export KDJAX_DATA_DIR=/shared/data" in lines
    srun = shlex.split(lines[-2])
    assert srun == ["srun", "--kill-on-bad-exit=1", "bash", "-c",
                    "python -m launch.main --multihost --config=experiments/quickstart.py "
                    "--workdir=/shared/run 1"]
    assert lines[-1] == "sbatch runs/slurm/kdjax.sbatch"
    assert subprocess.run(["bash", "-n"], input=proc.stdout, text=True).returncode == 0


def test_committed_script_is_the_generated_default_and_errors_are_one_line():
    with open(os.path.join(ROOT, "launch", "slurm", "kdjax.sbatch")) as f:
        assert f.read() == sbatch.script(sbatch.Job())
    with pytest.raises(ValueError, match="--time"):
        sbatch.Job(time="forever")
    with pytest.raises(ValueError, match="--nodes"):
        sbatch.Job(nodes=0)
    with pytest.raises(ValueError, match="--env"):
        sbatch.Job(env=("NOEQUALS",))
    proc = _dry_run("--nodes=2")
    assert proc.returncode != 0 and "--command is required" in proc.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _fake_slurm(tmp_path):
    """(env, logs dir): a 1-node, 2-task SLURM allocation whose `srun` runs here."""
    bindir, logs = tmp_path / "bin", tmp_path / "logs"
    bindir.mkdir(), logs.mkdir()
    (bindir / "srun").write_text(FAKE_SRUN)
    (bindir / "srun").chmod(stat.S_IRWXU)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "XLA_FLAGS"))}
    env.update(PATH=f"{bindir}{os.pathsep}{env['PATH']}", SRUN_LOG_DIR=str(logs),
               SLURM_SUBMIT_DIR=ROOT, KDJAX_VENV=os.path.dirname(os.path.dirname(sys.executable)),
               SLURM_JOB_ID="4242", SLURM_JOB_NODELIST="localhost", SLURM_NTASKS="2",
               SLURM_JOB_NUM_NODES="1", JAX_COORDINATOR_PORT=str(_free_port()),
               JAX_PLATFORMS="cpu")
    return env, logs


def test_script_under_fake_srun_jax_autodetects_slurm(tmp_path):
    env, logs = _fake_slurm(tmp_path)
    code = ("import jax; jax.distributed.initialize(); "
            "print('rank', jax.process_index(), 'of', jax.process_count())")
    proc = subprocess.run(["bash", os.path.join(ROOT, "launch", "slurm", "kdjax.sbatch"),
                           "python", "-c", code], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=120)
    task_logs = [(logs / f"task{i}.log").read_text() for i in range(2)]
    assert proc.returncode == 0, proc.stderr + "\n".join(task_logs)
    assert "srun option: --kill-on-bad-exit=1" in proc.stderr
    for i, log in enumerate(task_logs):
        assert f"rank {i} of 2" in log, log[-2000:]


def test_reproduce_multihost_flag_runs_points_in_process():
    proc = subprocess.run([sys.executable, "-m", "launch.reproduce", "--multihost",
                           "--parallel=2", "--list"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode != 0 and "--multihost runs the points in-process" in proc.stderr


@pytest.mark.slow
def test_reproduce_multihost_under_fake_srun_joins_two_processes(tmp_path):
    """The committed script, its command as arguments: --multihost is appended, and both tasks
    of `launch.reproduce --multihost` join one jax.distributed job through SLURM's variables."""
    env, logs = _fake_slurm(tmp_path)
    report = tmp_path / "R.md"
    proc = subprocess.run(
        ["bash", os.path.join(ROOT, "launch", "slurm", "kdjax.sbatch"), "python", "-m",
         "launch.reproduce", "--write_report", f"--report_path={report}",
         f"--workdir={tmp_path / 'repro'}", "--compilation_cache=", "--verbosity=0"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
    task_logs = [(logs / f"task{i}.log").read_text() for i in range(2)]
    assert proc.returncode == 0, proc.stdout + proc.stderr + "\n".join(t[-2000:] for t in task_logs)
    assert "srun option: --kill-on-bad-exit=1" in proc.stderr
    assert proc.stdout.startswith("kdjax: 1 node(s), 2 task(s): python -m launch.reproduce")
    assert proc.stdout.rstrip().endswith("--multihost")
    for i, log in enumerate(task_logs):
        assert f"JAX process {i}/2" in log, log[-2000:]
    assert report.exists()
