"""Atomic, resumable checkpoints with orbax.

Orbax writes each step to a temporary directory and renames it when complete, so a run killed
at any instant leaves only whole checkpoints; `latest` finds the newest and training resumes
from it. Teachers are loaded params-only from their own checkpoint path.
"""
from __future__ import annotations

import os
from typing import Any

import jax
import orbax.checkpoint as ocp


def _abs(path: str) -> str:
    return path if "://" in path else os.path.abspath(path)


class Checkpointer:
    """A thin wrapper around `ocp.CheckpointManager` for one pytree per step."""

    def __init__(self, directory: str, *, max_to_keep: int = 3, save_interval_steps: int = 1,
                 async_save: bool = False):
        self.directory = _abs(directory)
        self._manager = ocp.CheckpointManager(
            self.directory,
            options=ocp.CheckpointManagerOptions(
                max_to_keep=max_to_keep, save_interval_steps=save_interval_steps,
                enable_async_checkpointing=async_save, create=True))

    def latest_step(self) -> int | None:
        return self._manager.latest_step()

    def save(self, step: int, tree: Any, *, force: bool = False) -> bool:
        return self._manager.save(int(step), args=ocp.args.StandardSave(tree), force=force)

    def restore(self, tree_like: Any, step: int | None = None) -> Any:
        """Restore into the structure, dtypes and shardings of `tree_like`."""
        step = self.latest_step() if step is None else step
        if step is None:
            raise FileNotFoundError(f"no checkpoint in {self.directory}")
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, tree_like)
        return self._manager.restore(step, args=ocp.args.StandardRestore(abstract))

    def wait(self) -> None:
        self._manager.wait_until_finished()

    def close(self) -> None:
        self._manager.close()


def load_variables(path: str, step: int | None = None) -> dict:
    """Load `{'params', 'batch_stats'}` of a finished run (a workdir or its checkpoints dir).

    Raises FileNotFoundError naming the path when there is no checkpoint there.
    """
    path = _abs(path)
    directory = path if os.path.basename(path.rstrip("/")) == "checkpoints" else os.path.join(
        path, "checkpoints")
    if "://" not in directory and not os.path.isdir(directory):
        raise FileNotFoundError(
            f"missing checkpoint: {directory} does not exist (train the teacher first or fix "
            "config.teacher.checkpoint)")
    manager = ocp.CheckpointManager(directory, options=ocp.CheckpointManagerOptions(
        read_only=True))
    step = manager.latest_step() if step is None else step
    if step is None:
        raise FileNotFoundError(f"missing checkpoint: no finished checkpoint in {directory}")
    tree = manager.restore(step, args=ocp.args.StandardRestore())
    manager.close()
    return {"params": tree["params"], "batch_stats": tree.get("batch_stats") or {}}
