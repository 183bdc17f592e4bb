"""A workdir holds one run: one writer at a time, and the config it was run with.

`claim(workdir)` makes the run its only writer: an exclusive `fcntl.flock` on `<workdir>/.lock`,
which holds the writer's host, PID and start time, so a second run on the same folder is refused
in one line naming the first. The kernel drops the lock when its process dies (even by kill -9),
so the next run takes it over. A gs:// workdir has no flock: there the lock is a claim object
created exclusively (`ifGenerationMatch=0`) with a heartbeat, taken over once stale
(`kdjax.stages`). In a multi-process job process 0 takes it and broadcasts.

The run records `<workdir>/config.json`; a re-run with a different config fails in one line
naming the fields that differ, so a resumed run never mixes two settings silently. The record
only binds once the workdir holds training state (a checkpoint or `results.json`): a run that
failed before its first checkpoint leaves no claim, and the corrected command simply replaces
it. Cosmetic fields (progress bar, logging cadence) may always change; the changes that make
sense for continuing a run (more epochs, another checkpoint cadence) are allowed when the user
names them (`launch.main --allow_changes=train.epochs`), and may extend what was done, never
shrink it; anything else needs a new workdir. An unchanged config is not written again, so a
finished run reads back from a read-only folder.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import socket
import time
from typing import Iterator, Sequence

import jax
import ml_collections

from kdjax import config as config_lib
from kdjax import errors
from kdjax import stages
from kdjax import storage
from kdjax.train import sync

COSMETIC = ("progress_bar", "tensorboard", "train.log_every_steps", "data.eval_batch_size")
CONTINUABLE = ("train.epochs", "train.eval_every_epochs",
               "train.checkpoint_every_steps", "train.keep_checkpoints")


LOCK = ".lock"
# Continuable fields that measure work done: they may grow, never shrink.
EXTENDS = ("train.epochs",)


class WorkdirError(errors.Error, ValueError):
    """The workdir holds a run with another config (the message names the fields)."""


class WorkdirBusy(WorkdirError):
    """Another process writes to the workdir (the message names its host and PID)."""


def _holder_text(holder: dict) -> str:
    if not holder.get("pid"):
        return "another process (its claim is being written)"
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(holder.get("time", 0)))
    text = f"PID {holder['pid']} on {holder.get('host', '?')} (since {started})"
    if holder.get("host") == socket.gethostname():
        try:
            os.kill(int(holder["pid"]), 0)
        except ProcessLookupError:
            text += ", now gone: a child process of it still holds the lock"
        except PermissionError:
            pass
    return text


class _Lock:
    """An exclusive flock on `<workdir>/.lock`, holding this process's host, PID and time."""

    def __init__(self, fd: int):
        self.fd = fd

    def release(self) -> None:
        with contextlib.suppress(OSError):
            os.ftruncate(self.fd, 0)
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)


def _take(workdir: str) -> _Lock | None:
    """Lock a local workdir; None when it is read-only (then no one can write it here)."""
    path = os.path.join(workdir, LOCK)
    try:
        os.makedirs(workdir, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as err:
        if err.errno in (errno.EROFS, errno.EACCES, errno.EPERM) and os.path.isdir(workdir):
            return None
        raise
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        try:
            holder = json.loads(os.pread(fd, 4096, 0) or b"{}")
        except ValueError:
            holder = {}
        os.close(fd)
        raise WorkdirBusy(f"workdir {workdir} is in use by {_holder_text(holder)}; wait for "
                          "it to finish or stop it, or use another --workdir") from None
    me = {"host": socket.gethostname(), "pid": os.getpid(), "time": time.time()}
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(me).encode(), 0)
    return _Lock(fd)


def _take_remote(workdir: str):
    """Claim a gs:// workdir: `<workdir>/.lock/claims/<n>.json` created exclusively and kept
    fresh by a heartbeat (`kdjax.stages`); a claim whose holder stopped beating is stale and
    taken over."""
    folder = os.path.join(workdir, LOCK)
    held = stages.try_claim(folder)
    if held is None:
        claims = storage.glob(os.path.join(folder, stages.CLAIMS), "*.json")
        newest = max(claims, key=lambda p: int(os.path.basename(p)[:-5]), default=None)
        holder = (storage.read_json(newest) if newest else None) or {}
        raise WorkdirBusy(f"workdir {workdir} is in use by {_holder_text(holder)}; wait for "
                          "it to finish or stop it, or use another --workdir")
    return held


@contextlib.contextmanager
def claim(workdir: str) -> Iterator[None]:
    """Be the only writer of `workdir` for the block (process 0 holds the lock for the job; no
    process holds a lock of its own while collectives run). Raises WorkdirBusy naming the
    holder."""
    held, failed = None, None
    if jax.process_index() == 0:
        try:
            held = (_take_remote(workdir) if storage.is_remote(workdir) else
                    _take(os.fspath(storage.path(workdir))))
        except (errors.Error, OSError) as err:
            failed = err
    if not sync.agree_flag(failed is None):
        raise failed or WorkdirBusy(f"workdir {workdir} is in use (process 0 found its holder)")
    try:
        yield
    finally:
        if held is not None:
            held.release()


def has_training_state(workdir: str) -> bool:
    """Whether `workdir` holds what its run resumes from or reads back: `results.json` or a
    checkpoint (`checkpoints/<step>` in the workdir or a folder below it). A shared stage's
    folder (one recording `stage.json`, e.g. the teacher) does not count: it checks its own
    config when reused (`kdjax.stages`)."""
    if storage.exists(os.path.join(workdir, "results.json")):
        return True
    if storage.is_remote(workdir):
        found = {os.path.dirname(os.path.dirname(p))
                 for p in storage.glob(workdir, "**/checkpoints/*")
                 if os.path.basename(p).isdigit()}
    else:
        found = {os.path.dirname(root) for root, dirs, _ in os.walk(storage.path(workdir))
                 if os.path.basename(root) == "checkpoints" and any(d.isdigit() for d in dirs)}
    return any(not storage.exists(os.path.join(f, stages.STAGE)) for f in found)


def _jsonable(config: ml_collections.ConfigDict) -> dict:
    return json.loads(json.dumps(config.to_dict(), default=str))


def differences(old: dict, new: dict) -> dict[str, tuple]:
    """{field: (old value, new value)} over the fields the run compares
    (`config.comparable`: the new config's, a field the record predates at its default)."""
    a, b = config_lib.comparable(old, new)
    return {k: (a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)}


def check_config(workdir: str, config: ml_collections.ConfigDict,
                 allow: Sequence[str] = ()) -> None:
    """Record `config` in a new workdir, or check it against the one recorded there (binding
    once the workdir holds training state; before, the new config replaces it)."""
    path = os.path.join(workdir, "config.json")
    new = _jsonable(config)
    problem, old, diffs = "", {}, {}
    recorded = storage.exists(path) if jax.process_index() == 0 else False
    if sync.agree_flag(recorded and has_training_state(workdir)):
        old = storage.read_json(path)
        diffs = {k: v for k, v in differences(old, new).items() if k not in COSMETIC}
        refused = {k: v for k, v in diffs.items() if k not in allow}
        finished = storage.exists(os.path.join(workdir, "results.json"))
        shrunk = [(k, *diffs[k]) for k in EXTENDS if finished and k in diffs
                  and isinstance(diffs[k][0], int) and isinstance(diffs[k][1], int)
                  and diffs[k][1] < diffs[k][0]]
        if shrunk:
            k, done, asked = shrunk[0]
            problem = (f"{k}: epochs done {done} > requested {asked} (workdir {workdir} holds "
                       "a finished run); a run can be extended, not shrunk: use a new --workdir")
        elif refused:
            listed = ", ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in list(refused.items())[:6])
            more = f" (+{len(refused) - 6} more)" if len(refused) > 6 else ""
            continuable = [k for k in refused if k in CONTINUABLE]
            hint = (f"pass --allow_changes={','.join(continuable)} to continue with them"
                    if continuable and len(continuable) == len(refused) else
                    "use a new --workdir (or move this one away) to run this config")
            problem = (f"workdir {workdir} holds a run with a different config: {listed}{more}; "
                       f"{hint}")
        bad = [k for k in diffs if k in allow and k not in CONTINUABLE]
        if not problem and bad:
            problem = (f"--allow_changes={','.join(bad)}: only {', '.join(CONTINUABLE)} can "
                       "change for a run to continue")
    if not sync.agree_flag(not problem):
        raise WorkdirError(problem or f"workdir {workdir}: process 0 refused the config")
    changed = bool(old) and bool(diffs)
    if jax.process_index() == 0:
        results = os.path.join(workdir, "results.json")
        if changed and storage.exists(results):
            # The finished run continues under the new setting: keep its results aside.
            storage.move(results, os.path.join(workdir, "results.before-change.json"))
        # Written when new or changed; a cosmetic change or none writes nothing, so a
        # finished run reads back from a read-only folder.
        if changed or (not old and (not recorded or storage.read_json(path) != new)):
            storage.write_json(path, new, indent=1, sort_keys=True)
