"""Batched, sharded inference over a whole split: evaluation, teacher caches, pool scoring.

Any batch size works on any mesh: the configured (global) size is rounded down to a multiple of
the data shards and processes, and the last batch is padded with mask-0 rows, so the summed
metrics of one set of parameters are the same on every device count.
"""
from __future__ import annotations

from typing import Any, Callable

import jax
import numpy as np
from jax.sharding import Mesh

from kdjax.data import Split
from kdjax.data import loader
from kdjax.data.pipeline import iterate_batches
from kdjax.train import mesh as mesh_lib


def _batches(split: Split, batch_size: int, mesh: Mesh):
    """Global batches of `split` in split order, each example once; `batch_size` is rounded to
    a size the mesh splits evenly (`mesh.eval_batch_size`), the last batch padded (mask 0)."""
    batch_size = mesh_lib.eval_batch_size(batch_size, mesh)
    # On-disk splits decode (and resize / centre-crop) in grain worker processes.
    iterate = loader.iterate_batches if loader.host_augments(split) else iterate_batches
    for local in iterate(split, batch_size, seed=0, epoch=0, shuffle=False,
                                 drop_remainder=False, process_index=jax.process_index(),
                                 process_count=jax.process_count()):
        yield mesh_lib.to_global(local, mesh)


def evaluate(eval_step: Callable, variables: Any, split: Split, batch_size: int,
             mesh: Mesh) -> dict[str, float]:
    """Sum `eval_step` metrics over every example of `split` exactly once."""
    totals = None
    for batch in _batches(split, batch_size, mesh):
        m = eval_step(variables, batch)
        totals = m if totals is None else jax.tree.map(lambda a, b: a + b, totals, m)
    return {k: float(v) for k, v in jax.device_get(totals).items()}


def predict(predict_fn: Callable, variables: Any, split: Split, batch_size: int,
            mesh: Mesh) -> tuple[np.ndarray, np.ndarray]:
    """(logits, features) for every example of `split`, in split order, on every host."""
    logits, features = [], []
    for batch in _batches(split, batch_size, mesh):
        lg, ft = predict_fn(variables, batch["image"])
        keep = np.asarray(jax.device_get(_gather(batch["mask"]))) > 0
        logits.append(np.asarray(jax.device_get(_gather(lg)))[keep])
        features.append(np.asarray(jax.device_get(_gather(ft)))[keep])
    return np.concatenate(logits), np.concatenate(features)


def _gather(x: jax.Array) -> jax.Array:
    """Fully replicate a (possibly multi-host) array so every host can read it."""
    if x.is_fully_addressable:
        return x
    from jax.experimental import multihost_utils
    return multihost_utils.process_allgather(x, tiled=True)
