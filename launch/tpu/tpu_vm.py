r"""Create a Cloud TPU VM, install kdjax on every worker, run the same command on all workers.

Builds the `gcloud compute tpus tpu-vm ...` argument lists and runs them (or, with --dry_run,
prints them, one shell-quoted command per line). Multi-host slices (e.g. v4-32 = 4 hosts) run
the command on every worker at once (`--worker=all`); inside, `jax.distributed.initialize()`
finds the other hosts by itself.

  python -m launch.tpu.tpu_vm --action=launch --name=kd-v4-8 --zone=us-central2-b \
      --accelerator_type=v4-8 --project=my-proj --repo_url=https://github.com/me/kdjax.git \
      --command="python -m launch.main --config=experiments/quickstart.py --workdir=gs://b/run1"
"""
from __future__ import annotations

import dataclasses
import re
import shlex
import subprocess
import sys
from typing import Optional, Sequence

from absl import app, flags

ACTIONS = ("create", "install", "run", "up", "launch", "delete", "status")

FLAGS = flags.FLAGS
flags.DEFINE_enum("action", "launch", ACTIONS,
                  "create: the TPU VM; install: kdjax on every worker; run: --command on every "
                  "worker; up: create+install; launch: create+install+run; delete; status.")
flags.DEFINE_string("name", None, "TPU VM name (lowercase letters, digits, '-').")
flags.DEFINE_string("zone", "us-central2-b", "GCP zone (v4 TPUs: us-central2-b).")
flags.DEFINE_string("accelerator_type", "v4-8", "TPU type: v4-8 (1 host), v4-32 (4 hosts), ...")
flags.DEFINE_string("version", "tpu-ubuntu2204-base", "TPU VM software version (runtime image).")
flags.DEFINE_string("project", None, "GCP project (default: gcloud's configured project).")
flags.DEFINE_string("command", None,
                    "Command run on all workers in the kdjax checkout with its venv active, e.g. "
                    "'python -m launch.main --config=experiments/x.py --workdir=gs://bucket/run'.")
flags.DEFINE_bool("dry_run", False, "Print the gcloud commands instead of running them.")
flags.DEFINE_enum("source", "git", ("git", "local"),
                  "git: clone --repo_url on every worker; local: `git archive HEAD` of this "
                  "checkout, scp'd to every worker.")
flags.DEFINE_string("repo_url", None, "Git URL to clone (source=git).")
flags.DEFINE_string("branch", "main", "Branch to clone (source=git).")
flags.DEFINE_bool("spot", False, "Create a Spot (preemptible) TPU VM.")
flags.DEFINE_bool("background", False,
                  "Run --command under nohup on the workers (log: ~/kdjax-run.log), so the job "
                  "survives this terminal disconnecting.")

REMOTE_DIR = "kdjax"            # relative to the worker's home directory
VENV = "~/kdjax-venv"
LOG = "~/kdjax-run.log"
LOCAL_TARBALL = "/tmp/kdjax-src.tar.gz"
_NAME_RE = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
_ACCEL_RE = re.compile(r"^v[0-9]+[a-z]*(pod)?-[0-9]+$")


@dataclasses.dataclass(frozen=True)
class Target:
  """Where and what: one TPU VM (all its workers)."""
  name: str
  zone: str
  accelerator_type: str = "v4-8"
  version: str = "tpu-ubuntu2204-base"
  project: Optional[str] = None
  spot: bool = False

  def __post_init__(self):
    if not self.name or not _NAME_RE.match(self.name):
      raise ValueError(f"--name must be lowercase letters/digits/'-' starting with a letter, "
                       f"got {self.name!r}")
    if not _ACCEL_RE.match(self.accelerator_type):
      raise ValueError(f"--accelerator_type looks wrong: {self.accelerator_type!r} "
                       "(expected e.g. v4-8, v4-32, v5litepod-16)")
    if not self.zone:
      raise ValueError("--zone is required")

  def num_hosts(self) -> Optional[int]:
    """Hosts in a v4 slice (8 TensorCores per host); None for other generations."""
    m = re.match(r"^v4-([0-9]+)$", self.accelerator_type)
    return max(1, int(m.group(1)) // 8) if m else None


def _common(t: Target) -> list[str]:
  out = [f"--zone={t.zone}"]
  if t.project:
    out.append(f"--project={t.project}")
  return out


def create_cmd(t: Target) -> list[str]:
  cmd = ["gcloud", "compute", "tpus", "tpu-vm", "create", t.name, *_common(t),
         f"--accelerator-type={t.accelerator_type}", f"--version={t.version}"]
  if t.spot:
    cmd.append("--spot")
  return cmd


def ssh_cmd(t: Target, remote: str) -> list[str]:
  """Runs the bash command line `remote` on every worker (in parallel)."""
  return ["gcloud", "compute", "tpus", "tpu-vm", "ssh", t.name, *_common(t), "--worker=all",
          f"--command={remote}"]


def scp_cmd(t: Target, local: str, remote: str) -> list[str]:
  return ["gcloud", "compute", "tpus", "tpu-vm", "scp", local, f"{t.name}:{remote}",
          *_common(t), "--worker=all"]


def delete_cmd(t: Target) -> list[str]:
  return ["gcloud", "compute", "tpus", "tpu-vm", "delete", t.name, *_common(t), "--quiet"]


def status_cmd(t: Target) -> list[str]:
  return ["gcloud", "compute", "tpus", "tpu-vm", "describe", t.name, *_common(t)]


def install_cmds(t: Target, source: str = "git", repo_url: Optional[str] = None,
                 branch: str = "main") -> list[list[str]]:
  """Fetch the source onto every worker, then a venv with `pip install -e .[tpu]` there."""
  cmds: list[list[str]] = []
  if source == "git":
    if not repo_url:
      raise ValueError("--repo_url is required with --source=git (or use --source=local)")
    q_url, q_branch = shlex.quote(repo_url), shlex.quote(branch)
    fetch = (f"if [ -d {REMOTE_DIR}/.git ]; then git -C {REMOTE_DIR} fetch --depth=1 origin "
             f"{q_branch} && git -C {REMOTE_DIR} checkout -B {q_branch} FETCH_HEAD; "
             f"else git clone --depth=1 --branch {q_branch} {q_url} {REMOTE_DIR}; fi")
  elif source == "local":
    cmds.append(["git", "archive", "--format=tar.gz", f"--output={LOCAL_TARBALL}", "HEAD"])
    cmds.append(scp_cmd(t, LOCAL_TARBALL, "kdjax-src.tar.gz"))
    fetch = (f"rm -rf {REMOTE_DIR} && mkdir {REMOTE_DIR} && "
             f"tar -xzf kdjax-src.tar.gz -C {REMOTE_DIR}")
  else:
    raise ValueError(f"--source must be 'git' or 'local', got {source!r}")
  setup = " && ".join([
      "set -e",
      "sudo apt-get -qq update",
      "sudo DEBIAN_FRONTEND=noninteractive apt-get -qq install -y python3-venv git",
      "(sudo DEBIAN_FRONTEND=noninteractive apt-get -qq install -y dataset-fashion-mnist "
      "|| echo 'dataset-fashion-mnist unavailable: use TFDS datasets')",
      fetch,
      f"python3 -m venv {VENV}",
      f"{VENV}/bin/pip install -q -U pip",
      f"cd {REMOTE_DIR} && {VENV}/bin/pip install -q -e '.[tpu]'",
      f"{VENV}/bin/python -c 'import jax, kdjax; print(\"jax\", jax.__version__)'",
  ])
  cmds.append(ssh_cmd(t, setup))
  return cmds


def run_remote(command: str, background: bool = False) -> str:
  """The bash line each worker runs: cd into the checkout, activate the venv, run `command`."""
  if not command or not command.strip():
    raise ValueError("--command is required for --action=run/launch")
  line = f"cd {REMOTE_DIR} && source {VENV}/bin/activate && {command}"
  if background:
    return f"nohup bash -c {shlex.quote(line)} > {LOG} 2>&1 &"
  return line


def plan(action: str, t: Target, *, command: Optional[str] = None, source: str = "git",
         repo_url: Optional[str] = None, branch: str = "main",
         background: bool = False) -> list[list[str]]:
  """The argument lists `action` runs, in order."""
  if action not in ACTIONS:
    raise ValueError(f"unknown action {action!r}; one of {ACTIONS}")
  steps: list[list[str]] = []
  if action in ("create", "up", "launch"):
    steps.append(create_cmd(t))
  if action in ("install", "up", "launch"):
    steps += install_cmds(t, source, repo_url, branch)
  if action in ("run", "launch"):
    steps.append(ssh_cmd(t, run_remote(command, background)))
  if action == "delete":
    steps.append(delete_cmd(t))
  if action == "status":
    steps.append(status_cmd(t))
  return steps


def execute(steps: Sequence[Sequence[str]], dry_run: bool, out=sys.stdout) -> None:
  for cmd in steps:
    if dry_run:
      print(shlex.join(cmd), file=out)
    else:
      print(f"+ {shlex.join(cmd)}", file=out, flush=True)
      subprocess.run(list(cmd), check=True)


def main(argv: Sequence[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  try:
    t = Target(FLAGS.name, FLAGS.zone, FLAGS.accelerator_type, FLAGS.version, FLAGS.project,
               FLAGS.spot)
    steps = plan(FLAGS.action, t, command=FLAGS.command, source=FLAGS.source,
                 repo_url=FLAGS.repo_url, branch=FLAGS.branch, background=FLAGS.background)
  except ValueError as e:
    raise app.UsageError(str(e)) from e
  hosts = t.num_hosts()
  if hosts:
    print(f"# {t.accelerator_type}: {hosts} host(s); commands run on --worker=all",
          file=sys.stderr)
  execute(steps, FLAGS.dry_run)


if __name__ == "__main__":
  flags.mark_flag_as_required("name")
  app.run(main)
