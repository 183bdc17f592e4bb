"""Stages shared by the processes of one job and by separate jobs: trained once, read back after.

A stage is a folder a run trains something into and other runs reuse: the teacher
(`experiment.get_teacher`, `teacher.workdir` may be shared by many runs), DiSK's CE warm start,
LR+DS's CE warm-up student. It is finished when its `results.json` exists.

* Within one job, process 0 decides and broadcasts (`jax.experimental.multihost_utils`): is the
  stage finished, is it ours to train, or must we wait. Every process then trains it together
  (collectives) or reads it back. No process holds a file lock while collectives run.
* Separate jobs sharing a stage folder (local or gs://) coordinate by an atomic claim: process 0
  creates `<folder>/claims/<n>.json` exclusively (local: `O_CREAT | O_EXCL`; gs://: an upload
  with `ifGenerationMatch=0`), holding host, PID and time; the job whose create succeeds trains
  the stage, the others poll until `results.json` appears and read the stage back. A claim whose
  holder died (same host and its PID is gone, or no heartbeat for `STALE_SECS`) is taken over
  by creating claim n + 1 (again exclusively, so exactly one waiter wins).
* The folder records the config that produced it (`stage.json`: the stage's kind, the
  sub-config that determines it and its key); reusing the folder with another one is refused
  with one line naming the differing fields.

    with stages.claim(folder, "teacher", view) as train:
        if train:
            ...  # fit into `folder`, then loop.write_results(folder, ...)
        else:
            ...  # read the finished stage back
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import threading
import time
from typing import Any, Iterator

import jax
import numpy as np

from kdjax import storage

STAGE = "stage.json"
RESULTS = "results.json"
CLAIMS = "claims"
POLL_SECS = 5.0
HEARTBEAT_SECS = 30.0
STALE_SECS = 300.0     # a claim not refreshed for this long belongs to a dead job
_MESSAGE_BYTES = 2048

# Process 0's decision, broadcast to every process.
_WAIT, _TRAIN, _DONE, _ERROR = range(4)


def key_of(view: dict) -> str:
    """16 hex digits of sha256 over the view's canonical JSON."""
    text = json.dumps(view, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def differences(recorded: Any, current: Any, prefix: str = "") -> list[str]:
    """Dotted names of the fields whose values differ between two JSON-like dicts."""
    if isinstance(recorded, dict) and isinstance(current, dict):
        out = []
        for k in sorted(set(recorded) | set(current), key=str):
            name = f"{prefix}.{k}" if prefix else str(k)
            if k not in recorded or k not in current:
                out.append(name)
            else:
                out += differences(recorded[k], current[k], name)
        return out
    canon = lambda v: json.loads(json.dumps(v, sort_keys=True, default=str))  # noqa: E731
    return [] if canon(recorded) == canon(current) else [prefix or "(all)"]


def read_recorded(folder: str) -> dict | None:
    """`<folder>/stage.json`: {"kind", "key", "config"}, or None."""
    return storage.read_json(os.path.join(folder, STAGE))


def check_recorded(folder: str, kind: str, view: dict) -> None:
    """Raise ValueError (one line) when `folder` records a stage produced by another config.
    A folder that records nothing (written before stages were recorded) is accepted."""
    recorded = read_recorded(folder)
    if recorded is None:
        return
    if recorded.get("key") == key_of(view):
        return
    fields = differences(recorded.get("config", {}), json.loads(json.dumps(view, default=str)))
    shown = ", ".join(fields[:6]) + (f" (+{len(fields) - 6} more)" if len(fields) > 6 else "")
    raise ValueError(f"{folder} holds a {recorded.get('kind', kind)} trained with another "
                     f"config ({shown or 'key ' + str(recorded.get('key'))} differ); use "
                     f"another folder or the config recorded in {os.path.join(folder, STAGE)}")


def record(folder: str, kind: str, view: dict) -> None:
    """Write `<folder>/stage.json` (kind, key, the config view)."""
    storage.write_json(os.path.join(folder, STAGE),
                       {"kind": kind, "key": key_of(view), "config": view}, indent=1)


def is_done(folder: str) -> bool:
    return storage.exists(os.path.join(folder, RESULTS))


# --- claims between jobs -------------------------------------------------------------------

def _holder() -> dict:
    return {"host": socket.gethostname(), "pid": os.getpid(), "time": time.time()}


def create_exclusive(p: str, data: bytes) -> bool:
    """Create `p` holding `data` unless it exists; True if this call created it. Atomic against
    every other creator: O_CREAT | O_EXCL locally, `ifGenerationMatch=0` on gs://."""
    if storage.is_remote(p):
        import fsspec
        fs, path = fsspec.core.url_to_fs(p)
        try:
            fs.pipe_file(path, data, mode="create")
        except FileExistsError:
            return False
        return True
    os.makedirs(os.path.dirname(os.path.abspath(p)), exist_ok=True)
    try:
        fd = os.open(p, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "wb") as f:   # readers skip a claim that is still empty (see `_latest`)
        f.write(data)
    return True


def _claims(folder: str) -> list[tuple[int, str]]:
    out = []
    for p in storage.glob(os.path.join(folder, CLAIMS), "*.json"):
        stem = os.path.basename(p)[:-len(".json")]
        if stem.isdigit():
            out.append((int(stem), p))
    return sorted(out)


def _latest(folder: str) -> tuple[int, dict | None]:
    """(number, holder) of the newest claim; (-1, None) when there is none."""
    claims = _claims(folder)
    if not claims:
        return -1, None
    n, p = claims[-1]
    try:
        holder = storage.read_json(p)
    except ValueError:        # being written this instant: treat as alive
        holder = {"host": "", "pid": 0, "time": time.time()}
    return n, holder if holder is not None else {"host": "", "pid": 0, "time": time.time()}


def alive(holder: dict, now: float | None = None) -> bool:
    """Whether a claim's holder may still be at work: on this host, its PID exists; anywhere,
    its heartbeat is younger than `STALE_SECS`."""
    now = time.time() if now is None else now
    if holder.get("host") == socket.gethostname() and holder.get("pid"):
        try:
            os.kill(int(holder["pid"]), 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass
    return now - float(holder.get("time", 0)) < STALE_SECS


class _Claim:
    """Process 0's claim on a folder, refreshed by a heartbeat thread until released."""

    def __init__(self, path: str):
        self.path = path
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True)
        self._thread.start()

    def _beat(self):
        while not self._stop.wait(HEARTBEAT_SECS):
            with contextlib.suppress(OSError):
                storage.write_json(self.path, _holder())

    def release(self):
        self._stop.set()
        self._thread.join()
        with contextlib.suppress(OSError):
            storage.remove(self.path)


def try_claim(folder: str) -> _Claim | None:
    """Claim `folder` for this job unless a live holder has it (process 0 only)."""
    n, holder = _latest(folder)
    if holder is not None and alive(holder):
        return None
    path = os.path.join(folder, CLAIMS, f"{n + 1}.json")
    if create_exclusive(path, json.dumps(_holder()).encode()):
        return _Claim(path)
    return None


# --- one decision for every process of the job ---------------------------------------------

def _broadcast(code: int, message: str = "") -> tuple[int, str]:
    """Process 0's (code, message) on every process."""
    if jax.process_count() == 1:
        return code, message
    from jax.experimental import multihost_utils
    buf = np.zeros(_MESSAGE_BYTES + 1, np.int32)
    raw = message.encode()[:_MESSAGE_BYTES]
    buf[0] = code
    buf[1:1 + len(raw)] = np.frombuffer(raw, np.uint8)
    buf = np.asarray(multihost_utils.broadcast_one_to_all(buf))
    text = bytes(buf[1:].astype(np.uint8)).rstrip(b"\0").decode(errors="replace")
    return int(buf[0]), text


def _decide(folder: str, kind: str, view: dict) -> tuple[int, str, _Claim | None]:
    """Process 0: finished, ours to train (claimed), or wait; or a one-line refusal."""
    try:
        check_recorded(folder, kind, view)
        if is_done(folder):
            return _DONE, "", None
        held = try_claim(folder)
        if held is None:
            return _WAIT, "", None
        try:
            check_recorded(folder, kind, view)   # a holder may have recorded it meanwhile
            if is_done(folder):
                held.release()
                return _DONE, "", None
            record(folder, kind, view)
        except BaseException:
            held.release()
            raise
        return _TRAIN, "", held
    except (ValueError, OSError) as err:
        return _ERROR, str(err).strip().splitlines()[0] if str(err).strip() else repr(err), None


@contextlib.contextmanager
def claim(folder: str, kind: str, view: dict, poll_secs: float | None = None) -> Iterator[bool]:
    """Yield True on every process when this job must train the stage in `folder` (it holds the
    claim until the block ends), False when the stage is finished and is to be read back. While
    another job trains it, process 0 polls every `poll_secs` and broadcasts, the others wait
    with it. A folder recording another config raises ValueError on every process."""
    poll = POLL_SECS if poll_secs is None else poll_secs
    storage.makedirs(folder)
    waited = False
    while True:
        held = None
        code, message = _WAIT, ""
        if jax.process_index() == 0:
            code, message, held = _decide(folder, kind, view)
        code, message = _broadcast(code, message)
        if code == _ERROR:
            raise ValueError(message)
        if code == _DONE:
            yield False
            return
        if code == _TRAIN:
            break
        if not waited and jax.process_index() == 0:
            n, holder = _latest(folder)
            print(f"{kind} {folder}: trained by another job ({holder}); waiting", flush=True)
        waited = True
        time.sleep(poll)
    try:
        yield True
    finally:
        if held is not None:
            held.release()
