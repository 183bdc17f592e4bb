"""Atomic, resumable checkpoints with orbax.

Orbax writes each step to a temporary directory and renames it when complete (on GCS, where
there is no rename, it writes a commit marker last), so a run killed at any instant leaves only
whole checkpoints; `latest` finds the newest and training resumes from it. Teachers are loaded
params-only from their own checkpoint path. Directories are local paths or `gs://` URIs
(`kdjax.storage`; buckets need the `gcp` extra: orbax lists them through epath + gcsfs and
writes arrays through tensorstore's own GCS driver).
"""
from __future__ import annotations

import os
from typing import Any

import jax
import orbax.checkpoint as ocp

from kdjax import errors
from kdjax import storage


def _abs(path: str) -> str:
    """An absolute local path, or the URI as given (`storage.path` checks it)."""
    return os.fspath(storage.path(path))


class CheckpointError(errors.Error, RuntimeError):
    """No readable checkpoint where one was expected (the message names the directory)."""


class Checkpointer:
    """`ocp.CheckpointManager` for one run: per step, the train-state pytree (`state`) and a
    JSON record (`meta`: the run's history so far, so a resumed run loses none of it)."""

    def __init__(self, directory: str, *, max_to_keep: int = 3, save_interval_steps: int = 1,
                 async_save: bool = False):
        self.directory = _abs(directory)
        self._manager = ocp.CheckpointManager(
            self.directory, item_names=("state", "meta"),
            options=ocp.CheckpointManagerOptions(
                max_to_keep=max_to_keep, save_interval_steps=save_interval_steps,
                enable_async_checkpointing=async_save, create=True,
                # the schedule only: the training loop saves at a preemption itself
                # (kdjax.train.preemption), so `should_save` says whether a step is scheduled
                save_decision_policy=ocp.checkpoint_managers.AnySavePolicy([
                    ocp.checkpoint_managers.FixedIntervalPolicy(save_interval_steps),
                    ocp.checkpoint_managers.InitialSavePolicy()])))

    def latest_step(self) -> int | None:
        return self._manager.latest_step()

    def all_steps(self) -> list[int]:
        return sorted(self._manager.all_steps())

    def should_save(self, step: int) -> bool:
        return self._manager.should_save(int(step))

    def save(self, step: int, tree: Any, meta: Any = None, *, force: bool = False) -> bool:
        return self._manager.save(int(step), args=ocp.args.Composite(
            state=ocp.args.StandardSave(tree), meta=ocp.args.JsonSave(meta or {})), force=force)

    def restore(self, tree_like: Any, step: int | None = None) -> tuple[Any, dict]:
        """(state, meta) of `step` (default: the latest), into the structure, dtypes and
        shardings of `tree_like`."""
        step = self.latest_step() if step is None else step
        if step is None:
            raise CheckpointError(f"no checkpoint in {self.directory}")
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, tree_like)
        out = self._manager.restore(step, args=ocp.args.Composite(
            state=ocp.args.StandardRestore(abstract), meta=ocp.args.JsonRestore()))
        return out["state"], dict(out["meta"] or {})

    def restore_latest_readable(self, tree_like: Any, steps: list[int]
                                ) -> tuple[int, Any, dict] | None:
        """Restore the newest of `steps` that reads back. An unreadable one is reported by name
        and moved aside to `<dir>/unreadable-<step>` (kept, never deleted), so the run goes on
        from the previous good checkpoint. None when `steps` is empty."""
        for step in sorted(steps, reverse=True):
            try:
                state, meta = self.restore(tree_like, step)
                return step, state, meta
            except Exception as err:  # orbax raises assorted errors for a damaged step
                path = os.path.join(self.directory, str(step))
                print(f"warning: checkpoint {path} is unreadable ({type(err).__name__}: "
                      f"{str(err).splitlines()[0][:200] if str(err) else ''}); trying the "
                      "previous one", flush=True)
                if jax.process_index() == 0 and storage.isdir(path):
                    storage.path(path).rename(os.path.join(self.directory, f"unreadable-{step}"))
                self._manager.reload()
        if steps:
            raise CheckpointError(f"no readable checkpoint in {self.directory} (tried steps "
                                  f"{sorted(steps, reverse=True)}); move it away to start over")
        return None

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
    if not storage.isdir(directory):
        raise FileNotFoundError(
            f"missing checkpoint: {directory} does not exist (train the teacher first or fix "
            "config.teacher.checkpoint)")
    manager = ocp.CheckpointManager(directory, options=ocp.CheckpointManagerOptions(
        read_only=True))
    step = manager.latest_step() if step is None else step
    if step is None:
        raise FileNotFoundError(f"missing checkpoint: no finished checkpoint in {directory}")
    step = int(step)
    step_dir = os.path.join(directory, str(step))
    try:
        if storage.isdir(os.path.join(step_dir, "state")):
            manager.close()
            manager = ocp.CheckpointManager(directory, item_names=("state", "meta"),
                                            options=ocp.CheckpointManagerOptions(read_only=True))
            tree = manager.restore(step, args=ocp.args.Composite(
                state=ocp.args.StandardRestore()))["state"]
        else:   # a params-only checkpoint written by launch.convert_teacher or an older kdjax
            tree = manager.restore(step, args=ocp.args.StandardRestore())
    except Exception as err:  # orbax raises assorted errors for a damaged step
        raise CheckpointError(f"checkpoint {step_dir} is unreadable ({type(err).__name__}: "
                              f"{(str(err).splitlines() or [''])[0][:200]}); train it again or "
                              "point to another checkpoint") from err
    finally:
        manager.close()
    return {"params": tree["params"], "batch_stats": tree.get("batch_stats") or {}}
