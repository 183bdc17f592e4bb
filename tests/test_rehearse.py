"""`launch.rehearse`: processes started as SLURM starts them, through `launch.main --multihost`.

The default test is the regression test for the shared-stage deadlock (kdjax.stages): tiny KD
on 2 processes x 4 CPU devices with its teacher trained in the run. The slow test kills a run
at its first checkpoint and resumes it on another topology (2 x 4 -> 1 x 8).
"""
import json
import os

import pytest

from launch import rehearse

FAST = ["--config.teacher.epochs=1", "--config.train.epochs=1", "--compilation_cache="]


def test_two_processes_train_the_teacher_in_the_run(tmp_path):
    workdir = str(tmp_path / "kd")
    rehearse.rehearse("tests/configs/tiny.py", workdir, FAST, processes=2, cpu_devices=4,
                      resume_processes=1, resume_cpu_devices=8, kill_after_steps=0,
                      timeout=240, log=lambda s: None)
    result = json.load(open(os.path.join(workdir, "results.json")))
    assert result["teacher"]["source"] == os.path.join(workdir, "teacher")
    stage = json.load(open(os.path.join(workdir, "teacher", "stage.json")))
    assert stage["kind"] == "teacher" and stage["config"]["teacher"]["epochs"] == 1
    logs = [open(os.path.join(workdir + ".rehearsal", "first", f"rank{r}.log")).read()
            for r in range(2)]
    assert all("total wall time" in log for log in logs)
    for rank, log in enumerate(logs):   # where it runs: the first line of every process
        first = next(line for line in log.splitlines() if line.startswith("kdjax: "))
        assert first.startswith(f"kdjax: cpu (cpu) x 8 devices, 4 on process {rank}/2; batch 64 "
                                "global = 8 per device (8 data shards), eval batch 200 global = "
                                "25 per device"), first
    assert result["placement"] == {
        "platform": "cpu", "device_kind": "cpu", "num_devices": 8, "local_devices": 4,
        "process_index": 0, "process_count": 2, "data_shards": 8, "batch_size": 64,
        "per_device_batch": 8, "eval_batch_size": 200, "per_device_eval_batch": 25}


@pytest.mark.slow
def test_killed_at_a_checkpoint_resumes_on_another_topology(tmp_path):
    workdir = str(tmp_path / "kd")
    out = rehearse.rehearse("tests/configs/tiny.py", workdir,
                            FAST + ["--config.train.epochs=2"], processes=2, cpu_devices=4,
                            resume_processes=1, resume_cpu_devices=8, kill_after_steps=8,
                            timeout=400, log=lambda s: None)
    assert out["first"]["killed_at_step"] >= 8
    result = json.load(open(os.path.join(workdir, "results.json")))
    assert result["history"][-1]["epoch"] == 2
