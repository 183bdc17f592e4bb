"""Where a result came from: commit, devices, time, config."""
from __future__ import annotations

import os
import subprocess
import time

import jax


def git_commit() -> str:
    try:
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        out = subprocess.run(["git", "-C", root, "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=5)
        dirty = subprocess.run(["git", "-C", root, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return out.stdout.strip() + ("+dirty" if dirty else "") if out.returncode == 0 else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def provenance() -> dict:
    devices = jax.devices()
    return {"git_commit": git_commit(), "device_kind": devices[0].device_kind,
            "platform": devices[0].platform, "num_devices": len(devices),
            "num_processes": jax.process_count(), "jax_version": jax.__version__,
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
