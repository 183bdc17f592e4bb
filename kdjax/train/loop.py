"""`fit`: the one training loop every method runs on.

The loop is resumable at step granularity: batch order is a function of (seed, epoch) and the
step's randomness is `fold_in(rng, step)`, so a run restored from its latest checkpoint draws
exactly the batches and noise an uninterrupted run would have drawn. Each checkpoint holds the
train state (a method's state included) and the run's history so far, so a killed-and-resumed
run returns the same history as an uninterrupted one and logs every step once.
"""
from __future__ import annotations

import copy
import dataclasses
import itertools
import os
import time
from typing import Any, Callable, Sequence

import jax
import ml_collections
import numpy as np
from flax import linen as nn

from kdjax import storage
from kdjax.data import DatasetInfo, Split
from kdjax.data import loader
from kdjax.data.pipeline import iterate_batches, prefetch
from kdjax.train import checkpoint as ckpt_lib
from kdjax.train import compiled
from kdjax.train import inference
from kdjax.train import mesh as mesh_lib
from kdjax.train import optim
from kdjax.train import preemption
from kdjax.train import sync
from kdjax.train.method import EpochContext, LossFn, Method
from kdjax.train.metrics import MetricWriter, summarize
from kdjax.train.state import TrainState, checkpoint_items, create_train_state
from kdjax.train.step import make_train_step

_SUM_KEYS = ("loss_sum", "correct", "count")


@dataclasses.dataclass
class Teacher:
    """A frozen teacher: its module and variables; `logits_cache` (and `features_cache`) hold
    its outputs on the training split (rows in split order) when inputs are not augmented."""
    model: nn.Module
    variables: Any
    logits_cache: np.ndarray | None = None
    features_cache: np.ndarray | None = None


@dataclasses.dataclass
class FitResult:
    state: TrainState
    history: list[dict]
    teacher_queries: int
    wall_time: float
    examples_per_sec: float


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


def _teacher_inputs(teachers: Sequence[Teacher], train: Split) -> tuple[dict, Any]:
    """(per-example cached teacher outputs, frozen teacher variables for the step)."""
    if not teachers:
        return {}, None
    cached = [t.logits_cache is not None for t in teachers]
    if any(cached) and not all(cached):
        raise ValueError("either every teacher has a logits cache or none has")
    if not all(cached):
        return {}, [t.variables for t in teachers]
    per_example = {"teacher_logits": teachers[0].logits_cache if len(teachers) == 1 else
                   np.stack([np.asarray(t.logits_cache, np.float32) for t in teachers], 1)}
    if len(teachers) == 1 and teachers[0].features_cache is not None:
        per_example["teacher_features"] = teachers[0].features_cache
    return per_example, None


def fit(config: ml_collections.ConfigDict, workdir: str, *, model: nn.Module, method: Method,
        train: Split, info: DatasetInfo, evals: dict[str, Split] | None = None,
        teachers: Sequence[Teacher] = (), init_variables: dict | None = None,
        horizon_epochs: int | None = None, mesh=None) -> FitResult:
    """Train a student with `method` on `train`, checkpointing to `<workdir>/checkpoints`.

    teachers: frozen teachers; their cached logits reach the loss as `batch['teacher_logits']`
        (stacked (B, K, C) for K > 1), or they run inside the step when not cached.
    init_variables: `{'params', 'batch_stats'}` to start from (a warm start) instead of a fresh
        initialisation. horizon_epochs: the epochs the learning-rate schedule spans (default
        `config.train.epochs`; a run may stop before its schedule ends).
    Evaluates on each split of `evals` every `config.train.eval_every_epochs` epochs and at the
    end; each history row holds the step, the epoch, the epoch's training loss and accuracy,
    the method's epoch row and the evaluations. Re-running with the same workdir resumes from
    the newest readable checkpoint.
    """
    cfg = config.train
    model = compiled.canonical_model(method.model if method.model is not None else model)
    mesh = mesh if mesh is not None else mesh_lib.make_mesh(config.mesh.axes)
    batch_size = config.data.batch_size
    mesh_lib.check_batch_size(batch_size, mesh, "config.data.batch_size")
    steps_per_epoch = len(train) // batch_size
    if steps_per_epoch == 0:
        raise ValueError(f"training split has {len(train)} examples, fewer than "
                         f"config.data.batch_size={batch_size}")
    _check_side_splits(method.side_splits, batch_size, mesh)
    total_steps = steps_per_epoch * cfg.epochs
    evals = evals or {}

    sched_cfg = cfg
    if horizon_epochs is not None:
        sched_cfg = copy.deepcopy(cfg)
        with sched_cfg.unlocked():
            sched_cfg.epochs = int(horizon_epochs)
    tx = compiled.optimizer(sched_cfg)   # the schedule is data in the state (optim.py)
    schedule = optim.make_schedule(sched_cfg, steps_per_epoch)
    init_rng, step_rng = jax.random.split(jax.random.PRNGKey(config.seed))
    per_example, teacher_vars = _teacher_inputs(teachers, train)
    frozen = {"teachers": teacher_vars, "method": method.constants}
    state = create_train_state(model, tx, init_rng, info.image_shape,
                               example_state=method.example_state, extra=method.extra,
                               frozen=frozen)
    sched_data = optim.schedule_data(sched_cfg, steps_per_epoch)
    state = state.replace(opt_state=optim.with_schedule(state.opt_state, sched_data))
    if init_variables is not None:
        state = state.replace(params=init_variables["params"],
                              batch_stats=init_variables.get("batch_stats", {}))
    shardings = _state_shardings(state, mesh)
    state = mesh_lib.put(state, shardings)
    step_rng = mesh_lib.replicate(step_rng, mesh)

    checkpointer = ckpt_lib.Checkpointer(
        os.path.join(workdir, "checkpoints"), max_to_keep=cfg.keep_checkpoints,
        save_interval_steps=cfg.checkpoint_every_steps)
    start_step, meta = 0, {}
    restored = checkpointer.restore_latest_readable(checkpoint_items(state),
                                                    sync.agree_steps(checkpointer.all_steps()))
    if restored is not None:
        start_step, items, meta = restored
        if start_step > total_steps:   # --allow_changes extends a run, never shrinks it
            raise ValueError(f"{checkpointer.directory}: epochs done "
                             f"{start_step / steps_per_epoch:g} > requested {cfg.epochs}; a run "
                             "can be extended, not shrunk: use a new --workdir")
        state = state.replace(**items)
        # The schedule is this fit's, whatever the checkpoint's state carried.
        state = state.replace(opt_state=mesh_lib.put(
            optim.with_schedule(state.opt_state, sched_data), shardings.opt_state))
        if jax.process_index() == 0:
            print(f"Resumed from step {start_step} in {checkpointer.directory}", flush=True)
    history: list[dict] = list(meta.get("history", []))
    epoch_row: dict = dict(meta.get("epoch_row", {}))
    epoch_sums: dict = dict(meta.get("epoch_sums", {}))

    teacher_models = [t.model for t in teachers] if teacher_vars is not None else []
    # On-disk splits are read, decoded and augmented (RandomResizedCrop / pad-crop + flip) by
    # grain workers; in-memory splits are augmented on the device, inside the step.
    on_disk = loader.host_augments(train)
    # The jitted steps are shared by every fit with the same key (kdjax.train.compiled).
    p_train_step = compiled.train_step(
        make_train_step, model, method, mean=info.mean, std=info.std,
        augment=config.data.augment and not on_disk, teachers=teacher_models,
        shardings=shardings, batch_sharding=mesh_lib.data_sharded(mesh),
        replicated=mesh_lib.replicated(mesh))
    p_eval_step = compiled.eval_step(model, info.mean, info.std)
    p_predict = compiled.predict_step(model, info.mean, info.std)

    per_example.update(method.per_example)
    for key, array in per_example.items():
        if len(array) != len(train):
            raise ValueError(f"per-example array {key!r} has {len(array)} rows, the training "
                             f"split {len(train)}")
    row_of_id = np.zeros(int(train.ids.max()) + 1, np.int64)
    row_of_id[train.ids] = np.arange(len(train.ids))

    writer = MetricWriter(workdir, tensorboard=config.tensorboard, resume_step=start_step)
    # Step metrics not yet logged; a SIGTERM checkpoint carries them, so the resumed run logs
    # the same lines as an uninterrupted one.
    pending: list[tuple[int, dict]] = _pending_from_meta(meta.get("pending", []))
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
                    f"{s // steps_per_epoch}); lower config.train.learning_rate or check the "
                    "inputs, " + ("in a new --workdir (this one holds the run's checkpoints, "
                                  f"last good in {checkpointer.directory})"
                                  if checkpointer.all_steps() else
                                  "in the same --workdir (no checkpoint was written)"))
        sums = {k: sum(float(m[k]) for m in fetched) for k in _SUM_KEYS}
        for k in _SUM_KEYS:
            epoch_sums[k] = epoch_sums.get(k, 0.0) + sums[k]
        scalars = summarize(sums, "train")
        for key in fetched[-1]:  # a method's own step metrics (e.g. ALM-KD's lambda_mean)
            if key not in _SUM_KEYS:
                scalars[f"train/{key}"] = float(np.mean([m[key] for m in fetched]))
        scalars["train/learning_rate"] = float(schedule(step))
        scalars["train/examples_per_sec"] = seen / max(time.time() - t_start, 1e-9)
        writer.write(step, scalars)
        pending = []

    def save(step: int, force: bool = False, preempted: bool = False) -> None:
        meta = {"history": history, "epoch_row": epoch_row, "epoch_sums": epoch_sums}
        if preempted:   # an unscheduled checkpoint: log nothing an uninterrupted run would not
            meta["pending"] = _pending_to_meta(pending)
        else:
            flush(step)
        checkpointer.save(step, checkpoint_items(state), meta, force=force)
        writer.flush()   # on a bucket, the metrics log is durable at every checkpoint

    def end_epoch(step: int, epoch: int) -> None:
        nonlocal epoch_row, epoch_sums
        flush(step)
        do_eval = evals and (epoch % cfg.eval_every_epochs == 0 or epoch == cfg.epochs)
        if do_eval or epoch_row:
            row = {"step": step, "epoch": epoch,
                   **summarize(epoch_sums or {k: 0.0 for k in _SUM_KEYS}, "train"),
                   **epoch_row}
            if do_eval:
                variables = {"params": state.params, "batch_stats": state.batch_stats}
                for name, split in evals.items():
                    row.update(summarize(inference.evaluate(
                        p_eval_step, variables, split, config.data.eval_batch_size, mesh),
                        name))
            _check_finite(row, checkpointer.directory)
            writer.write(step, {k: v for k, v in row.items() if k not in ("step", "epoch")})
            history.append(row)
        epoch_row, epoch_sums = {}, {}

    def predict(s: TrainState) -> tuple[np.ndarray, np.ndarray]:
        variables = {"params": s.params, "batch_stats": s.batch_stats}
        return inference.predict(p_predict, variables, train, config.data.eval_batch_size,
                                 mesh)

    progress = _progress(total_steps, start_step, config)
    step, stop = start_step, False
    with preemption.training():
        for epoch in range(start_step // steps_per_epoch, cfg.epochs):
            skip = max(start_step - epoch * steps_per_epoch, 0)
            if method.epoch_start is not None and skip == 0:
                ctx = EpochContext(epoch=epoch, train=train, predict=predict,
                                   place=lambda s: mesh_lib.put(s, shardings),
                                   teacher_logits=per_example.get("teacher_logits"),
                                   teacher_features=per_example.get("teacher_features"),
                                   mesh=mesh)
                state, row = method.epoch_start(state, ctx)
                state = mesh_lib.put(state, shardings)
                epoch_row = {k: (float(v) if isinstance(v, (int, float, np.generic, np.ndarray))
                                 else v) for k, v in (row or {}).items()}
            order = dict(seed=config.seed, epoch=epoch, shuffle=True, drop_remainder=True,
                         process_index=jax.process_index(), process_count=jax.process_count(),
                         start_batch=skip)
            if on_disk:
                batches = loader.iterate_batches(train, batch_size, augment=config.data.augment,
                                                 worker_count=None if config.data.workers < 0
                                                 else config.data.workers, **order)
            else:
                batches = iterate_batches(train, batch_size, **order)
            side = {name: itertools.islice(_side_batches(split, batch_size, config.seed, epoch,
                                                         name), skip, None)
                    for name, split in method.side_splits.items()}
            last = (epoch + 1) * steps_per_epoch
            with prefetch(_device_batches(batches, mesh, per_example, row_of_id, side)) as ready:
                for batch in ready:
                    state, metrics = p_train_step(state, batch, step_rng)
                    step += 1
                    seen += batch_size
                    pending.append((step, metrics))
                    stop = preemption.stop_at(step)   # SIGTERM: checkpoint now, then stop
                    scheduled = checkpointer.should_save(step)
                    if step != last and (stop or scheduled):
                        save(step, force=stop, preempted=not scheduled)
                    elif step % cfg.log_every_steps == 0:
                        flush(step)
                    progress(step, seen / max(time.time() - t_start, 1e-9))
                    if stop:
                        break
            if stop and step != last:
                break
            end_epoch(step, epoch + 1)
            if stop or checkpointer.should_save(step) or epoch + 1 == cfg.epochs:
                save(step, force=stop or epoch + 1 == cfg.epochs)
            if stop:
                break
    if stop:
        checkpointer.wait()
        checkpointer.close()
        writer.close()
        progress(None, 0.0)
        raise preemption.stopped(step, checkpointer.directory)
    checkpointer.wait()
    checkpointer.close()
    writer.close()
    progress(None, 0.0)
    elapsed = time.time() - t_start
    k = len(teachers)
    queries = k * (len(train) if teacher_vars is None else step * batch_size) if k else 0
    return FitResult(state=state, history=history, teacher_queries=queries, wall_time=elapsed,
                     examples_per_sec=seen / max(elapsed, 1e-9))


def _pending_to_meta(pending: list[tuple[int, dict]]) -> list:
    """Unlogged step metrics as JSON: [step, {name: [value, dtype]}] (exact for float32)."""
    fetched = jax.device_get([m for _, m in pending])
    return [[s, {k: [float(v), str(np.asarray(v).dtype)] for k, v in m.items()}]
            for (s, _), m in zip(pending, fetched)]


def _pending_from_meta(rows: list) -> list[tuple[int, dict]]:
    return [(int(s), {k: np.asarray(v, dtype) for k, (v, dtype) in m.items()}) for s, m in rows]


def _check_finite(row: dict, directory: str) -> None:
    """A history row whose loss or accuracy is NaN or infinite is an error, never a result (a
    method's own row entries may be undefined, e.g. a rank correlation of one point)."""
    for key, value in row.items():
        if key.endswith(("/loss", "/accuracy")) and not np.isfinite(value):
            raise FloatingPointError(
                f"non-finite {key} ({value}) at epoch {row['epoch']} (step {row['step']}); "
                f"no result is written. The last good checkpoint is in {directory}")


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


# The config field that sets a side split's size (`kdjax.experiment.load_splits`).
_SIDE_FIELDS = {"validation": "config.data.num_validation"}


def _check_side_splits(side_splits: dict, batch_size: int, mesh) -> None:
    """Refuse, before any step, a side split smaller than one training batch: each step draws
    `batch_size` distinct examples of it (ALM-KD's validation minibatch), a global batch that
    the mesh already splits; a smaller or repeated side batch would silently change the
    method's side objective."""
    for name, split in side_splits.items():
        if len(split) < batch_size:
            field = _SIDE_FIELDS.get(name, f"side split {name!r}")
            raise ValueError(
                f"{field}={len(split)} is smaller than one side batch: each step draws "
                f"config.data.batch_size={batch_size} of its examples (global, over "
                f"{mesh.size} devices, {jax.process_count()} process"
                f"{'es' if jax.process_count() > 1 else ''}); hold out at least {batch_size}")


def _side_batches(split: Split, batch_size: int, seed: int, epoch: int, name: str):
    """Endless full batches of a side split (at least one batch long: `_check_side_splits`);
    the order depends on (seed, epoch, name) only, so a resumed epoch replays the same side
    batches."""
    salt = int.from_bytes(name.encode()[:4].ljust(4, b"\0"), "little")
    for rep in itertools.count():
        yield from iterate_batches(split, batch_size, seed=seed + salt,
                                   epoch=epoch * 1000 + rep, shuffle=True, drop_remainder=True,
                                   process_index=jax.process_index(),
                                   process_count=jax.process_count())


def _progress(total: int, start: int, config) -> Callable:
    """A tqdm bar showing examples/s (process 0, when enabled); a no-op otherwise."""
    if jax.process_index() != 0 or not config.progress_bar:
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
    fn = compiled.predict_step(model, info.mean, info.std)
    return inference.predict(fn, variables, split, batch_size, mesh)


def evaluate_split(model: nn.Module, variables: Any, split: Split, info: DatasetInfo,
                   batch_size: int, mesh) -> dict[str, float]:
    fn = compiled.eval_step(model, info.mean, info.std)
    return summarize(inference.evaluate(fn, variables, split, batch_size, mesh), "eval")


def variables_of(state: TrainState) -> dict:
    return {"params": state.params, "batch_stats": state.batch_stats}


def write_results(workdir: str, results: dict) -> None:
    """`<workdir>/results.json`, written atomically by process 0 (local disk or gs://)."""
    if jax.process_index() == 0:
        storage.write_json(os.path.join(workdir, "results.json"), results, indent=2)


def read_results(workdir: str) -> dict | None:
    """The finished stage's results, or None; the decision is process 0's, on every process."""
    path = os.path.join(workdir, "results.json")
    if not sync.agree_flag(storage.exists(path)):
        return None
    return storage.read_json(path)
