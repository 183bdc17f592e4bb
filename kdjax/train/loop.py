"""`fit`: the one training loop every method shares; `train_and_evaluate`: CE / KD runs.

The loop is resumable at step granularity: batch order is a function of (seed, epoch) and the
step's randomness is `fold_in(rng, step)`, so a run restored from its latest checkpoint draws
exactly the batches and noise an uninterrupted run would have drawn.
"""
from __future__ import annotations

import dataclasses
import itertools
import json
import math
import os
import time
from typing import Any, Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import linen as nn

from kdjax import losses
from kdjax.data import DatasetInfo, Split
from kdjax.data.pipeline import iterate_batches, prefetch
from kdjax.train import checkpoint as ckpt_lib
from kdjax.train import inference
from kdjax.train import mesh as mesh_lib
from kdjax.train.metrics import MetricWriter, summarize
from kdjax.train.optim import make_optimizer
from kdjax.train.state import TrainState, checkpoint_items, create_train_state
from kdjax.train.step import LossFn, make_eval_step, make_predict_step, make_train_step


@dataclasses.dataclass
class Teacher:
    """A frozen teacher: its module and variables; `logits_cache` holds its soft labels on the
    training split (rows in split order) when inputs are not augmented."""
    model: nn.Module
    variables: Any
    logits_cache: np.ndarray | None = None


@dataclasses.dataclass
class FitResult:
    state: TrainState
    history: list[dict]
    teacher_queries: int
    wall_time: float
    examples_per_sec: float


def _check_batch_size(batch_size: int, mesh, what: str) -> None:
    shards = mesh_lib.num_data_shards(mesh)
    if batch_size % shards or batch_size % jax.process_count():
        raise ValueError(f"{what}={batch_size} must be a multiple of the {shards} data shards "
                         f"and {jax.process_count()} processes")


def _state_shardings(state: TrainState, mesh) -> Any:
    """Everything replicated, except per-example state rows split over the data axis when
    they divide evenly."""
    rep = mesh_lib.replicated(mesh)
    shards = mesh_lib.num_data_shards(mesh)
    shardings = jax.tree.map(lambda _: rep, state)
    if state.example_state is not None:
        ex = jax.tree.map(
            lambda a: mesh_lib.data_sharded(mesh) if a.shape and a.shape[0] % shards == 0
            else rep, state.example_state)
        shardings = shardings.replace(example_state=ex)
    return shardings


def fit(config: ml_collections.ConfigDict, workdir: str, *, model: nn.Module, loss_fn: LossFn,
        train: Split, info: DatasetInfo, evals: dict[str, Split] | None = None,
        teacher: Teacher | None = None, example_state: Any = None,
        per_example: dict[str, np.ndarray] | None = None,
        side_splits: dict[str, Split] | None = None, make_step: Callable | None = None,
        mesh=None) -> FitResult:
    """Train `model` on `train` with `loss_fn`, checkpointing to `<workdir>/checkpoints`.

    `per_example` arrays are aligned with the rows of `train` (e.g. soft targets) and reach
    the loss as `batch[key]`; a teacher's soft-label cache travels the same way. Each
    `side_splits[name]` adds a batch of its own to every step, under keys `name/image`,
    `name/label`, ... (e.g. ALM-KD's validation minibatch), cycling through it in a
    (seed, step)-determined order. `make_step` builds the step (default `make_train_step`; a
    method with its own update, e.g. a meta-step, passes a builder with the same signature).
    Evaluates on each split of `evals` every `config.train.eval_every_epochs` epochs and at the
    end. Re-running with the same workdir resumes from the latest checkpoint.
    """
    cfg = config.train
    mesh = mesh if mesh is not None else mesh_lib.make_mesh(config.mesh.axes)
    batch_size = config.data.batch_size
    _check_batch_size(batch_size, mesh, "config.data.batch_size")
    _check_batch_size(config.data.eval_batch_size, mesh, "config.data.eval_batch_size")
    steps_per_epoch = len(train.labels) // batch_size
    if steps_per_epoch == 0:
        raise ValueError(f"training split has {len(train.labels)} examples, fewer than "
                         f"config.data.batch_size={batch_size}")
    total_steps = steps_per_epoch * cfg.epochs
    evals = evals or {}

    tx, schedule = make_optimizer(cfg, steps_per_epoch)
    init_rng, step_rng = jax.random.split(jax.random.PRNGKey(config.seed))
    use_cache = teacher is not None and teacher.logits_cache is not None
    state = create_train_state(
        model, tx, init_rng, info.image_shape, example_state=example_state,
        teacher_variables=None if teacher is None or use_cache else teacher.variables)
    shardings = _state_shardings(state, mesh)
    state = mesh_lib.put(state, shardings)
    step_rng = mesh_lib.replicate(step_rng, mesh)

    checkpointer = ckpt_lib.Checkpointer(
        os.path.join(workdir, "checkpoints"), max_to_keep=cfg.keep_checkpoints,
        save_interval_steps=cfg.checkpoint_every_steps)
    start_step = 0
    if checkpointer.latest_step() is not None:
        restored = checkpointer.restore(checkpoint_items(state))
        state = state.replace(**restored)
        start_step = int(restored["step"])
        print(f"Resumed from step {start_step} in {checkpointer.directory}", flush=True)

    train_step = (make_step or make_train_step)(
        model, loss_fn, mean=info.mean, std=info.std, augment=config.data.augment,
        teacher=None if teacher is None or use_cache else teacher.model)
    batch_sharding = mesh_lib.data_sharded(mesh)
    p_train_step = jax.jit(
        train_step, in_shardings=(shardings, batch_sharding, mesh_lib.replicated(mesh)),
        out_shardings=(shardings, mesh_lib.replicated(mesh)), donate_argnums=(0,))
    p_eval_step = jax.jit(make_eval_step(model, mean=info.mean, std=info.std))

    per_example = dict(per_example or {})
    if use_cache:
        per_example["teacher_logits"] = teacher.logits_cache
    for key, array in per_example.items():
        if len(array) != len(train):
            raise ValueError(f"per-example array {key!r} has {len(array)} rows, the training "
                             f"split {len(train)}")
    row_of_id = np.zeros(int(train.ids.max()) + 1, np.int64)
    row_of_id[train.ids] = np.arange(len(train.ids))

    writer = MetricWriter(workdir, tensorboard=config.get("tensorboard", True))
    history: list[dict] = []
    pending: list[tuple[int, dict]] = []
    queries = 0 if use_cache or teacher is None else start_step * batch_size
    t_start, seen = time.time(), 0

    def flush(step: int) -> None:
        nonlocal pending
        if not pending:
            return
        fetched = jax.device_get([m for _, m in pending])
        for (s, _), m in zip(pending, fetched):
            if not np.isfinite(m["loss_sum"]):
                raise FloatingPointError(
                    f"non-finite training loss ({m['loss_sum']}) at step {s} (epoch "
                    f"{s // steps_per_epoch}); last good checkpoint is in "
                    f"{checkpointer.directory}. Lower the learning rate or check the inputs.")
        sums = {k: sum(float(m[k]) for m in fetched) for k in ("loss_sum", "correct", "count")}
        scalars = summarize(sums, "train")
        for key in fetched[-1]:  # a method's own step metrics (e.g. ALM-KD's lambda_mean)
            if key not in ("loss_sum", "correct", "count"):
                scalars[f"train/{key}"] = float(np.mean([m[key] for m in fetched]))
        scalars["train/learning_rate"] = float(schedule(step))
        scalars["train/examples_per_sec"] = seen / max(time.time() - t_start, 1e-9)
        writer.write(step, scalars)
        pending = []

    def run_evals(step: int, epoch: int) -> None:
        variables = {"params": state.params, "batch_stats": state.batch_stats}
        row = {"step": step, "epoch": epoch}
        for name, split in evals.items():
            row.update(summarize(inference.evaluate(
                p_eval_step, variables, split, config.data.eval_batch_size, mesh), name))
        writer.write(step, row)
        history.append(row)

    progress = _progress(total_steps, start_step, config)
    step = start_step
    for epoch in range(start_step // steps_per_epoch, cfg.epochs):
        skip = max(start_step - epoch * steps_per_epoch, 0)
        batches = iterate_batches(train, batch_size, seed=config.seed, epoch=epoch, shuffle=True,
                                  drop_remainder=True, process_index=jax.process_index(),
                                  process_count=jax.process_count(), start_batch=skip)
        side = {name: itertools.islice(_side_batches(split, batch_size, config.seed, epoch, name),
                                       skip, None)
                for name, split in (side_splits or {}).items()}
        for batch in prefetch(_device_batches(batches, mesh, per_example, row_of_id, side)):
            state, metrics = p_train_step(state, batch, step_rng)
            step += 1
            seen += batch_size
            if teacher is not None and not use_cache:
                queries += batch_size
            pending.append((step, metrics))
            checkpointer.save(step, checkpoint_items(state))
            if step % cfg.log_every_steps == 0:
                flush(step)
            progress(step, seen / max(time.time() - t_start, 1e-9))
        flush(step)
        if evals and ((epoch + 1) % cfg.eval_every_epochs == 0 or epoch + 1 == cfg.epochs):
            run_evals(step, epoch + 1)
    if evals and (not history or history[-1]["step"] != step):
        run_evals(step, cfg.epochs)
    if checkpointer.latest_step() != step:
        checkpointer.save(step, checkpoint_items(state), force=True)
    checkpointer.wait()
    checkpointer.close()
    writer.close()
    progress(None, 0.0)
    elapsed = time.time() - t_start
    return FitResult(state=state, history=history, teacher_queries=queries, wall_time=elapsed,
                     examples_per_sec=seen / max(elapsed, 1e-9))


def _device_batches(batches, mesh, per_example: dict[str, np.ndarray], row_of_id: np.ndarray,
                    side: dict):
    """Host batches -> global device arrays, adding the per-example arrays' rows by example id
    and one batch of each side split."""
    for local in batches:
        rows = row_of_id[local["id"]]
        for key, array in per_example.items():
            local[key] = array[rows]
        for name, it in side.items():
            local.update({f"{name}/{k}": v for k, v in next(it).items()})
        yield mesh_lib.to_global(local, mesh)


def _side_batches(split: Split, batch_size: int, seed: int, epoch: int, name: str):
    """Endless full batches of a side split; the order depends on (seed, epoch, name) only, so
    a resumed epoch replays the same side batches."""
    salt = int.from_bytes(name.encode()[:4].ljust(4, b"\0"), "little")
    for rep in itertools.count():
        yield from iterate_batches(split, min(batch_size, len(split)), seed=seed + salt,
                                   epoch=epoch * 1000 + rep, shuffle=True, drop_remainder=True,
                                   process_index=jax.process_index(),
                                   process_count=jax.process_count())


def _progress(total: int, start: int, config) -> Callable:
    """A tqdm bar showing examples/s (process 0, when enabled); a no-op otherwise."""
    if jax.process_index() != 0 or not config.get("progress_bar", True):
        return lambda step, rate: None
    from tqdm import tqdm
    bar = tqdm(total=total, initial=start, unit="step", dynamic_ncols=True, mininterval=2.0,
               leave=False)

    def update(step, rate):
        if step is None:
            bar.close()
            return
        bar.n = step
        bar.set_postfix_str(f"{rate:.0f} ex/s", refresh=False)
        bar.update(0)

    return update


def predict_split(model: nn.Module, variables: Any, split: Split, info: DatasetInfo,
                  batch_size: int, mesh) -> tuple[np.ndarray, np.ndarray]:
    """(logits, penultimate features) of `model` on every example of `split`."""
    fn = jax.jit(make_predict_step(model, mean=info.mean, std=info.std))
    return inference.predict(fn, variables, split, batch_size, mesh)


def evaluate_split(model: nn.Module, variables: Any, split: Split, info: DatasetInfo,
                   batch_size: int, mesh) -> dict[str, float]:
    fn = jax.jit(make_eval_step(model, mean=info.mean, std=info.std))
    return summarize(inference.evaluate(fn, variables, split, batch_size, mesh), "eval")


def variables_of(state: TrainState) -> dict:
    return {"params": state.params, "batch_stats": state.batch_stats}


def write_results(workdir: str, results: dict) -> None:
    if jax.process_index() == 0:
        os.makedirs(workdir, exist_ok=True)
        tmp = os.path.join(workdir, "results.json.tmp")
        with open(tmp, "w") as f:
            json.dump(results, f, indent=2, default=str)
        os.replace(tmp, os.path.join(workdir, "results.json"))


def read_results(workdir: str) -> dict | None:
    path = os.path.join(workdir, "results.json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)
