"""Dry-run tests of launch/tpu: the exact gcloud commands, worker=all, command quoting."""
import os
import shlex
import subprocess
import sys

import pytest

from launch.tpu import tpu_vm

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
JOB = ("python -m launch.main --config=experiments/quickstart.py "
       "--config.train.epochs=3 --workdir=gs://bucket/run 1")  # note: a space inside


def _dry_run(*args, env=None):
  proc = subprocess.run([sys.executable, "-m", "launch.tpu.tpu_vm", "--dry_run", *args],
                        cwd=ROOT, capture_output=True, text=True, env=env, timeout=60)
  return proc


def test_launch_v4_32_dry_run_exact_commands():
  proc = _dry_run("--action=launch", "--name=kd-pod", "--zone=us-central2-b",
                  "--accelerator_type=v4-32", "--version=tpu-ubuntu2204-base",
                  "--project=my-proj", "--repo_url=https://github.com/me/kdjax.git",
                  f"--command={JOB}")
  assert proc.returncode == 0, proc.stderr
  lines = proc.stdout.strip().splitlines()
  assert len(lines) == 3
  argvs = [shlex.split(line) for line in lines]
  assert argvs[0] == ["gcloud", "compute", "tpus", "tpu-vm", "create", "kd-pod",
                      "--zone=us-central2-b", "--project=my-proj",
                      "--accelerator-type=v4-32", "--version=tpu-ubuntu2204-base"]
  for argv in argvs[1:]:
    assert argv[:6] == ["gcloud", "compute", "tpus", "tpu-vm", "ssh", "kd-pod"]
    assert "--worker=all" in argv and "--zone=us-central2-b" in argv
    assert sum(a.startswith("--command=") for a in argv) == 1  # one argv element
  install = argvs[1][-1][len("--command="):]
  assert "git clone --depth=1 --branch main https://github.com/me/kdjax.git kdjax" in install
  assert "pip install -q -e '.[tpu]'" in install
  run = argvs[2][-1]
  assert run == f"--command=cd kdjax && source ~/kdjax-venv/bin/activate && {JOB}"
  assert "4 host(s)" in proc.stderr


def test_remote_command_survives_the_remote_shell():
  """The worker's bash must see JOB as the same words we passed (quoting round trip)."""
  job = "python -m launch.main --config='a b.py' --workdir=gs://x/\"q\" && echo $HOME"
  t = tpu_vm.Target("kd", "us-central2-b")
  argv = tpu_vm.plan("run", t, command=job)[0]
  remote = argv[-1][len("--command="):]
  assert shlex.split(remote)[-len(shlex.split(job)):] == shlex.split(job)
  bg = tpu_vm.run_remote(job, background=True)
  words = shlex.split(bg)
  assert words[:3] == ["nohup", "bash", "-c"]
  assert words[3] == f"cd kdjax && source ~/kdjax-venv/bin/activate && {job}"
  assert words[4:] == [">", "~/kdjax-run.log", "2>&1", "&"]


def test_local_source_install_and_single_host():
  t = tpu_vm.Target("kd-one", "europe-west4-a", "v4-8")
  assert t.num_hosts() == 1 and tpu_vm.Target("kd", "z", "v4-128").num_hosts() == 16
  steps = tpu_vm.plan("up", t, source="local")
  assert steps[0][4:6] == ["create", "kd-one"]
  assert steps[1] == ["git", "archive", "--format=tar.gz", "--output=/tmp/kdjax-src.tar.gz",
                      "HEAD"]
  assert steps[2] == ["gcloud", "compute", "tpus", "tpu-vm", "scp", "/tmp/kdjax-src.tar.gz",
                      "kd-one:kdjax-src.tar.gz", "--zone=europe-west4-a", "--worker=all"]
  assert "tar -xzf kdjax-src.tar.gz -C kdjax" in steps[3][-1]
  assert tpu_vm.plan("delete", t) == [["gcloud", "compute", "tpus", "tpu-vm", "delete",
                                        "kd-one", "--zone=europe-west4-a", "--quiet"]]
  spot = tpu_vm.plan("create", tpu_vm.Target("kd", "z", "v4-8", spot=True))[0]
  assert spot[-1] == "--spot"


def test_errors():
  with pytest.raises(ValueError, match="--name"):
    tpu_vm.Target("Bad_Name", "z")
  with pytest.raises(ValueError, match="accelerator_type"):
    tpu_vm.Target("ok", "z", "v4")
  t = tpu_vm.Target("ok", "z")
  with pytest.raises(ValueError, match="--command is required"):
    tpu_vm.plan("run", t, command="  ")
  with pytest.raises(ValueError, match="--repo_url is required"):
    tpu_vm.plan("install", t)
  proc = _dry_run("--action=run", "--name=ok")
  assert proc.returncode != 0 and "--command is required" in proc.stderr


def test_shell_script_dry_run():
  env = dict(os.environ, PROJECT="p", BUCKET="gs://b", REPO="https://h/k.git", RUN="r1",
             PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
  proc = subprocess.run(["bash", os.path.join(ROOT, "launch/tpu/v4_32.sh"), "--dry_run"],
                        capture_output=True, text=True, env=env, timeout=60)
  assert proc.returncode == 0, proc.stderr
  last = shlex.split(proc.stdout.strip().splitlines()[-1])
  assert "--worker=all" in last and last[5] == "kdjax-v4-32"
  assert shlex.split(last[-1][len("--command="):])[:3] == ["nohup", "bash", "-c"]
  assert "--workdir=gs://b/r1" in last[-1]
