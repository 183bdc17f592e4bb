r"""A pod rehearsal on one machine: N processes x M CPU devices through the real entry point.

Every process runs `python -m launch.main --multihost ...` with the environment SLURM gives a
task (SLURM_JOB_ID, SLURM_STEP_NODELIST, SLURM_NTASKS, SLURM_PROCID, SLURM_LOCALID, ...), so
`jax.distributed.initialize()` finds the coordinator (localhost, port from the job id) and its
rank by the same cluster auto-detection a real job uses; the processes talk over JAX's CPU
collectives (gloo). The run trains until its first checkpoint after `--kill_after_steps`
steps, every process is killed (SIGKILL, as a lost slice), and the same command resumes it on a
different topology (`--resume_processes` x `--resume_cpu_devices`) to the end; the rehearsal
passes when every process of the resumed run exits 0, it resumed from the checkpoint and
`results.json` is written.

    python -m launch.rehearse --config=tests/configs/tiny.py --workdir=/tmp/rehearsal \
        --processes=2 --cpu_devices=4 --resume_processes=1 --resume_cpu_devices=8 \
        -- --config.train.epochs=2

Arguments after `--` go to `launch.main` as they are (config overrides, e.g. fewer epochs);
unless they set `train.checkpoint_every_steps`, it is `--kill_after_steps` (both runs).
`--kill_after_steps=0` runs once to the end on the first topology, without a kill.
"""
from __future__ import annotations

import dataclasses
import glob
import os
import signal
import socket
import subprocess
import sys
import time
from typing import Sequence

from absl import app, flags

from kdjax import children

_CONFIG = flags.DEFINE_string("config", None, "Config file (and :arg) for launch.main.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Workdir of the rehearsed run (local).")
_PROCESSES = flags.DEFINE_integer("processes", 2, "Processes of the first run.", lower_bound=1)
_CPU_DEVICES = flags.DEFINE_integer("cpu_devices", 4, "CPU devices per process, first run.",
                                    lower_bound=1)
_RESUME_PROCESSES = flags.DEFINE_integer("resume_processes", 1,
                                         "Processes of the resumed run.", lower_bound=1)
_RESUME_CPU_DEVICES = flags.DEFINE_integer("resume_cpu_devices", 8,
                                           "CPU devices per process, resumed run.",
                                           lower_bound=1)
_KILL_AFTER = flags.DEFINE_integer(
    "kill_after_steps", 2, "Kill the first run at its first student checkpoint of at least "
    "this step (0: no kill, one run to the end).", lower_bound=0)
_TIMEOUT = flags.DEFINE_float("timeout", 1800.0, "Seconds each run may take.")
flags.mark_flags_as_required(["config", "workdir"])

PORT_BASE = 65535 - 2**12 + 1     # jax's SlurmCluster: port = job id % 4096 + PORT_BASE


@dataclasses.dataclass
class Job:
    """The processes of one simulated cluster job."""
    procs: list[subprocess.Popen]
    logs: list[str]
    timed_out: bool = False

    def wait(self, timeout: float) -> list[int]:
        """Exit codes of every process (all killed when one fails or time runs out)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            codes = [p.poll() for p in self.procs]
            if all(c is not None for c in codes):
                return codes
            if any(c not in (None, 0) for c in codes):   # a failed rank ends the job
                time.sleep(min(30.0, max(0.0, deadline - time.monotonic())))
                self.kill()
                return [p.wait() for p in self.procs]
            time.sleep(0.2)
        self.timed_out = True
        self.kill()
        return [p.wait() for p in self.procs]

    def kill(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
        for p in self.procs:
            p.wait()

    def output(self, rank: int) -> str:
        with open(self.logs[rank], errors="replace") as f:
            return f.read()


def free_job_id() -> int:
    """A SLURM job id whose coordinator port (jax's rule) is free on localhost."""
    for _ in range(200):
        job = int.from_bytes(os.urandom(3), "little") % 900_000 + 100_000
        with socket.socket() as s:
            try:
                s.bind(("localhost", PORT_BASE + job % 4096))
            except OSError:
                continue
        return job
    raise RuntimeError("no free port for the coordinator")


def slurm_env(rank: int, processes: int, job_id: int) -> dict[str, str]:
    """The variables SLURM sets for task `rank` of a `processes`-task job on one node, the ones
    jax.distributed's cluster auto-detection reads among them."""
    return {"SLURM_JOB_ID": str(job_id), "SLURM_JOBID": str(job_id),
            "SLURM_STEP_ID": "0", "SLURM_JOB_NODELIST": "localhost",
            "SLURM_STEP_NODELIST": "localhost", "SLURM_NODELIST": "localhost",
            "SLURM_JOB_NUM_NODES": "1", "SLURM_NNODES": "1", "SLURM_STEP_NUM_NODES": "1",
            "SLURM_NODEID": "0", "SLURM_NTASKS": str(processes),
            "SLURM_STEP_NUM_TASKS": str(processes), "SLURM_NTASKS_PER_NODE": str(processes),
            "SLURM_PROCID": str(rank), "SLURM_LOCALID": str(rank)}


def start(main_args: Sequence[str], processes: int, cpu_devices: int, logdir: str,
          env: dict[str, str] | None = None) -> Job:
    """`processes` x `python -m launch.main --multihost --cpu_devices=cpu_devices main_args`,
    each with its task's SLURM variables; stdout+stderr of rank i in `logdir/rank<i>.log`."""
    os.makedirs(logdir, exist_ok=True)
    base = {k: v for k, v in (env if env is not None else os.environ).items()
            if not k.startswith("SLURM_") and k != "XLA_FLAGS"}   # --cpu_devices decides
    base["JAX_PLATFORMS"] = "cpu"
    job_id = free_job_id()
    procs, logs = [], []
    for rank in range(processes):
        log = os.path.join(logdir, f"rank{rank}.log")
        cmd = [sys.executable, "-m", "launch.main", "--multihost",
               f"--cpu_devices={cpu_devices}", *main_args]
        with open(log, "w") as out:
            procs.append(subprocess.Popen(cmd, env={**base, **slurm_env(rank, processes, job_id)},
                                          stdout=out, stderr=subprocess.STDOUT,
                                          start_new_session=True,
                                          **children.popen_kwargs()))   # die with us
        logs.append(log)
    return Job(procs, logs)


def checkpoint_steps(workdir: str) -> list[int]:
    """Steps of the run's finished checkpoints (orbax's `<workdir>/checkpoints/<step>`)."""
    out = []
    for p in glob.glob(os.path.join(workdir, "checkpoints", "*")):
        name = os.path.basename(p)
        if name.isdigit() and not glob.glob(p + "*.orbax-checkpoint-tmp*"):
            out.append(int(name))
    return sorted(out)


def kill_at_checkpoint(job: Job, workdir: str, step: int, timeout: float) -> int | None:
    """SIGKILL every process once a checkpoint of at least `step` is on disk; that step, or
    None when the run ended (or time ran out) first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = [s for s in checkpoint_steps(workdir) if s >= step]
        if done:
            job.kill()
            return done[0]
        if all(p.poll() is not None for p in job.procs):
            return None
        time.sleep(0.1)
    job.timed_out = True
    job.kill()
    return None


def _tail(job: Job, rank: int, n: int = 40) -> str:
    """The last `n` lines of a rank's log, without gloo's connection chatter."""
    lines = [x for x in job.output(rank).splitlines() if not x.startswith("[Gloo]")]
    return "\n".join(lines[-n:])


def rehearse(config: str, workdir: str, extra: Sequence[str], *, processes: int,
             cpu_devices: int, resume_processes: int, resume_cpu_devices: int,
             kill_after_steps: int, timeout: float, log=print,
             env: dict[str, str] | None = None) -> dict:
    """Run, kill, resume on another topology; raise RuntimeError naming the failing phase.
    `env`: the processes' environment (default this one's; SLURM_* and XLA_FLAGS replaced)."""
    main_args = [f"--config={config}", f"--workdir={workdir}", *extra]
    if kill_after_steps and not any(a.startswith("--config.train.checkpoint_every_steps")
                                    for a in extra):   # a checkpoint to kill the run at
        main_args.append(f"--config.train.checkpoint_every_steps={kill_after_steps}")
    logs = os.path.join(workdir + ".rehearsal")
    log(f"rehearsal: {processes} process(es) x {cpu_devices} CPU devices: "
        f"python -m launch.main --multihost {' '.join(main_args)}")
    t0 = time.time()
    job = start(main_args, processes, cpu_devices, os.path.join(logs, "first"), env)
    out = {"first": {"processes": processes, "cpu_devices": cpu_devices}}
    if kill_after_steps:
        killed = kill_at_checkpoint(job, workdir, kill_after_steps, timeout)
        codes = [p.returncode for p in job.procs]
        if killed is None:
            how = (f"did not reach a checkpoint of step >= {kill_after_steps} within "
                   f"{timeout:.0f} s" if job.timed_out else f"ended (exit codes {codes}) "
                   f"before a checkpoint of step >= {kill_after_steps}")
            raise RuntimeError(f"the first run {how}; rank 0:\n{_tail(job, 0)}")
        log(f"rehearsal: killed every process at checkpoint step {killed} "
            f"({time.time() - t0:.0f} s)")
        out["first"]["killed_at_step"] = killed
        t0 = time.time()
        log(f"rehearsal: resuming on {resume_processes} process(es) x {resume_cpu_devices} "
            "CPU devices")
        job = start(main_args, resume_processes, resume_cpu_devices,
                    os.path.join(logs, "resume"), env)
        out["resume"] = {"processes": resume_processes, "cpu_devices": resume_cpu_devices}
    codes = job.wait(timeout)
    phase = "resumed" if kill_after_steps else "first"
    if job.timed_out:
        raise RuntimeError(f"the {phase} run did not finish within {timeout:.0f} s (every "
                           f"process killed: a hang?); rank 0:\n{_tail(job, 0)}")
    if any(codes):
        bad = next(i for i, c in enumerate(codes) if c)
        raise RuntimeError(f"the {phase} run failed (exit codes {codes}); rank {bad}:\n"
                           f"{_tail(job, bad)}")
    if kill_after_steps and "Resumed from step" not in job.output(0):
        raise RuntimeError(f"the resumed run did not resume from a checkpoint; rank 0:\n"
                           f"{_tail(job, 0)}")
    if not os.path.exists(os.path.join(workdir, "results.json")):
        raise RuntimeError(f"the {phase} run exited 0 but wrote no results.json")
    log(f"rehearsal: the {phase} run finished ({time.time() - t0:.0f} s); logs in {logs}")
    out["logs"] = logs
    return out


def main(argv):
    extra = argv[1:]
    if "://" in _WORKDIR.value:
        raise app.UsageError("--workdir must be local: the rehearsal watches its checkpoints")
    try:
        rehearse(_CONFIG.value, _WORKDIR.value, extra, processes=_PROCESSES.value,
                 cpu_devices=_CPU_DEVICES.value, resume_processes=_RESUME_PROCESSES.value,
                 resume_cpu_devices=_RESUME_CPU_DEVICES.value,
                 kill_after_steps=_KILL_AFTER.value, timeout=_TIMEOUT.value)
    except RuntimeError as err:
        print(f"error: rehearsal failed: {err}", file=sys.stderr, flush=True)
        sys.exit(1)


if __name__ == "__main__":
    app.run(main)
