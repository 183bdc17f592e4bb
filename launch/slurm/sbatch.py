r"""Multi-node GPU jobs on SLURM: write a batch script and submit it with `sbatch`.

One JAX process per GPU: `srun` starts `--nodes` x `--gpus_per_node` tasks, each running the
same command with `--multihost`, so `jax.distributed.initialize()` reads SLURM's variables
(SLURM_JOB_ID, SLURM_STEP_NODELIST, SLURM_NTASKS, SLURM_PROCID, SLURM_LOCALID): the
coordinator is the first node, process i = SLURM_PROCID, and each process gets the GPU
SLURM_LOCALID. The workdir must be shared by all nodes (a network filesystem or gs://).

  python -m launch.slurm.sbatch --nodes=2 --gpus_per_node=8 --partition=gpu --time=24:00:00 \
      --command="python -m launch.main --config=experiments/cifar100_kd.py --workdir=/shared/c100" \
      --dry_run           # prints the script and the sbatch command; drop --dry_run to submit

`launch/slurm/kdjax.sbatch` is this script for the default flags, taking the command as its
arguments: `sbatch --nodes=4 launch/slurm/kdjax.sbatch python -m launch.main --config=...`.
"""
from __future__ import annotations

import dataclasses
import os
import re
import shlex
import subprocess
import sys
from typing import Optional, Sequence

from absl import app, flags

from launch.multihost import with_multihost

_TIME_RE = re.compile(r"^([0-9]+-)?[0-9]{1,2}(:[0-9]{2}){0,2}$")
_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]+$")


@dataclasses.dataclass(frozen=True)
class Job:
    """What `sbatch` gets: the allocation and the command every task runs."""
    nodes: int = 2
    gpus_per_node: int = 8
    cpus_per_task: int = 8
    time: str = "24:00:00"
    job_name: str = "kdjax"
    partition: Optional[str] = None
    account: Optional[str] = None
    output: str = "kdjax-%j.out"
    venv: str = ".venv"
    command: Optional[str] = None     # None: the script runs its own arguments
    env: tuple = ()                   # ("KEY=VALUE", ...) exported before srun

    def __post_init__(self):
        for name in ("nodes", "gpus_per_node", "cpus_per_task"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name} must be >= 1, got {getattr(self, name)}")
        if not _TIME_RE.match(self.time):
            raise ValueError(f"--time must look like 24:00:00 or 2-00:00:00, got {self.time!r}")
        for name in ("job_name", "partition", "account"):
            value = getattr(self, name)
            if value is not None and not _NAME_RE.match(value):
                raise ValueError(f"--{name} must be letters, digits, '_', '.', '-': {value!r}")
        if self.command is not None and not self.command.strip():
            raise ValueError("--command is empty")
        for kv in self.env:
            key, sep, _ = kv.partition("=")
            if not sep or not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", key):
                raise ValueError(f"--env wants KEY=VALUE, got {kv!r}")


def script(job: Job) -> str:
    """The batch script: #SBATCH directives, the venv, the exports, one srun of the command."""
    lines = ["#!/bin/bash",
             "# kdjax on SLURM: one JAX process per GPU; jax.distributed.initialize() (via",
             "# --multihost) finds the coordinator and its rank from SLURM's variables.",
             "# Written by `python -m launch.slurm.sbatch` (launch/slurm/sbatch.py).",
             f"#SBATCH --job-name={job.job_name}",
             f"#SBATCH --nodes={job.nodes}",
             f"#SBATCH --ntasks-per-node={job.gpus_per_node}",
             f"#SBATCH --gpus-per-node={job.gpus_per_node}",
             f"#SBATCH --cpus-per-task={job.cpus_per_task}",
             f"#SBATCH --time={job.time}",
             f"#SBATCH --output={job.output}"]
    if job.partition:
        lines.append(f"#SBATCH --partition={job.partition}")
    if job.account:
        lines.append(f"#SBATCH --account={job.account}")
    lines += ["set -euo pipefail",
              'cd "${SLURM_SUBMIT_DIR:-$PWD}"',
              f'source "${{KDJAX_VENV:-{job.venv}}}/bin/activate"',
              "# grain decoding workers per process: the CPUs SLURM gave the task",
              'export KDJAX_DATA_WORKERS="${KDJAX_DATA_WORKERS:-${SLURM_CPUS_PER_TASK:-1}}"']
    for kv in job.env:
        key, _, value = kv.partition("=")
        lines.append(f"export {key}={shlex.quote(value)}")
    if job.command is None:
        lines += ['[ $# -gt 0 ] || { echo "usage: sbatch kdjax.sbatch python -m launch.main '
                  '--config=... --workdir=..." >&2; exit 2; }',
                  "# every task of a kdjax entry point needs --multihost",
                  'case " $* " in *" -m launch.main "*|*" -m launch.reproduce "*)',
                  '  case " $* " in *" --multihost "*) ;; *) set -- "$@" --multihost ;; esac ;;',
                  "esac",
                  'echo "kdjax: ${SLURM_JOB_NUM_NODES:-?} node(s), ${SLURM_NTASKS:-?} task(s): $*"',
                  'srun --kill-on-bad-exit=1 "$@"']
    else:
        command = with_multihost(job.command)
        lines += [f'echo "kdjax: ${{SLURM_JOB_NUM_NODES:-?}} node(s), ${{SLURM_NTASKS:-?}} '
                  f'task(s)"',
                  f"srun --kill-on-bad-exit=1 bash -c {shlex.quote(command)}"]
    return "\n".join(lines) + "\n"


def submit_cmd(path: str) -> list[str]:
    return ["sbatch", path]


FLAGS = flags.FLAGS


def define_flags() -> None:
    """The command line (defined only when run as a program, so that importing this module
    beside another launcher in one process, as the tests do, defines no clashing flags)."""
    flags.DEFINE_integer("nodes", 2, "Nodes (hosts).")
    flags.DEFINE_integer("gpus_per_node", 8, "GPUs per node = JAX processes (tasks) per node.")
    flags.DEFINE_integer("cpus_per_task", 8, "CPU cores per task (grain's decoding workers).")
    flags.DEFINE_string("time", "24:00:00", "Wall-clock limit (HH:MM:SS or D-HH:MM:SS).")
    flags.DEFINE_string("job_name", "kdjax", "SLURM job name.")
    flags.DEFINE_string("partition", None, "SLURM partition.")
    flags.DEFINE_string("account", None, "SLURM account.")
    flags.DEFINE_string("output", "kdjax-%j.out", "Log file (%j = job id).")
    flags.DEFINE_string("venv", ".venv", "The kdjax venv on the nodes (relative to the submit dir).")
    flags.DEFINE_string("command", None, "What every task runs, e.g. 'python -m launch.main "
                        "--config=experiments/x.py --workdir=/shared/run' (--multihost is added).")
    flags.DEFINE_multi_string("env", [], "KEY=VALUE exported in the script (e.g. KDJAX_DATA_DIR=..).")
    flags.DEFINE_string("script", None, "Where to write the script (default runs/slurm/<job>.sbatch).")
    flags.DEFINE_bool("dry_run", False, "Print the script and the sbatch command; submit nothing.")


def main(argv: Sequence[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    if not FLAGS.command:
        raise app.UsageError("--command is required (or sbatch launch/slurm/kdjax.sbatch CMD...)")
    try:
        job = Job(FLAGS.nodes, FLAGS.gpus_per_node, FLAGS.cpus_per_task, FLAGS.time,
                  FLAGS.job_name, FLAGS.partition, FLAGS.account, FLAGS.output, FLAGS.venv,
                  FLAGS.command, tuple(FLAGS.env))
    except ValueError as e:
        raise app.UsageError(str(e)) from e
    path = FLAGS.script or os.path.join("runs", "slurm", f"{job.job_name}.sbatch")
    text = script(job)
    if FLAGS.dry_run:
        print(text, end="")
        print(shlex.join(submit_cmd(path)))
        return
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    print(f"+ {shlex.join(submit_cmd(path))}", flush=True)
    subprocess.run(submit_cmd(path), check=True)


if __name__ == "__main__":
    define_flags()
    app.run(main)
