"""Checksums of a pytree's arrays, independent of how the arrays are sharded.

Each leaf's digest is BLAKE2b over its dtype, shape and C-order bytes: the same value whichever
(processes x devices) wrote or read it. A checkpoint records them next to its arrays
(`kdjax.train.checkpoint`), and a restore whose arrays differ is treated as unreadable.
"""
from __future__ import annotations

import hashlib
from typing import Any

import jax
import numpy as np


def host_value(x: Any) -> np.ndarray:
    """The whole value of `x` on this host (an all-gather for arrays split over processes:
    every process must call this for the same leaves)."""
    if isinstance(x, jax.Array):
        if x.is_fully_addressable:
            return np.asarray(jax.device_get(x))
        if x.sharding.is_fully_replicated:
            return np.asarray(x.addressable_data(0))
        from jax.experimental import multihost_utils
        return np.asarray(multihost_utils.process_allgather(x, tiled=True))
    return np.asarray(x)


def digest(x: Any) -> str:
    a = np.ascontiguousarray(host_value(x))
    h = hashlib.blake2b(digest_size=16)
    h.update(f"{a.dtype.str}{a.shape}".encode())
    h.update(a.reshape(-1).view(np.uint8).data if a.size else b"")
    return h.hexdigest()


def digests(tree: Any) -> dict[str, str]:
    """{leaf path: digest} of every array leaf of `tree`."""
    return {jax.tree_util.keystr(path): digest(leaf)
            for path, leaf in jax.tree_util.tree_leaves_with_path(tree)}


def mismatches(tree: Any, expected: dict[str, str]) -> list[str]:
    """The leaf paths of `tree` whose digest differs from `expected` (leaves `expected` does
    not name are not checked: a partial restore, or a checkpoint written without checksums)."""
    bad = []
    for path, leaf in jax.tree_util.tree_leaves_with_path(tree):
        key = jax.tree_util.keystr(path)
        if key in expected and digest(leaf) != expected[key]:
            bad.append(key)
    return bad
