"""The method interface: what a distillation method hands `fit`.

A method is its per-example loss and, only where it needs them, its own state and hooks.
Vanilla KD is `Method(loss=kd_loss)`; ALM-KD adds a λ table (`example_state`) and a pre-step
meta-update; DiSK adds its guide (`extra`) and a per-epoch guide phase; SimKD changes the model.
`fit` owns everything else: the loop, optimizer, checkpoints (a method's state included),
metrics and evaluation.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping

import jax
import numpy as np

Array = jax.Array
# (logits, features, batch) -> (B,) per-example losses.
LossFn = Callable[[Array, Array, dict], Array]


@dataclasses.dataclass(frozen=True)
class StepContext:
    """What a pre-step hook sees inside the jitted step besides the state and batch.

    x: the preprocessed (augmented, normalised) images of the batch; rng: the step's key
    (`fold_in(seed key, step)`); dropout_rng: the key of the gradient step's forward pass;
    learning_rate: the schedule's value at this step.
    """
    model: Any
    x: Array
    rng: Array
    dropout_rng: Array
    learning_rate: Array


@dataclasses.dataclass(frozen=True)
class EpochContext:
    """What a per-epoch hook sees on the host before epoch `epoch` starts.

    predict(state) -> (logits, features) of the current student on the training split (rows in
    split order); place(state) puts a host-modified state back on the mesh with the state's
    shardings; teacher_logits / teacher_features: the first teacher's cached outputs on the
    training split (None when the teacher runs inside the step).
    """
    epoch: int
    train: Any
    predict: Callable[[Any], tuple[np.ndarray, np.ndarray]]
    place: Callable[[Any], Any]
    teacher_logits: np.ndarray | None
    teacher_features: np.ndarray | None
    mesh: Any


@dataclasses.dataclass(frozen=True)
class Method:
    """A distillation method as `fit` runs it; only `loss` is required.

    loss: per-example loss `(logits, features, batch) -> (B,)`. The batch carries `label`,
        `mask`, `id`, the teachers' `teacher_logits` ((B, C) for one teacher, (B, K, C) for
        K) and, for one teacher, `teacher_features`, the rows of `per_example` and
        `batch['example_state']`.
    per_example: host arrays aligned with the training split's rows (fixed soft targets, a
        DS mask), added to each batch under their keys.
    example_state: per-id arrays the method updates (leading axis = example id); checkpointed.
    extra: any other state of the method; checkpointed.
    constants: arrays the step reads (`state.frozen['method']`); replicated, not checkpointed.
    side_splits: each adds a batch of its own to every step under `name/image`, `name/label`,
        ... (ALM-KD's validation minibatch), in a (seed, epoch)-determined order.
    pre_step: jitted into the step, before the gradient step:
        `(state, batch, StepContext) -> (state, batch, metrics)` (ALM-KD's meta-update).
    epoch_start: on the host before each epoch: `(state, EpochContext) -> (state, row)`;
        the row (floats) joins that epoch's history (DiSK's guide phase and τ_S fit).
    model: replaces the student module built from `config.model` (SimKD's wrapped student).
    """
    loss: LossFn
    per_example: Mapping[str, np.ndarray] = dataclasses.field(default_factory=dict)
    example_state: Any = None
    extra: Any = None
    constants: Any = None
    side_splits: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    pre_step: Callable | None = None
    epoch_start: Callable | None = None
    model: Any = None
