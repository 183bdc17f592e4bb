"""Atomic, resumable, verified checkpoints with orbax, portable across topologies.

Orbax writes each step to a temporary directory and renames it when complete (on GCS, where
there is no rename, it writes a commit marker last), so a run killed at any instant leaves only
whole checkpoints; `latest` finds the newest and training resumes from it. Teachers are loaded
params-only from their own checkpoint path. Directories are local paths or `gs://` URIs
(`kdjax.storage`; buckets need the `gcp` extra: orbax lists them through epath + gcsfs and
writes arrays through tensorstore's own GCS driver).

Portable: every restore names its target shardings on the current mesh (the train state's own,
or replicated for a teacher's variables), so a checkpoint written by any (processes x devices)
reads back on any other. Verified: each step's `meta` records a checksum of every array
(`kdjax.train.checksum`); a step whose arrays differ from them, or that does not read back, is
moved aside to `unreadable-<step>` and the previous one used. A damaged teacher is an error
naming the checkpoint (its previous step would be another teacher).
"""
from __future__ import annotations

import gc
import logging
import os
import sys
from typing import Any

import jax
import orbax.checkpoint as ocp

from kdjax import errors
from kdjax import storage
from kdjax.train import checksum
from kdjax.train import mesh as mesh_lib
from kdjax.train import sync

CHECKSUMS = "array_checksums"   # the key of the per-leaf digests in a step's meta


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
        """Save `tree` and the JSON `meta` (with the arrays' checksums) as `step`; every
        process calls it."""
        if not (force or self.should_save(step)):
            return False
        meta = {**(meta or {}), CHECKSUMS: checksum.digests(tree)}
        return self._manager.save(int(step), args=ocp.args.Composite(
            state=ocp.args.StandardSave(tree), meta=ocp.args.JsonSave(meta)), force=force)

    def restore(self, tree_like: Any, step: int | None = None) -> tuple[Any, dict]:
        """(state, meta) of `step` (default: the latest), into the structure, dtypes and
        shardings of `tree_like`. Raises CheckpointError when an array's checksum differs."""
        step = self.latest_step() if step is None else step
        if step is None:
            raise CheckpointError(f"no checkpoint in {self.directory}")
        state, meta = self._read(tree_like, step)
        _verify(state, meta, os.path.join(self.directory, str(step)))
        return state, _without_checksums(meta)

    def _read(self, tree_like: Any, step: int) -> tuple[Any, dict]:
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, tree_like)
        out = self._manager.restore(step, args=ocp.args.Composite(
            state=ocp.args.StandardRestore(abstract), meta=ocp.args.JsonRestore()))
        return out["state"], dict(out["meta"] or {})

    def restore_latest_readable(self, tree_like: Any, steps: list[int]
                                ) -> tuple[int, Any, dict] | None:
        """Restore the newest of `steps` that reads back with the checksums it was saved with.
        An unreadable or damaged one is reported by name and moved aside to
        `<dir>/unreadable-<step>` (kept, never deleted), so the run goes on from the previous
        good checkpoint. Every process takes the same decision. None when `steps` is empty."""
        for step in sorted(steps, reverse=True):
            path = os.path.join(self.directory, str(step))
            problem = None
            try:
                state, meta = self._read(tree_like, step)
            except Exception as err:  # orbax raises assorted errors for a damaged step
                problem = f"{type(err).__name__}: {_first_line(err)}"
            if problem is not None:
                _collect_failed_reads()
            if sync.all_ok(problem is None):   # no process may verify alone (all-gathers)
                try:
                    _verify(state, meta, path)
                    return step, state, _without_checksums(meta)
                except CheckpointError as err:
                    problem = str(err)
            print(f"warning: checkpoint {path} is unreadable ({problem or 'on another process'}); "
                  "trying the previous one", flush=True)
            if jax.process_index() == 0 and storage.isdir(path):
                storage.path(path).rename(os.path.join(self.directory, f"unreadable-{step}"))
            sync.barrier("kdjax_unreadable_checkpoint")
            self._manager.reload()
        if steps:
            raise CheckpointError(f"no readable checkpoint in {self.directory} (tried steps "
                                  f"{sorted(steps, reverse=True)}); move it away to start over")
        return None

    def wait(self) -> None:
        self._manager.wait_until_finished()

    def close(self) -> None:
        self._manager.close()


class _NoUnretrievedTasks(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "exception was never retrieved" not in record.getMessage()


def _collect_failed_reads() -> None:
    """Collect the asyncio tasks of orbax's other reads of a damaged step now, muting their
    reports ('Task exception was never retrieved', or 'Event loop is closed' from a task whose
    loop has ended): tracebacks at exit otherwise, for a damage already reported in one line."""
    log, mute, hook = logging.getLogger("asyncio"), _NoUnretrievedTasks(), sys.unraisablehook

    def quiet(unraisable):
        if not (isinstance(unraisable.exc_value, RuntimeError)
                and "Event loop is closed" in str(unraisable.exc_value)):
            hook(unraisable)

    log.addFilter(mute)
    sys.unraisablehook = quiet
    try:
        gc.collect()
    finally:
        sys.unraisablehook = hook
        log.removeFilter(mute)


def _first_line(err: BaseException) -> str:
    return str(err).splitlines()[0][:200] if str(err) else ""


def _without_checksums(meta: dict) -> dict:
    return {k: v for k, v in meta.items() if k != CHECKSUMS}


def _verify(tree: Any, meta: dict, path: str) -> None:
    """Raise CheckpointError naming `path` and the first damaged array when an array of `tree`
    differs from the checksums recorded in `meta` (older checkpoints carry none)."""
    bad = checksum.mismatches(tree, meta.get(CHECKSUMS) or {})
    if bad:
        raise CheckpointError(f"checkpoint {path} is damaged: {len(bad)} array(s) differ from "
                              f"the checksums saved with them (first: {bad[0]})")


def _replicated(metadata: Any, mesh) -> Any:
    """Abstract arrays (shape, dtype, replicated on `mesh`) for the variables (params and
    batch_stats) of a checkpoint's array metadata; the rest is not read."""
    sharding = mesh_lib.replicated(mesh if mesh is not None else mesh_lib.make_mesh())
    tree = getattr(metadata, "tree", metadata)

    def abstract(x):
        return jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding)

    def is_leaf(x):
        return hasattr(x, "shape") and hasattr(x, "dtype")

    return {k: jax.tree.map(abstract, v, is_leaf=is_leaf) for k, v in tree.items()
            if k in ("params", "batch_stats")}


def _metadata(item_dir: str) -> Any:
    """The array metadata (shapes, dtypes) of a saved pytree item."""
    reader = ocp.StandardCheckpointer()
    try:
        return reader.metadata(item_dir).item_metadata
    finally:
        reader.close()


def _restore_args(target: Any) -> Any:
    """Partial restore of `target`'s leaves into their abstract shardings."""
    return ocp.args.PyTreeRestore(
        item=target, partial_restore=True,
        restore_args=jax.tree.map(lambda a: ocp.ArrayRestoreArgs(
            sharding=a.sharding, global_shape=a.shape, dtype=a.dtype), target))


def load_variables(path: str, step: int | None = None, mesh=None) -> dict:
    """Load `{'params', 'batch_stats'}` of a finished run (a workdir or its checkpoints dir).

    The arrays come back replicated on `mesh` (default: every device), whatever topology wrote
    them. Raises FileNotFoundError naming the path when there is no checkpoint there, and
    CheckpointError naming the step's folder when it does not read back or its arrays differ
    from their checksums.
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
    manager.close()
    problem, tree, meta = None, None, {}
    try:
        tree, meta = _read_variables(directory, step_dir, step, mesh)
    except Exception as err:  # orbax raises assorted errors for a damaged step
        problem = f"{type(err).__name__}: {_first_line(err)}"
    if problem is not None:
        _collect_failed_reads()
    if not sync.all_ok(problem is None):
        raise CheckpointError(f"checkpoint {step_dir} is unreadable "
                              f"({problem or 'on another process'}); train it again or point "
                              "to another checkpoint")
    variables = {"params": tree["params"], "batch_stats": tree.get("batch_stats") or {}}
    try:
        _verify(variables, meta, step_dir)
    except CheckpointError as err:
        raise CheckpointError(f"{err}; train it again or point to another checkpoint") from None
    return variables


def _read_variables(directory: str, step_dir: str, step: int, mesh) -> tuple[dict, dict]:
    """(the step's state tree with params and batch_stats read, its meta)."""
    if storage.isdir(os.path.join(step_dir, "state")):
        target = _replicated(_metadata(os.path.join(step_dir, "state")), mesh)
        manager = ocp.CheckpointManager(directory, item_names=("state", "meta"),
                                        options=ocp.CheckpointManagerOptions(read_only=True))
        try:
            out = manager.restore(step, args=ocp.args.Composite(
                state=_restore_args(target), meta=ocp.args.JsonRestore()))
        finally:
            manager.close()
        return dict(out["state"]), dict(out["meta"] or {})
    # a params-only checkpoint written by launch.convert_teacher or an older kdjax
    target = _replicated(_metadata(step_dir), mesh)
    manager = ocp.CheckpointManager(directory, options=ocp.CheckpointManagerOptions(
        read_only=True))
    try:
        return dict(manager.restore(step, args=_restore_args(target))), {}
    finally:
        manager.close()
