"""Where a result came from, recorded when its run starts: the code (commit, dirty flag, a hash
of the uncommitted diff), the library versions, the platform settings (`kdjax.platform`), the
devices and processes, the time.

The code state is read once per process, at its first use: the entry points ask for it before
they run anything (`launch/runtime.py`), so a commit made in a shared working tree while a run
goes on is not attributed to it. `record_start(workdir)` keeps a run's start in
`<workdir>/provenance.json` and adds every resume to it, so a resumed run's results.json names
the start that produced its first steps and each resume after.
"""
from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import os
import platform as py_platform
import subprocess
import sys
import time

import jax

from kdjax import storage

START_FILE = "provenance.json"
LIBRARIES = ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "numpy", "scipy",
             "ml-collections", "grain", "tensorflow-datasets", "absl-py")


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _git(root: str, *args: str) -> subprocess.CompletedProcess | None:
    try:
        return subprocess.run(["git", "-C", root, *args], capture_output=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None


def read_code_state(root: str) -> dict:
    """{'git_commit', 'git_dirty', 'git_diff_sha256'} of the git checkout at `root`: the HEAD
    commit, with '+dirty' when tracked files differ from it ('unknown' outside a checkout), and
    the SHA-256 of `git diff HEAD --binary` (untracked files are not in it; None when clean)."""
    head = _git(root, "rev-parse", "HEAD")
    if head is None or head.returncode != 0:
        return {"git_commit": "unknown", "git_dirty": None, "git_diff_sha256": None}
    diff = _git(root, "diff", "HEAD", "--binary", "--no-ext-diff")
    text = diff.stdout if diff is not None and diff.returncode == 0 else None
    dirty = None if text is None else bool(text)
    commit = head.stdout.decode().strip()
    return {"git_commit": commit + ("+dirty" if dirty else ""), "git_dirty": dirty,
            "git_diff_sha256": hashlib.sha256(text).hexdigest() if dirty else None}


@functools.lru_cache(maxsize=None)
def code_state() -> dict:
    """`read_code_state` of kdjax's checkout, read once per process (module docstring)."""
    return read_code_state(ROOT)


def library_versions() -> dict:
    """Installed versions of the libraries a result depends on (absent ones left out)."""
    versions = {"python": py_platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return versions


def provenance() -> dict:
    """This process, now: code state, versions, platform settings, devices, time."""
    from kdjax import platform
    devices = jax.devices()
    return {**code_state(), "device_kind": devices[0].device_kind,
            "platform": devices[0].platform, "num_devices": len(devices),
            "num_local_devices": jax.local_device_count(),
            "num_processes": jax.process_count(), "jax_version": jax.__version__,
            "versions": library_versions(), "platform_settings": platform.settings(),
            "command": " ".join(sys.argv),
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def record_start(workdir: str) -> dict:
    """Record this start of the run in `workdir` (the first start, or a resume added to it) and
    return the run's provenance for results.json: the first start's fields, plus 'resumes', the
    provenance of every later start. Process 0 writes; the others return their own."""
    now = provenance()
    if jax.process_index() != 0:
        return {**now, "resumes": []}
    path = os.path.join(workdir, START_FILE)
    held = storage.read_json(path)
    if isinstance(held, dict) and "start" in held:
        record = {"start": held["start"], "resumes": [*held.get("resumes", []), now]}
    else:
        record = {"start": now, "resumes": []}
    storage.makedirs(workdir)
    storage.write_json(path, record, indent=1)
    return {**record["start"], "resumes": record["resumes"]}
