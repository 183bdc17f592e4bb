"""A failure on one process ends every process of a multi-process job within seconds.

Without this, the other processes wait in their next collective for ever (a collective has no
useful timeout, and JAX's heartbeats take minutes to declare a process dead). The failing
process posts its one-line error in the `jax.distributed` key-value store (`fail`); every
process watches that key from a background thread (`watch`) and, when it appears, prints the
line and exits at once: `os._exit`, since a process blocked in a collective never returns to
run a normal exit, and `jax.distributed.shutdown` would wait for the others. A process whose
coordination service has gone (process 0 died) ends the same way.
"""
from __future__ import annotations

import os
import re
import sys
import threading
import time

import jax

KEY = "kdjax/failed"
POLL_SECONDS = 0.5
_failing = threading.Event()   # this process is ending itself: its watcher stays quiet
_stop = threading.Event()
_watcher: threading.Thread | None = None


# What a collective raises when a peer process died (killed, its host lost): gloo's TCP pairs,
# NCCL, the coordination service.
_LOST_PEER = re.compile(r"Connection reset by peer|Connection closed by peer|Socket closed|"
                        r"remote process exited|Broken pipe|heartbeat|Connection refused")


def _client():
    from jax._src import distributed
    return distributed.global_state.client


def multiprocess() -> bool:
    return jax.process_count() > 1 and _client() is not None


def _posted() -> str | None:
    """The failure another process posted, or None (raises when the service is unreachable)."""
    try:
        return _client().key_value_try_get(KEY)
    except Exception as err:  # noqa: BLE001 - NOT_FOUND is the normal answer
        if "NOT_FOUND" in str(err) or "not found" in str(err).lower():
            return None
        raise


def _end(line: str, code: int = 1) -> None:
    sys.stdout.flush()
    print(f"error: {line}", file=sys.stderr, flush=True)
    os._exit(code)


def _watch() -> None:
    unreachable = 0
    while not _stop.wait(POLL_SECONDS):
        try:
            posted, unreachable = _posted(), 0
        except Exception as err:  # noqa: BLE001 - the service is gone or going
            unreachable += 1
            if unreachable >= 4 and not _stop.is_set() and not _failing.is_set():
                _end(f"process {jax.process_index()} lost the job's coordination service "
                     f"(process 0 ended?): {str(err).splitlines()[0][:200]}")
            continue
        if posted is not None and not _failing.is_set():
            _end(posted)


def watch() -> None:
    """Start watching for another process's failure (a no-op on one process)."""
    global _watcher
    if not multiprocess() or _watcher is not None:
        return
    _stop.clear()
    _watcher = threading.Thread(target=_watch, name="kdjax-failure-watch", daemon=True)
    _watcher.start()


def stop() -> None:
    """Stop watching (before a normal exit, whose shutdown takes the service down)."""
    global _watcher
    if _watcher is not None:
        _stop.set()
        _watcher.join()
        _watcher = None


def lost_peer(err: BaseException) -> str | None:
    """One line for an error that says another process of the job died, else None."""
    text = str(err)
    if not _LOST_PEER.search(text):
        return None
    return (f"another process of the job ended while this one waited for it "
            f"({text.strip().splitlines()[0][:200]})")


def fail(line: str, code: int = 1) -> None:
    """End this process with `error: <line>` and every other process of the job with the
    same line, naming this process. When another process failed first, its line is the one
    printed (the cause; this process's error is then its consequence). Exits with `code`;
    never returns."""
    _failing.set()
    message = f"process {jax.process_index()} failed: {line}"
    try:
        earlier = _posted()
        if earlier is not None:
            message = earlier
        else:
            _client().key_value_set(KEY, message)
            if jax.process_index() == 0:   # it hosts the service: let the others read it
                time.sleep(3 * POLL_SECONDS)
    except Exception:  # noqa: BLE001 - the service is gone: the others end on their own
        pass
    _end(message, code)
