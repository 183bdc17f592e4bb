"""How an entry point ends a failed run: one line for a failure the user can act on, the
traceback for a bug.

Expected (one line `error: ...`, exit 1): a `kdjax.errors.Error`; a ValueError, OSError, ... that
kdjax or launch raised itself (its innermost frame is a `raise` statement in those packages);
an OSError about a named path; a full disk (`disk_full`). Anything else, e.g. a ValueError from
inside numpy or flax, keeps its traceback. Ctrl-C ends with `interrupted(...)` (exit 130).
`guarded` applies this to an entry point's work, on one process or on every process of a job.
"""
from __future__ import annotations

import errno
import importlib.util
import linecache
import logging
import os
import re
import signal
import sys
import traceback
from typing import Any, Callable

_ROOTS = tuple(os.path.dirname(importlib.util.find_spec(name).origin) + os.sep
               for name in ("kdjax", "launch"))
# The types kdjax's own checks raise (a `raise` in kdjax/ or launch/ makes them expected).
_OWN_TYPES = (ValueError, OSError, EOFError, FloatingPointError, KeyError, RuntimeError,
              ImportError, TypeError)


def _raised_by_kdjax(err: BaseException) -> bool:
    tb = err.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    filename = tb.tb_frame.f_code.co_filename
    return (filename.startswith(_ROOTS)
            and linecache.getline(filename, tb.tb_lineno).lstrip().startswith("raise "))


def expected(err: BaseException) -> bool:
    """Whether `err` is a failure the user can act on (one line) rather than a bug."""
    from kdjax import errors
    if isinstance(err, errors.Error):
        return True
    if isinstance(err, OSError) and getattr(err, "filename", None):
        return True
    return isinstance(err, _OWN_TYPES) and _raised_by_kdjax(err)


def one_line(err: BaseException) -> str:
    """The error's message on one line (the first line, with its type if it has no message)."""
    text = str(err).strip()
    if isinstance(err, KeyError) and err.args:
        text = f"missing key {err.args[0]!r}"
    return text.splitlines()[0] if text else type(err).__name__


def _chain(err: BaseException):
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        yield err
        err = err.__cause__ or err.__context__


def _mount_of(path: str) -> str:
    path = os.path.abspath(path)
    while not os.path.ismount(path):
        path = os.path.dirname(path)
    return path


def latest_checkpoint(workdir: str) -> tuple[str, int] | None:
    """(checkpoints folder, step) of the newest whole checkpoint under a local `workdir` (the
    run's own or a stage's), or None."""
    best = None
    if not workdir or "://" in workdir or not os.path.isdir(workdir):
        return None
    for root, dirs, _ in os.walk(workdir):
        if os.path.basename(root) != "checkpoints":
            continue
        for d in dirs:
            if d.isdigit():
                when = os.path.getmtime(os.path.join(root, d))
                if best is None or when > best[0]:
                    best = (when, root, int(d))
    return None if best is None else best[1:]


def _intact(workdir: str) -> str:
    found = latest_checkpoint(workdir)
    if found is None:
        return "no checkpoint was written yet"
    return f"earlier checkpoints are intact (latest: step {found[1]} in {found[0]})"


def disk_full(err: BaseException, workdir: str):
    """A `kdjax.errors.DiskFull` naming the full file system when `err` (or its cause) is
    ENOSPC — from Python, or from tensorstore under orbax — else None."""
    from kdjax import errors
    for e in _chain(err):
        text = str(e)
        if isinstance(e, OSError) and e.errno == errno.ENOSPC:
            path = e.filename
        elif "No space left on device" in text or "os_error_code='28'" in text:
            quoted = re.findall(r"\"(/[^\"]+)\"|'(/[^']+)'", text)
            path = next((a or b for a, b in quoted), None)
        else:
            continue
        where = os.fspath(path or workdir)
        where = where if "://" in where else os.path.abspath(where)
        mount = "" if "://" in where else f"{_mount_of(where)} is full "
        return errors.DiskFull(
            f"no space left on device: {mount}(writing {'' if path else 'under '}{where}); "
            f"{_intact(workdir)}: free space, then run the same command to resume")
    return None


def interrupted(workdir: str) -> str:
    """The line a run stopped by Ctrl-C ends with."""
    found = latest_checkpoint(workdir)
    if found is None:
        return "interrupted before the first checkpoint; run the same command to start again"
    return (f"interrupted; run the same command to resume from step {found[1]} (the last "
            f"checkpoint, in {found[0]})")


def end(message: str, code: int) -> None:
    """Print `error: <message>` and leave at once: a checkpoint write cut short (Ctrl-C, a full
    disk) is abandoned, not finished by orbax's threads at shutdown (they would print their own
    tracebacks); its temporary folder is cleared by the next run."""
    sys.stdout.flush()
    print(f"error: {message}", file=sys.stderr, flush=True)
    os._exit(code)


class _OrbaxThreadFailures(logging.Filter):
    """Drops orbax's log of an exception in its background save threads: the same exception
    is raised again in the main thread, which reports it once (one line or a traceback)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info or "raised an exception" in str(record.msg)) or (
            f"{os.sep}orbax{os.sep}" not in record.pathname)


def quiet_orbax_threads() -> None:
    """Let a failed checkpoint write be reported once, by the main thread: orbax's threads log
    their exception, and tensorstore's callbacks find orbax's event loop closed after it (an
    "unraisable" RuntimeError each)."""
    logging.getLogger("absl").addFilter(_OrbaxThreadFailures())
    default = sys.unraisablehook

    def hook(unraisable):
        if not (unraisable.exc_type is RuntimeError
                and str(unraisable.exc_value) == "Event loop is closed"):
            default(unraisable)

    sys.unraisablehook = hook


def guarded(work: Callable[[], Any], workdir: str, show_traceback: bool = False,
            passthrough: tuple[type[BaseException], ...] = ()) -> Any:
    """Run an entry point's `work` (after `runtime.start`) and end it as the entry points do:
    SIGTERM's checkpoint-and-stop exits 143 with its line (kdjax/train/preemption.py); Ctrl-C
    exits 130 with `interrupted(workdir)`; an expected failure prints one line and exits 1, a
    bug keeps its traceback (`show_traceback`: every failure does). On several processes a
    failure or Ctrl-C on one ends every process of the job with its line
    (kdjax/train/failure.py), never leaving the others in a collective. `passthrough`: errors
    re-raised as they are (absl's usage errors, which every process meets alike)."""
    from kdjax.train import failure, preemption
    try:
        out = work()
        failure.stop()
        return out
    except preemption.Preempted as err:   # SIGTERM: checkpoint saved, every process stops
        print(str(err), file=sys.stderr, flush=True)
        sys.exit(128 + signal.SIGTERM)
    except KeyboardInterrupt:
        if show_traceback:
            raise
        if failure.multiprocess():   # Ctrl-C on one process ends the others too
            failure.fail(interrupted(workdir), 130)
        end(interrupted(workdir), 130)
    except passthrough:
        raise
    except Exception as err:  # noqa: BLE001 - a bug re-raises below, with its traceback
        full = disk_full(err, workdir)
        show = show_traceback or not expected(full or err)
        if failure.multiprocess():   # the other processes must not wait for this one
            lost = failure.lost_peer(err)
            if show and not lost:
                traceback.print_exc()
            failure.fail(lost or (one_line(full or err) if not show else
                                  f"{type(err).__name__}: {one_line(err)}"))
        if show:
            raise
        if full:
            end(one_line(full), 1)
        print(f"error: {one_line(err)}", file=sys.stderr, flush=True)
        sys.exit(1)
