r"""Create a Cloud TPU VM, install kdjax on every worker, run the same command on all workers.

Builds the `gcloud compute tpus tpu-vm ...` argument lists and runs them (or, with --dry_run,
prints them, one shell-quoted command per line). Multi-host slices (e.g. v4-32 = 4 hosts) run
the command on every worker at once (`--worker=all`), with `--multihost` added to its
`launch.main` / `launch.reproduce` calls, so `jax.distributed.initialize()` finds the other
hosts. Workers get Python >= 3.11 (TPU VM images ship 3.10: deadsnakes or uv installs it),
optionally a read-only data disk, and the TPU can be requested as a queued resource.

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

from launch.multihost import runs_kdjax, with_multihost

ACTIONS = ("create", "install", "run", "up", "launch", "stop", "delete", "status")
PYTHON_INSTALLS = ("deadsnakes", "uv", "system")

FLAGS = flags.FLAGS
flags.DEFINE_enum("action", "launch", ACTIONS,
                  "create: the TPU VM; install: kdjax on every worker; run: --command on every "
                  "worker; up: create+install; launch: create+install+run; stop: SIGTERM to "
                  "the --background run on every worker (it checkpoints and exits; `run` "
                  "resumes it); delete: the TPU VM; status.")
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
flags.DEFINE_bool("multihost", True,
                  "Add --multihost to the `python -m launch.main` / `launch.reproduce` calls in "
                  "--command (jax.distributed.initialize() on every worker; harmless on 1 host).")
flags.DEFINE_enum("python_install", "deadsnakes", PYTHON_INSTALLS,
                  "How workers get Python >= 3.11 for the venv: deadsnakes (apt PPA), uv "
                  "(a standalone CPython), system (the image's python3, if it is >= 3.11).")
flags.DEFINE_string("python", "3.11", "Python version of the workers' venv (>= 3.11).")
flags.DEFINE_string("extras", "tpu,gcp", "pip extras installed on the workers.")
flags.DEFINE_bool("queued", False,
                  "Create through `gcloud compute tpus queued-resources create` (waits until "
                  "the slice is ACTIVE); delete/status act on the queued resource.")
flags.DEFINE_string("data_disk", None,
                    "A persistent disk (name, or projects/P/zones/Z/disks/NAME) attached "
                    "read-only to every worker at create and mounted at /mnt/disks/data.")
flags.DEFINE_multi_string("env", [], "KEY=VALUE exported before --command on every worker, "
                          "e.g. KDJAX_DATA_DIR=/mnt/disks/data or TFDS_DATA_DIR=gs://b/tfds.")

REMOTE_DIR = "kdjax"            # relative to the worker's home directory
VENV = "~/kdjax-venv"
LOG = "~/kdjax-run.log"
PIDFILE = "~/kdjax-run.pid"     # process group of the --background run (for --action=stop)
STOP_WAIT_S = 600
# A fresh TPU VM runs unattended-upgrades at boot, holding apt's locks for minutes: wait for
# them (apt's own lock timeout, and a bounded wait on the lists lock `apt-get update` takes).
APT_WAIT = (
    "echo 'DPkg::Lock::Timeout \"900\";' | sudo tee /etc/apt/apt.conf.d/90kdjax-lock-wait "
    ">/dev/null",
    "for i in $(seq 180); do sudo fuser /var/lib/dpkg/lock-frontend /var/lib/dpkg/lock "
    "/var/lib/apt/lists/lock >/dev/null 2>&1 || break; "
    "if [ $i = 1 ]; then echo 'waiting for the apt lock (unattended-upgrades)'; fi; sleep 5; "
    "done")
LOCAL_TARBALL = "/tmp/kdjax-src.tar.gz"
DATA_MOUNT = "/mnt/disks/data"
DATA_DEVICE = "/dev/sdb"       # the first attached data disk on a TPU VM worker
QUEUED_POLL_S = 30
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
    queued: bool = False
    data_disk: Optional[str] = None

    def __post_init__(self):
        if not self.name or not _NAME_RE.match(self.name):
            raise ValueError(f"--name must be lowercase letters/digits/'-' starting with a letter, "
                             f"got {self.name!r}")
        if not _ACCEL_RE.match(self.accelerator_type):
            raise ValueError(f"--accelerator_type looks wrong: {self.accelerator_type!r} "
                             "(expected e.g. v4-8, v4-32, v5litepod-16)")
        if not self.zone:
            raise ValueError("--zone is required")
        if self.data_disk and self.queued:
            raise ValueError("--data_disk is attached by `tpu-vm create`; with --queued create the "
                             "slice first, then attach the disk (gcloud alpha compute tpus tpu-vm "
                             "attach-disk) or stage the data on each worker")
        if self.data_disk and "/" not in self.data_disk and not self.project:
            raise ValueError("--data_disk=NAME needs --project (or give "
                             "projects/P/zones/Z/disks/NAME)")

    def disk_source(self) -> Optional[str]:
        if not self.data_disk:
            return None
        if "/" in self.data_disk:
            return self.data_disk
        return f"projects/{self.project}/zones/{self.zone}/disks/{self.data_disk}"

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
    if t.queued:
        cmd = ["gcloud", "compute", "tpus", "queued-resources", "create", t.name,
               f"--node-id={t.name}", *_common(t), f"--accelerator-type={t.accelerator_type}",
               f"--runtime-version={t.version}"]
    else:
        cmd = ["gcloud", "compute", "tpus", "tpu-vm", "create", t.name, *_common(t),
               f"--accelerator-type={t.accelerator_type}", f"--version={t.version}"]
    if t.spot:
        cmd.append("--spot")
    if t.data_disk:
        cmd.append(f"--data-disk=source={t.disk_source()},mode=read-only")
    return cmd


def wait_queued_cmd(t: Target) -> list[str]:
    """Polls the queued resource until its slice is ACTIVE (fails if it FAILED/SUSPENDED)."""
    describe = shlex.join(["gcloud", "compute", "tpus", "queued-resources", "describe", t.name,
                           *_common(t), "--format=value(state.state)"])
    loop = (f"while true; do s=$({describe}); echo \"queued resource {t.name}: $s\"; "
            f"case $s in ACTIVE) exit 0;; FAILED|SUSPENDED) exit 1;; esac; "
            f"sleep {QUEUED_POLL_S}; done")
    return ["bash", "-c", loop]


def ssh_cmd(t: Target, remote: str) -> list[str]:
    """Runs the bash command line `remote` on every worker (in parallel)."""
    return ["gcloud", "compute", "tpus", "tpu-vm", "ssh", t.name, *_common(t), "--worker=all",
            f"--command={remote}"]


def scp_cmd(t: Target, local: str, remote: str) -> list[str]:
    return ["gcloud", "compute", "tpus", "tpu-vm", "scp", local, f"{t.name}:{remote}",
            *_common(t), "--worker=all"]


def delete_cmd(t: Target) -> list[str]:
    if t.queued:   # --force also deletes the slice it holds
        return ["gcloud", "compute", "tpus", "queued-resources", "delete", t.name, *_common(t),
                "--force", "--quiet"]
    return ["gcloud", "compute", "tpus", "tpu-vm", "delete", t.name, *_common(t), "--quiet"]


def status_cmd(t: Target) -> list[str]:
    if t.queued:
        return ["gcloud", "compute", "tpus", "queued-resources", "describe", t.name, *_common(t)]
    return ["gcloud", "compute", "tpus", "tpu-vm", "describe", t.name, *_common(t)]


def python_setup(python: str = "3.11", how: str = "deadsnakes") -> list[str]:
    """Shell steps that leave `{VENV}` a venv of Python `python` (>= 3.11) on a worker; an
    existing venv of an older Python is replaced."""
    if how not in PYTHON_INSTALLS:
        raise ValueError(f"--python_install must be one of {PYTHON_INSTALLS}, got {how!r}")
    if not re.match(r"^3\.(1[1-9]|[2-9][0-9])$", python):
        raise ValueError(f"--python must be 3.11 or newer (e.g. 3.11, 3.12), got {python!r}")
    major, minor = python.split(".")
    stale = (f"if [ -x {VENV}/bin/python ] && ! {VENV}/bin/python -c 'import sys; "
             f"sys.exit(sys.version_info[:2] != ({major}, {minor}))'; then rm -rf {VENV}; fi")
    if how == "deadsnakes":
        return [
            "sudo DEBIAN_FRONTEND=noninteractive apt-get -qq install -y software-properties-common",
            "sudo add-apt-repository -y ppa:deadsnakes/ppa",
            "sudo apt-get -qq update",
            f"sudo DEBIAN_FRONTEND=noninteractive apt-get -qq install -y python{python} "
            f"python{python}-venv",
            stale, f"{{ [ -x {VENV}/bin/python ] || python{python} -m venv {VENV}; }}"]
    if how == "uv":
        return [
            "(command -v ~/.local/bin/uv >/dev/null || "
            "curl -LsSf https://astral.sh/uv/install.sh | sh)",
            stale, f"{{ [ -x {VENV}/bin/python ] || ~/.local/bin/uv venv --seed --python {python} "
            f"{VENV}; }}"]
    return [f"{{ python3 -c 'import sys; sys.exit(sys.version_info < ({major}, {minor}))' || "
            f"{{ echo 'the image has python3 < {python}: use --python_install=deadsnakes or uv'; "
            "exit 1; }; }",
            "sudo DEBIAN_FRONTEND=noninteractive apt-get -qq install -y python3-venv",
            stale, f"{{ [ -x {VENV}/bin/python ] || python3 -m venv {VENV}; }}"]


def mount_data_disk() -> str:
    """Mount the read-only data disk on a worker (idempotent)."""
    return (f"sudo mkdir -p {DATA_MOUNT} && (mountpoint -q {DATA_MOUNT} || "
            f"sudo mount -o ro,noload {DATA_DEVICE} {DATA_MOUNT})")


def install_cmds(t: Target, source: str = "git", repo_url: Optional[str] = None,
                 branch: str = "main", python: str = "3.11", python_install: str = "deadsnakes",
                 extras: str = "tpu,gcp") -> list[list[str]]:
    """Fetch the source onto every worker, then a Python >= 3.11 venv with
    `pip install -e .[<extras>]` there (and mount the data disk if there is one)."""
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
    if not re.match(r"^[a-z0-9_,-]*$", extras):
        raise ValueError(f"--extras must be comma-separated extra names, got {extras!r}")
    pip_target = f"'.[{extras}]'" if extras else "."
    setup = " && ".join([
        "set -e",
        *APT_WAIT,
        "sudo apt-get -qq update",
        "sudo DEBIAN_FRONTEND=noninteractive apt-get -qq install -y git curl",
        "(sudo DEBIAN_FRONTEND=noninteractive apt-get -qq install -y dataset-fashion-mnist "
        "|| echo 'dataset-fashion-mnist unavailable: use TFDS datasets')",
        *([mount_data_disk()] if t.data_disk else []),
        fetch,
        *python_setup(python, python_install),
        f"{VENV}/bin/python -m pip install -q -U pip",
        f"cd {REMOTE_DIR} && {VENV}/bin/python -m pip install -q -e {pip_target}",
        f"{VENV}/bin/python -c 'import sys, jax, kdjax; print(\"python\", sys.version.split()[0], "
        "\"jax\", jax.__version__)'",
    ])
    cmds.append(ssh_cmd(t, setup))
    return cmds


def run_remote(command: str, background: bool = False, multihost: bool = True,
               env: Sequence[str] = ()) -> str:
    """The bash line each worker runs: cd into the checkout, activate the venv, export `env`
    (KEY=VALUE), run `command` (with --multihost added to its kdjax entry points)."""
    if not command or not command.strip():
        raise ValueError("--command is required for --action=run/launch")
    if multihost:
        command = with_multihost(command)
    exports = ""
    for kv in env:
        key, sep, value = kv.partition("=")
        if not sep or not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", key):
            raise ValueError(f"--env wants KEY=VALUE, got {kv!r}")
        exports += f"export {key}={shlex.quote(value)} && "
    line = f"cd {REMOTE_DIR} && source {VENV}/bin/activate && {exports}{command}"
    if background:   # its own session: `stop` signals the whole process group
        return (f"setsid nohup bash -c {shlex.quote(line)} > {LOG} 2>&1 < /dev/null & "
                f"echo $! > {PIDFILE}")
    return line


def stop_remote() -> str:
    """The bash line that stops the --background run on a worker: SIGTERM to its process group
    (kdjax writes a checkpoint and exits), then wait up to STOP_WAIT_S for it to end."""
    return (f"if [ -f {PIDFILE} ] && kill -TERM -- -$(cat {PIDFILE}) 2>/dev/null; then "
            f"echo \"$(hostname): SIGTERM sent to the kdjax run\"; "
            f"for i in $(seq {STOP_WAIT_S}); do kill -0 -- -$(cat {PIDFILE}) 2>/dev/null || "
            f"break; sleep 1; done; rm -f {PIDFILE}; "
            f"else echo \"$(hostname): no kdjax run in the background\"; fi")


def plan(action: str, t: Target, *, command: Optional[str] = None, source: str = "git",
         repo_url: Optional[str] = None, branch: str = "main", background: bool = False,
         multihost: bool = True, env: Sequence[str] = (), python: str = "3.11",
         python_install: str = "deadsnakes", extras: str = "tpu,gcp") -> list[list[str]]:
    """The argument lists `action` runs, in order."""
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}; one of {ACTIONS}")
    steps: list[list[str]] = []
    if action in ("run", "launch"):
        remote = run_remote(command, background, multihost, env)   # check it before creating
    if action in ("create", "up", "launch"):
        steps.append(create_cmd(t))
        if t.queued:
            steps.append(wait_queued_cmd(t))
    if action in ("install", "up", "launch"):
        steps += install_cmds(t, source, repo_url, branch, python, python_install, extras)
    if action in ("run", "launch"):
        steps.append(ssh_cmd(t, remote))
    if action == "stop":
        steps.append(ssh_cmd(t, stop_remote()))
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
                   FLAGS.spot, FLAGS.queued, FLAGS.data_disk)
        steps = plan(FLAGS.action, t, command=FLAGS.command, source=FLAGS.source,
                     repo_url=FLAGS.repo_url, branch=FLAGS.branch, background=FLAGS.background,
                     multihost=FLAGS.multihost, env=FLAGS.env, python=FLAGS.python,
                     python_install=FLAGS.python_install, extras=FLAGS.extras)
    except ValueError as e:
        raise app.UsageError(str(e)) from e
    hosts = t.num_hosts()
    if hosts:
        print(f"# {t.accelerator_type}: {hosts} host(s); commands run on --worker=all",
              file=sys.stderr)
    if FLAGS.command and FLAGS.multihost and not runs_kdjax(FLAGS.command):
        print("# --command calls no launch.main/launch.reproduce: on a multi-host slice it must "
              "call jax.distributed.initialize() itself", file=sys.stderr)
    execute(steps, FLAGS.dry_run)


if __name__ == "__main__":
    flags.mark_flag_as_required("name")
    app.run(main)
