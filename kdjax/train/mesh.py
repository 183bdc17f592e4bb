"""Device mesh and shardings: data-parallel by default, with room for model axes.

Multi-host runs call `jax.distributed.initialize()` first (see launch/main.py); after that
`jax.devices()` spans every host and the same code shards over all of them.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from kdjax.data import pipeline

DATA_AXIS = "data"


def make_mesh(axes: Sequence[tuple[str, int]] = ((DATA_AXIS, -1),),
              devices: Sequence[jax.Device] | None = None) -> Mesh:
    """Mesh from `(name, size)` pairs; one size may be -1 (all remaining devices)."""
    devices = list(jax.devices() if devices is None else devices)
    names = [str(a) for a, _ in axes]
    sizes = [int(s) for _, s in axes]
    if DATA_AXIS not in names:
        raise ValueError(f"config.mesh must have a {DATA_AXIS!r} axis, got {names}")
    if sizes.count(-1) > 1:
        raise ValueError(f"config.mesh: at most one axis may be -1, got {list(axes)}")
    known = int(np.prod([s for s in sizes if s != -1]))
    if -1 in sizes:
        if len(devices) % known:
            raise ValueError(f"config.mesh {list(axes)} does not divide {len(devices)} devices")
        sizes[sizes.index(-1)] = len(devices) // known
    if int(np.prod(sizes)) != len(devices):
        raise ValueError(f"config.mesh {list(axes)} needs {int(np.prod(sizes))} devices, "
                         f"have {len(devices)}")
    return Mesh(np.asarray(devices).reshape(sizes), names)


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P())


def data_sharded(mesh: Mesh) -> NamedSharding:
    """Leading (batch) axis split over the data axis, the rest replicated."""
    return NamedSharding(mesh, P(DATA_AXIS))


def num_data_shards(mesh: Mesh) -> int:
    return mesh.shape[DATA_AXIS]


def batch_granule(mesh: Mesh) -> int:
    """The smallest global batch that every data shard and every process gets an equal, whole
    part of: lcm(data shards, processes). Global batch sizes are multiples of it."""
    return math.lcm(num_data_shards(mesh), jax.process_count())


def check_batch_size(batch_size: int, mesh: Mesh, what: str) -> None:
    """Refuse a global TRAINING batch the mesh cannot split evenly, in one line naming the
    field, the devices and the nearest valid sizes (a training batch is never padded: padded
    rows would enter BatchNorm's batch statistics)."""
    granule = batch_granule(mesh)
    if batch_size % granule == 0:
        return
    shards, procs = num_data_shards(mesh), jax.process_count()
    where = f"{shards} devices" if shards == mesh.size else f"{shards} data shards"
    lower = batch_size // granule * granule
    valid = ", ".join(str(v) for v in (lower, lower + granule) if v > 0)
    raise ValueError(f"{what}={batch_size} cannot be split over {where} ({procs} process"
                     f"{'es' if procs > 1 else ''}); nearest valid: {valid}")


def eval_batch_size(batch_size: int, mesh: Mesh) -> int:
    """The global batch evaluation and prediction run with for a configured `batch_size`: the
    largest multiple of `batch_granule` not above it (at least one granule). Every example is
    still seen exactly once: the last batch is padded with mask-0 rows."""
    granule = batch_granule(mesh)
    return max(batch_size // granule, 1) * granule


def to_global(local_batch: dict[str, np.ndarray], mesh: Mesh) -> dict[str, jax.Array]:
    """Assemble each process's slice of the global batch into global arrays on the mesh."""
    return pipeline.to_global(local_batch, data_sharded(mesh))


def put(tree: Any, shardings: Any) -> Any:
    """Place a pytree whose values are identical on every process onto global shardings.

    Works on one host and on many (where `jax.device_put` cannot reach other hosts' devices):
    each process fills in the shards its own devices hold.
    """
    def one(x, sharding):
        if isinstance(x, jax.Array) and x.is_fully_addressable is False:
            return x
        host = np.asarray(jax.device_get(x))
        return jax.make_array_from_callback(host.shape, sharding, lambda idx: host[idx])
    return jax.tree.map(one, tree, shardings)


def replicate(tree: Any, mesh: Mesh) -> Any:
    """Place a host pytree (identical on every process) replicated on the mesh."""
    return put(tree, jax.tree.map(lambda _: replicated(mesh), tree))
