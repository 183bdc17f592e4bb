"""Where a run runs: the platform, its devices and processes, and how the global batches split.

`launch.main` prints `lines(describe(config))` before anything else (every process its own
line, so a merged SLURM or TPU log shows every rank), and the run records `describe(config)`
in results.json (`placement`). A GPU or TPU job that fell back to the CPU says so here.
"""
from __future__ import annotations

import os

import jax
import ml_collections

from kdjax.train import mesh as mesh_lib


def describe(config: ml_collections.ConfigDict) -> dict:
    """Platform, device kind, device counts (global, this process), process index / count, and
    the global and per-device train and eval batches (`data.batch_size` is global, split over
    the mesh's data axis; evaluation runs `mesh.eval_batch_size` of `data.eval_batch_size`, its
    last batch padded)."""
    devices = jax.devices()
    mesh = mesh_lib.make_mesh(config.mesh.axes)
    shards = mesh_lib.num_data_shards(mesh)
    batch = int(config.data.batch_size)
    eval_batch = mesh_lib.eval_batch_size(int(config.data.eval_batch_size), mesh)
    return {"platform": devices[0].platform, "device_kind": devices[0].device_kind,
            "num_devices": len(devices), "local_devices": jax.local_device_count(),
            "process_index": jax.process_index(), "process_count": jax.process_count(),
            "data_shards": shards, "batch_size": batch,
            "per_device_batch": batch / shards if batch % shards else batch // shards,
            "eval_batch_size": eval_batch, "per_device_eval_batch": eval_batch // shards}


def lines(d: dict) -> list[str]:
    """The first lines a run prints (one per process), plus a warning when a GPU is present
    and JAX runs on the CPU."""
    out = [f"kdjax: {d['platform']} ({d['device_kind']}) x {d['num_devices']} devices, "
           f"{d['local_devices']} on process {d['process_index']}/{d['process_count']}; "
           f"batch {d['batch_size']} global = {d['per_device_batch']} per device "
           f"({d['data_shards']} data shards), eval batch {d['eval_batch_size']} global = "
           f"{d['per_device_eval_batch']} per device"]
    if d["platform"] == "cpu" and os.path.exists("/dev/nvidia0"):
        out.append("WARNING: an NVIDIA GPU is present but JAX runs on the CPU: install the "
                   "CUDA build (pip install -e '.[cuda]') or unset JAX_PLATFORMS=cpu")
    return out
