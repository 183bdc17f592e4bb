"""Child processes that die with their parent (prepare workers, parallel sweep points).

Linux's `prctl(PR_SET_PDEATHSIG, SIGKILL)` asks the kernel to SIGKILL a process when the
thread that created it exits, however that happens (SIGKILL, SIGTERM, Ctrl-C, a crash), so a
killed `launch.prepare` or `launch.reproduce --parallel` leaves no worker running. The death
signal survives `exec`, so it can be set between fork and exec (`popen_kwargs`) or by the
child itself (`die_with_parent`, e.g. a multiprocessing pool's initializer). A parent that
dies before the child's `prctl` call is caught by comparing `getppid()` with the parent's
pid. Elsewhere than Linux both are no-ops: children there may outlive a killed parent.
`watch_parent` polls the parent pid instead (any POSIX system), for children started by a
library thread that may end first (grain's data workers).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys
from typing import Optional

PR_SET_PDEATHSIG = 1

_prctl = None
if sys.platform.startswith("linux"):
    try:  # loaded here, not in the child: a forked child should only make the call
        _prctl = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True).prctl
    except (OSError, AttributeError):
        _prctl = None


def die_with_parent(parent_pid: Optional[int] = None) -> None:
    """Called in a child: SIGKILL this process when its parent dies. `parent_pid` (the
    parent's `os.getpid()`): exit at once if the parent is already gone."""
    if _prctl is None:
        return
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if parent_pid is not None and os.getppid() != parent_pid:
        os._exit(1)


def watch_parent(parent_pid: int, interval: float = 0.5) -> None:
    """Called in a child whose creating thread may exit before the parent does (where the
    death signal would fire too early): a daemon thread ends this process within `interval`
    seconds of the parent's death (the child is then re-parented, its ppid changes)."""
    import threading
    import time

    def watch():
        while os.getppid() == parent_pid:
            time.sleep(interval)
        os._exit(1)
    if os.getppid() != parent_pid:
        os._exit(1)
    threading.Thread(target=watch, name="kdjax-watch-parent", daemon=True).start()


def popen_kwargs() -> dict:
    """`subprocess.Popen(..., **popen_kwargs())`: the child dies with this process. Call it
    in the thread that keeps running while the child does (the kernel watches that thread)."""
    if _prctl is None:
        return {}
    parent = os.getpid()
    return {"preexec_fn": lambda: die_with_parent(parent)}
