"""Decisions taken once and shared by every process of a multi-host run.

Whether to resume, from which checkpoint, whether a stage is finished: process 0 reads the
files and broadcasts what it found, so all workers take the same branch even when their views
of a shared file system differ for a moment.
"""
from __future__ import annotations

import jax
import numpy as np


def agree_steps(steps: list[int], size: int = 64) -> list[int]:
    """Process 0's list of checkpoint steps (its newest `size`), on every process."""
    if jax.process_count() == 1:
        return list(steps)
    from jax.experimental import multihost_utils
    arr = np.full(size, -1, np.int64)
    newest = sorted(steps)[-size:]
    arr[:len(newest)] = newest
    arr = np.asarray(multihost_utils.broadcast_one_to_all(arr))
    return [int(v) for v in arr if v >= 0]


def agree_flag(flag: bool) -> bool:
    """Process 0's value of `flag`, on every process."""
    if jax.process_count() == 1:
        return bool(flag)
    from jax.experimental import multihost_utils
    return bool(multihost_utils.broadcast_one_to_all(np.int32(bool(flag))))


def all_ok(flag: bool) -> bool:
    """Whether `flag` holds on every process (every process calls it)."""
    if jax.process_count() == 1:
        return bool(flag)
    from jax.experimental import multihost_utils
    flags = multihost_utils.process_allgather(np.int32(bool(flag)))
    return bool(np.all(np.asarray(flags)))


def barrier(name: str) -> None:
    """Wait until every process reaches this point."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils
        multihost_utils.sync_global_devices(name)
