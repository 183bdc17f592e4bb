"""SIGTERM (TPU maintenance, spot preemption, a SLURM time limit): a checkpoint at the next
training step, then the run stops; the same command resumes it.

On one process, `install` replaces SIGTERM's default action with a flag that `fit` reads after
every step; outside a training loop (loading data, evaluating a finished stage) SIGTERM stops
the run at once, since every finished stage is already on disk. On several processes JAX's
preemption notifier owns SIGTERM once `jax.distributed` is initialised: every process asks
`multihost_utils.reached_preemption_sync_point(step)` after each step, which turns true on all
of them at the same step, so they save one checkpoint together and stop.
"""
from __future__ import annotations

import contextlib
import signal
import threading

import jax

_requested = threading.Event()
_training = 0   # nesting depth of `training()` on this process


class Preempted(BaseException):
    """The run stopped on SIGTERM; its message says where and how to resume. A BaseException,
    like KeyboardInterrupt: no `except Exception` may take it for a failure of the code it
    interrupted (e.g. a checkpoint being read, which would then be set aside as unreadable)."""


def install() -> None:
    """Take SIGTERM on a single-process run (entry points call this; a no-op when several
    processes run, where JAX's preemption notifier has it)."""
    if jax.process_count() == 1 and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _on_sigterm)


def _on_sigterm(signum, frame) -> None:
    _requested.set()
    if not _training:
        raise Preempted("stopped by SIGTERM outside training; run the same command to resume")


@contextlib.contextmanager
def training():
    """Marks a training loop: SIGTERM then waits for `stop_at(step)` instead of raising."""
    global _training
    _training += 1
    try:
        yield
    finally:
        _training -= 1


def stop_at(step: int) -> bool:
    """Whether the run should checkpoint now and stop (every process calls this after every
    training step, with the same step)."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils
        return bool(multihost_utils.reached_preemption_sync_point(int(step)))
    return _requested.is_set()


def stopped(step: int, directory: str) -> Preempted:
    """The error a training loop raises once its SIGTERM checkpoint is saved."""
    _requested.clear()
    return Preempted(f"stopped by SIGTERM at step {step}, checkpoint saved in {directory}; "
                     "run the same command to resume")
