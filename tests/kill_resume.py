"""Kill a `launch.main` run with SIGKILL at random instants, resume it, compare with a run that
was never interrupted (shared by tests/test_kill_resume.py)."""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TIMING = {"wall_time", "examples_per_sec", "train_wall_time", "provenance", "time",
          "train/examples_per_sec"}


def env() -> dict:
    return dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=1")


def command(config: str, workdir, *overrides: str, cache: str = "") -> list[str]:
    """The entry point's command line; `cache`: a compilation cache folder ('' = none), so the
    re-started processes of one test skip the compiles of the first."""
    return [sys.executable, "-m", "launch.main", f"--config={config}", f"--workdir={workdir}",
            f"--compilation_cache={cache}", *overrides]


def strip_timings(tree):
    """The tree without its timing fields (they differ between any two runs)."""
    if isinstance(tree, dict):
        return {k: strip_timings(v) for k, v in tree.items() if k not in TIMING}
    if isinstance(tree, list):
        return [strip_timings(v) for v in tree]
    return tree


def _checkpoint_steps(workdir: str) -> set[str]:
    found = set()
    for root, dirs, _ in os.walk(workdir):
        if os.path.basename(root) == "checkpoints":
            found |= {os.path.join(root, d) for d in dirs if d.isdigit()}
    return found


def run_with_kills(cmd: list[str], workdir: str, kills: int, seed: int,
                   timeout: float = 600) -> int:
    """Run `cmd`, SIGKILL it `kills` times — each time a random 0-0.4 s after a checkpoint newer
    than any seen at the previous kill appears — then run it to the end. Returns the kills that
    landed before the run finished."""
    rng, landed, seen = random.Random(seed), 0, set()
    for _ in range(kills):
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env(), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        deadline = time.time() + timeout
        while time.time() < deadline and proc.poll() is None:
            now = _checkpoint_steps(workdir)
            if now - seen:
                time.sleep(rng.uniform(0.0, 0.4))
                break
            time.sleep(0.02)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            landed += 1
        seen = _checkpoint_steps(workdir)
    subprocess.run(cmd, cwd=ROOT, env=env(), check=True, capture_output=True, timeout=timeout)
    return landed


def results(workdir) -> dict:
    """results.json without timings, with the workdir's own path written as '<workdir>'."""
    with open(os.path.join(workdir, "results.json")) as f:
        text = f.read().replace(str(workdir), "<workdir>")
    return strip_timings(json.loads(text))


def logged_steps(workdir) -> list:
    """(file, step, fields) of every metrics.jsonl line under `workdir`, in order."""
    out = []
    for root, _, files in sorted(os.walk(workdir)):
        if "metrics.jsonl" in files:
            with open(os.path.join(root, "metrics.jsonl")) as f:
                for line in f:
                    record = json.loads(line)
                    out.append((os.path.relpath(root, workdir), record["step"],
                                tuple(sorted(k for k in record if k not in TIMING))))
    return out
