"""A failing process ends the job; SIGTERM checkpoints and stops; the re-run is the clean run.

Runs `python -m launch.main` (and `launch.reproduce --multihost`) as a cluster starts it
(`launch.rehearse`: SLURM's variables, `--multihost`, JAX's cluster auto-detection) or as one
process.
"""
import os
import signal
import subprocess
import sys
import time

import pytest

from launch import rehearse
from tests import kill_resume as kr

TINY = f"{kr.ROOT}/tests/configs/tiny.py"
# Raises a one-line error at the 6th training batch of SLURM task `KDJAX_TEST_FAIL_RANK`.
FAULT = '''
import os
if os.environ.get("SLURM_PROCID") == os.environ.get("KDJAX_TEST_FAIL_RANK"):
    from kdjax import errors
    from kdjax.train import loop
    _real = loop.iterate_batches

    def _failing(*args, **kwargs):
        for i, batch in enumerate(_real(*args, **kwargs)):
            if i == 5:
                raise errors.Error("injected failure at batch 6")
            yield batch

    loop.iterate_batches = _failing
'''


def _start_job(tmp_path, args, processes=2, cpu_devices=2, fail_rank=None,
               module="launch.main"):
    """The processes of one simulated SLURM job running `module` (launch.main or
    launch.reproduce) with --multihost; (procs, log paths)."""
    hook = tmp_path / "hook"
    hook.mkdir(exist_ok=True)
    (hook / "sitecustomize.py").write_text(FAULT)
    base = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")
            and k != "XLA_FLAGS"}
    base.update(JAX_PLATFORMS="cpu", KDJAX_TEST_FAIL_RANK=str(fail_rank),
                PYTHONPATH=os.pathsep.join([str(hook), kr.ROOT, base.get("PYTHONPATH", "")]))
    job_id = rehearse.free_job_id()
    procs, logs = [], []
    for rank in range(processes):
        logs.append(tmp_path / f"rank{rank}.log")
        with open(logs[-1], "w") as out:
            procs.append(subprocess.Popen(
                [sys.executable, "-m", module, "--multihost",
                 f"--cpu_devices={cpu_devices}", *args], cwd=kr.ROOT, stdout=out,
                stderr=subprocess.STDOUT, env={**base, **rehearse.slurm_env(rank, processes,
                                                                           job_id)}))
    return procs, logs


# What each entry point runs: tiny CE for 20 epochs (the sweep: tests/configs/tiny_sweep.py).
ENTRY = {"launch.main": [f"--config={TINY}:ce", "--config.train.epochs=20"],
         "launch.reproduce": ["--table=tiny_ce_long",
                              "--registry=tests.configs.tiny_sweep:TABLES"]}


# rank 0 hosts the coordination service; the default suite runs launch.main's rank 1 case
@pytest.mark.parametrize("module,rank", [
    ("launch.main", 1), pytest.param("launch.main", 0, marks=pytest.mark.slow),
    pytest.param("launch.reproduce", 1, marks=pytest.mark.slow)])
def test_a_failing_process_ends_every_process_within_seconds(tmp_path, module, rank):
    """Through launch.main, or launch.reproduce --multihost running its points in-process (a
    failed point once sent that process on to the next while the other waited in the failed
    point's collectives)."""
    args = [*ENTRY[module], f"--workdir={tmp_path / 'run'}", "--compilation_cache="]
    procs, logs = _start_job(tmp_path, args, fail_rank=rank, module=module)
    try:
        procs[rank].wait(timeout=240)
        failed_at = time.monotonic()
        procs[1 - rank].wait(timeout=60)
        ended_within = time.monotonic() - failed_at
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    out = [log.read_text() for log in logs]
    assert [p.returncode for p in procs] == [1, 1], out
    line = f"error: process {rank} failed: injected failure at batch 6"
    for text in out:
        assert text.strip().splitlines()[-1] == line, text[-2000:]
    assert ended_within < 30, ended_within


def _sigterm_at_first_checkpoint(cmd, workdir, env=None):
    """Start `cmd`; SIGTERM it once its first checkpoint is on disk; (exit code, output)."""
    proc = subprocess.Popen(cmd, cwd=kr.ROOT, env=env or kr.env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 240
    while not rehearse.checkpoint_steps(str(workdir)) and time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[0]
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout=120), proc.communicate()[0]


@pytest.mark.slow  # 3 runs of launch.main, ~80 s on 2 busy cores; in-process: test_topology.py
def test_sigterm_checkpoints_stops_and_the_rerun_is_the_uninterrupted_run(tmp_path):
    full, cut, cache = tmp_path / "full", tmp_path / "cut", str(tmp_path / "xla")
    overrides = ("--config.train.epochs=6", "--config.train.checkpoint_every_steps=8")
    subprocess.run(kr.command(f"{TINY}:ce", full, *overrides, cache=cache), cwd=kr.ROOT,
                   env=kr.env(), check=True, capture_output=True, timeout=300)
    code, out = _sigterm_at_first_checkpoint(
        kr.command(f"{TINY}:ce", cut, *overrides, cache=cache), cut)
    last = out.strip().splitlines()[-1]
    assert code == 143 and last.startswith("stopped by SIGTERM at step "), out[-2000:]
    step = int(last.split("at step ")[1].split(",")[0])
    assert step in rehearse.checkpoint_steps(str(cut)) and not (cut / "results.json").exists()
    subprocess.run(kr.command(f"{TINY}:ce", cut, *overrides, cache=cache), cwd=kr.ROOT,
                   env=kr.env(), check=True, capture_output=True, timeout=300)
    assert kr.results(cut) == kr.results(full)
    assert kr.logged_steps(cut) == kr.logged_steps(full)


@pytest.mark.slow  # 3 jobs of 2 processes
def test_sigterm_on_every_process_of_a_job_checkpoints_at_one_step_and_resumes(tmp_path):
    """SLURM signals every task: JAX's preemption notifier takes SIGTERM, the processes agree
    on one step (`reached_preemption_sync_point`), save it together and stop; the re-run ends
    where the uninterrupted job ends."""
    overrides = ["--compilation_cache=", "--config.train.epochs=6",
                 "--config.train.checkpoint_every_steps=8"]
    full, cut = tmp_path / "full", tmp_path / "cut"
    for workdir, sigterm in ((full, False), (cut, True), (cut, False)):
        logdir = tmp_path / f"logs_{workdir.name}_{int(sigterm)}"
        logdir.mkdir()
        procs, logs = _start_job(logdir, [f"--config={TINY}:ce", f"--workdir={workdir}",
                                          *overrides])
        if sigterm:
            deadline = time.monotonic() + 240
            while not rehearse.checkpoint_steps(str(workdir)) and time.monotonic() < deadline:
                time.sleep(0.05)
            for p in procs:
                p.send_signal(signal.SIGTERM)
        codes = [p.wait(timeout=300) for p in procs]
        out = [log.read_text() for log in logs]
        assert codes == ([143, 143] if sigterm else [0, 0]), out[0][-3000:]
        if sigterm:
            lasts = {text.strip().splitlines()[-1] for text in out}
            assert len(lasts) == 1 and lasts.pop().startswith("stopped by SIGTERM at step ")
    assert kr.results(cut) == kr.results(full)
    assert kr.logged_steps(cut) == kr.logged_steps(full)


def test_sigterm_in_training_saves_that_step_and_the_rerun_is_the_uninterrupted_fit(
        tmp_path, monkeypatch):
    """In one process (the real signal and handler): SIGTERM at the 11th batch, a checkpoint at
    that step, `Preempted`; fitting again gives the uninterrupted history, parameters and
    metrics log."""
    import jax
    import numpy as np
    from kdjax import experiment
    from kdjax.methods.ce.method import ce_loss
    from kdjax.train import loop, preemption
    from kdjax.train.method import Method
    from tests.configs import tiny
    config = tiny.get_config("ce")
    config.train.epochs = 2
    splits, info = experiment.load_splits(config.data)
    model = experiment.build_model(config.model, info.num_classes)

    def fit(workdir):
        return loop.fit(config, str(workdir), model=model, method=Method(loss=ce_loss),
                        train=splits["train"], info=info, evals={"test": splits["test"]})

    clean = fit(tmp_path / "full")
    real, served = loop.iterate_batches, []

    def signalling(*args, **kwargs):
        for batch in real(*args, **kwargs):
            served.append(1)
            if len(served) == 11:
                os.kill(os.getpid(), signal.SIGTERM)
            yield batch

    previous = signal.getsignal(signal.SIGTERM)
    monkeypatch.setattr(loop, "iterate_batches", signalling)
    try:
        preemption.install()
        with pytest.raises(preemption.Preempted, match=r"stopped by SIGTERM at step \d+, "
                           r"checkpoint saved in .*cut/checkpoints; run the same command") as err:
            fit(tmp_path / "cut")
    finally:
        signal.signal(signal.SIGTERM, previous)
    stopped = int(str(err.value).split("at step ")[1].split(",")[0])
    # the 11th batch is read a few steps ahead (prefetch); checkpoints are every 4 steps
    assert 6 <= stopped <= 12, stopped
    assert stopped in rehearse.checkpoint_steps(str(tmp_path / "cut"))
    monkeypatch.setattr(loop, "iterate_batches", real)
    again = fit(tmp_path / "cut")
    assert again.history == clean.history
    jax.tree.map(np.testing.assert_array_equal, jax.device_get(again.state.params),
                 jax.device_get(clean.state.params))
    assert kr.logged_steps(tmp_path / "cut") == kr.logged_steps(tmp_path / "full")
