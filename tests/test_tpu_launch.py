"""Dry-run tests of launch/tpu: the exact gcloud commands, worker=all, command quoting."""
import os
import shlex
import subprocess
import sys
import time

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
    assert install.endswith(" && ".join([
        "sudo DEBIAN_FRONTEND=noninteractive apt-get -qq install -y python3.11 python3.11-venv",
        "if [ -x ~/kdjax-venv/bin/python ] && ! ~/kdjax-venv/bin/python -c 'import sys; "
        "sys.exit(sys.version_info[:2] != (3, 11))'; then rm -rf ~/kdjax-venv; fi",
        "{ [ -x ~/kdjax-venv/bin/python ] || python3.11 -m venv ~/kdjax-venv; }",
        "~/kdjax-venv/bin/python -m pip install -q -U pip",
        "cd kdjax",
        "~/kdjax-venv/bin/python -m pip install -q -e '.[tpu,gcp]'",
        "~/kdjax-venv/bin/python -c 'import sys, jax, kdjax; print(\"python\", "
        "sys.version.split()[0], \"jax\", jax.__version__)'"]))
    assert "sudo add-apt-repository -y ppa:deadsnakes/ppa" in install
    run = argvs[2][-1]
    multihost_job = JOB.replace("-m launch.main ", "-m launch.main --multihost ")
    assert run == f"--command=cd kdjax && source ~/kdjax-venv/bin/activate && {multihost_job}"
    assert "4 host(s)" in proc.stderr
    for remote in (install, run[len("--command="):]):
        assert subprocess.run(["bash", "-n", "-c", remote]).returncode == 0


def test_remote_command_survives_the_remote_shell():
    """The worker's bash must see JOB as the same words we passed (quoting round trip)."""
    job = "python -m launch.main --config='a b.py' --workdir=gs://x/\"q\" && echo $HOME"
    t = tpu_vm.Target("kd", "us-central2-b")
    argv = tpu_vm.plan("run", t, command=job, multihost=False)[0]
    remote = argv[-1][len("--command="):]
    assert shlex.split(remote)[-len(shlex.split(job)):] == shlex.split(job)
    bg = tpu_vm.run_remote(job, background=True, multihost=False)
    words = shlex.split(bg)
    assert words[:4] == ["setsid", "nohup", "bash", "-c"]
    assert words[4] == f"cd kdjax && source ~/kdjax-venv/bin/activate && {job}"
    assert words[5:] == [">", "~/kdjax-run.log", "2>&1", "<", "/dev/null", "&", "echo", "$!",
                         ">", "~/kdjax-run.pid"]


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
    assert shlex.split(last[-1][len("--command="):])[:4] == ["setsid", "nohup", "bash", "-c"]
    assert "--workdir=gs://b/r1" in last[-1]


def test_multihost_is_added_to_every_kdjax_entry_point():
    cmd = ("python -m launch.reproduce --table=t --point=p --workdir=runs/r && "
           "gsutil -m rsync -r runs/r gs://b/r; python -m launch.main --config=c.py --workdir=w")
    got = tpu_vm.run_remote(cmd)
    assert got.endswith("python -m launch.reproduce --multihost --table=t --point=p "
                        "--workdir=runs/r && gsutil -m rsync -r runs/r gs://b/r; "
                        "python -m launch.main --multihost --config=c.py --workdir=w")
    already = "python -m launch.main --multihost --config=c.py"
    assert tpu_vm.run_remote(already).endswith(already)
    assert tpu_vm.run_remote(cmd, multihost=False).endswith(cmd)
    env = tpu_vm.run_remote("python -m launch.main --config=c.py", env=[
        "KDJAX_DATA_DIR=/mnt/disks/data", "TFDS_DATA_DIR=gs://b/tensorflow datasets"])
    assert env == ("cd kdjax && source ~/kdjax-venv/bin/activate && "
                   "export KDJAX_DATA_DIR=/mnt/disks/data && "
                   "export TFDS_DATA_DIR='gs://b/tensorflow datasets' && "
                   "python -m launch.main --multihost --config=c.py")
    with pytest.raises(ValueError, match="KEY=VALUE"):
        tpu_vm.run_remote("python -m launch.main", env=["1BAD=x"])


def test_queued_resources_create_wait_delete_status():
    proc = _dry_run("--action=up", "--queued", "--spot", "--name=kd-q", "--zone=us-central2-b",
                    "--accelerator_type=v4-64", "--project=p", "--source=local")
    assert proc.returncode == 0, proc.stderr
    argvs = [shlex.split(line) for line in proc.stdout.strip().splitlines()]
    assert argvs[0] == ["gcloud", "compute", "tpus", "queued-resources", "create", "kd-q",
                        "--node-id=kd-q", "--zone=us-central2-b", "--project=p",
                        "--accelerator-type=v4-64", "--runtime-version=tpu-ubuntu2204-base",
                        "--spot"]
    assert argvs[1][:2] == ["bash", "-c"]
    assert ("s=$(gcloud compute tpus queued-resources describe kd-q --zone=us-central2-b "
            "--project=p '--format=value(state.state)')") in argvs[1][2]
    assert "ACTIVE) exit 0;; FAILED|SUSPENDED) exit 1;;" in argvs[1][2]
    assert argvs[2][:2] == ["git", "archive"]           # then install as usual (tpu-vm ssh/scp)
    assert argvs[-1][:6] == ["gcloud", "compute", "tpus", "tpu-vm", "ssh", "kd-q"]
    t = tpu_vm.Target("kd-q", "z", "v4-64", project="p", queued=True)
    assert tpu_vm.plan("delete", t) == [["gcloud", "compute", "tpus", "queued-resources",
                                         "delete", "kd-q", "--zone=z", "--project=p", "--force",
                                         "--quiet"]]
    assert tpu_vm.plan("status", t)[0][3:6] == ["queued-resources", "describe", "kd-q"]


def test_wait_loop_stops_on_active_and_on_failed(tmp_path):
    """The queued-resource poll, run against a stand-in gcloud that answers a fixed state."""
    t = tpu_vm.Target("kd-q", "z", queued=True)
    loop = tpu_vm.wait_queued_cmd(t)
    for state, code in (("ACTIVE", 0), ("FAILED", 1)):
        fake = tmp_path / "gcloud"
        fake.write_text(f"#!/bin/bash\necho {state}\n")
        fake.chmod(0o755)
        env = dict(os.environ, PATH=f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
        proc = subprocess.run(loop, env=env, capture_output=True, text=True, timeout=20)
        assert proc.returncode == code and f"queued resource kd-q: {state}" in proc.stdout


def test_data_disk_attached_read_only_and_mounted():
    t = tpu_vm.Target("kd", "us-central2-b", "v4-32", project="p", data_disk="imagenet")
    steps = tpu_vm.plan("up", t, repo_url="https://h/k.git")
    assert steps[0][-1] == ("--data-disk=source=projects/p/zones/us-central2-b/disks/imagenet,"
                            "mode=read-only")
    assert ("sudo mkdir -p /mnt/disks/data && (mountpoint -q /mnt/disks/data || "
            "sudo mount -o ro,noload /dev/sdb /mnt/disks/data)") in steps[1][-1]
    with pytest.raises(ValueError, match="needs --project"):
        tpu_vm.Target("kd", "z", data_disk="imagenet")
    with pytest.raises(ValueError, match="--queued"):
        tpu_vm.Target("kd", "z", project="p", data_disk="imagenet", queued=True)


def test_python_setup_variants_and_a_real_venv(tmp_path):
    uv = " && ".join(tpu_vm.python_setup("3.12", "uv"))
    assert "~/.local/bin/uv venv --seed --python 3.12 ~/kdjax-venv" in uv
    with pytest.raises(ValueError, match="3.11 or newer"):
        tpu_vm.python_setup("3.10")
    with pytest.raises(ValueError, match="python_install"):
        tpu_vm.python_setup("3.11", "conda")
    # 'system' on this machine (python3 >= 3.11, sudo stubbed): a stale venv of another Python
    # is replaced by a fresh one of the right version.
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "sudo").write_text("#!/bin/bash\necho \"sudo $*\" >&2\n")
    (bindir / "sudo").chmod(0o755)
    (bindir / "python3").write_text(   # this Python; venvs without pip to keep the test fast
        f'#!/bin/bash\nif [ "$1 $2" = "-m venv" ]; then shift 2; '
        f'exec {sys.executable} -m venv --without-pip "$@"; fi\nexec {sys.executable} "$@"\n')
    (bindir / "python3").chmod(0o755)
    stale = tmp_path / "home" / "kdjax-venv" / "bin"
    stale.mkdir(parents=True)
    (stale / "python").write_text("#!/bin/bash\nexit 1\n")   # 'not 3.11'
    (stale / "python").chmod(0o755)
    major, minor = sys.version_info[:2]
    env = dict(os.environ, HOME=str(tmp_path / "home"),
               PATH=f"{bindir}{os.pathsep}{os.environ['PATH']}")
    line = "set -e && " + " && ".join(tpu_vm.python_setup(f"{major}.{minor}", "system"))
    proc = subprocess.run(["bash", "-c", line], env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = subprocess.run([str(stale / "python"), "-c", "import sys; print(sys.version_info[:2])"],
                         capture_output=True, text=True)
    assert out.stdout.strip() == str((major, minor))


def test_install_waits_for_the_apt_lock_first():
    t = tpu_vm.Target("kd", "z")
    install = tpu_vm.plan("install", t, repo_url="https://h/k.git")[0][-1][len("--command="):]
    # after `set -e`, before any apt-get
    assert install.startswith(" && ".join(["set -e", *tpu_vm.APT_WAIT, "sudo apt-get"]))
    assert "DPkg::Lock::Timeout" in install and "/var/lib/apt/lists/lock" in install
    assert subprocess.run(["bash", "-n", "-c", install]).returncode == 0


def test_stop_sends_sigterm_to_the_background_run_and_waits(tmp_path):
    """`--action=stop` on a worker (here: this machine, HOME=tmp_path): the background run's
    process group gets SIGTERM, the line waits until it has exited."""
    t = tpu_vm.Target("kd", "z")
    (argv,) = tpu_vm.plan("stop", t)
    assert argv[:6] == ["gcloud", "compute", "tpus", "tpu-vm", "ssh", "kd"]
    assert "--worker=all" in argv and argv[-1] == f"--command={tpu_vm.stop_remote()}"
    env = dict(os.environ, HOME=str(tmp_path))
    job = ("python3 -c \"import signal, sys, time; signal.signal(signal.SIGTERM, lambda *a: "
           "(print('checkpointed', flush=True), sys.exit(0))); print('up', flush=True); "
           "time.sleep(60)\"")
    (tmp_path / "kdjax").mkdir()                  # the checkout and venv run_remote enters
    (tmp_path / "kdjax-venv" / "bin").mkdir(parents=True)
    (tmp_path / "kdjax-venv" / "bin" / "activate").write_text("")
    subprocess.run(["bash", "-c", tpu_vm.run_remote(job, background=True, multihost=False)],
                   env=env, cwd=tmp_path, check=True)
    log = tmp_path / "kdjax-run.log"
    for _ in range(100):
        if log.exists() and "up" in log.read_text():
            break
        time.sleep(0.1)
    out = subprocess.run(["bash", "-c", tpu_vm.stop_remote()], env=env, capture_output=True,
                         text=True, timeout=60).stdout
    assert "SIGTERM sent" in out and log.read_text() == "up\ncheckpointed\n"
    again = subprocess.run(["bash", "-c", tpu_vm.stop_remote()], env=env, capture_output=True,
                           text=True, timeout=60).stdout
    assert "no kdjax run" in again
