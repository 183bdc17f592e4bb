"""LR+DS as a `Method`: the base method's loss (`lrds.base`, Hinton KD by default) wrapped by
Label Revision and Data Selection (`loss.py`), D^t from the run's DS stage (`selection.py`).

One run is one variant on one seed: `lrds.lr.enabled` / `lrds.ds.enabled` pick KD, KD+LR,
KD+DS or KD+LR+DS; the teacher and the DS warm-up student are trained with `teacher.seed`,
so every student seed distils the same teacher on the same D^t.

Composition: `lrds.base` names any method with `make_method` ('kd', 'disk', 'alm', ...). Its
`teachers` hook (when it has one) picks the teachers, its `summarize` entries join
results.json, and its whole `Method` is kept (`dataclasses.replace`: example_state, extra,
constants, side splits, epoch_start, model, the warm start in `run.init_variables`); only the
loss is wrapped (LR, then DS) and `ds_mask` joins its per-example arrays. A base `pre_step`
(ALM-KD's meta-update of λ) sees the LR-revised teacher logits, as its loss does. [ours]: a
base's own host phase (DiSK's guide training against the teacher) reads the unrevised
teacher outputs, and ALM-KD's look-ahead loss covers the D^s rows too.
"""
from __future__ import annotations

import dataclasses

import jax
import numpy as np

from kdjax import experiment
from kdjax import run as run_lib
from kdjax.methods.lrds import loss as loss_lib
from kdjax.methods.lrds import selection
from kdjax.train.method import Method


def _base_module(config):
    module = run_lib.resolve(config.lrds.base)
    if not hasattr(module, "make_method"):
        raise ValueError(f"lrds.base={config.lrds.base!r} names no method with make_method")
    return module


def teachers(config, run) -> list:
    """The base method's teachers (its `teachers` hook: DiSK's cached outputs, ALM-KD's teacher
    sets), else the teacher trained (or loaded) with `teacher.seed` into
    `experiment.teacher_dir`."""
    module = _base_module(config)
    if hasattr(module, "teachers"):
        return list(module.teachers(config, run))
    teacher, summary = experiment.get_teacher(config, run.workdir,
                                              run.splits, run.info, run.mesh)
    run.teacher_summaries = [summary]
    return [teacher]


def base_method(config, run) -> Method:
    """The `Method` of `lrds.base` whose loss LR and DS wrap."""
    return _base_module(config).make_method(config, run)


def revised_pre_step(pre_step, *, eta: float, temperature: float):
    """`pre_step` run on the batch with LR-revised `teacher_logits` (ALM-KD's meta-update then
    learns λ against the targets the loss distils); the batch it returns carries the original
    logits again, which the LR-wrapped loss revises itself."""

    def pre(state, batch, ctx):
        seen = dict(batch)
        seen["teacher_logits"], _ = loss_lib.revised_teacher_logits(
            jax.lax.stop_gradient(batch["teacher_logits"]), batch["label"], eta=eta,
            temperature=temperature)
        state, out, metrics = pre_step(state, seen, ctx)
        return state, {**out, "teacher_logits": batch["teacher_logits"]}, metrics

    return pre


def make_method(config, run) -> Method:
    base = base_method(config, run)
    c = config.lrds
    loss, pre_step = base.loss, base.pre_step
    if c.lr.enabled:
        loss = loss_lib.label_revision(loss, eta=c.lr.eta, temperature=config.loss.temperature)
        if pre_step is not None:
            pre_step = revised_pre_step(pre_step, eta=c.lr.eta,
                                        temperature=config.loss.temperature)
    per_example = dict(base.per_example)
    selected = selection.teacher_set(config, run)
    if selected is not None:
        loss = loss_lib.data_selection(loss, ce_weight=config.loss.ce_weight)
        per_example["ds_mask"] = selected.astype(np.float32)
    return dataclasses.replace(base, loss=loss, per_example=per_example, pre_step=pre_step)


def summarize(config, run, result) -> dict:
    """`lrds` entries of results.json: the training split's size, the teacher's errors on it,
    |D^t| (teacher-supervised examples) and the teacher-wrong examples among them, and
    `revised_targets`: the teacher-wrong targets LR corrects (0 without LR; the teacher-right
    targets LR only sharpens are not counted); the base method's own entries (its
    `summarize`) beside them."""
    module = _base_module(config)
    out = dict(module.summarize(config, run, result)) if hasattr(module, "summarize") else {}
    wrong = selection.teacher_wrong(config, run)
    selected = selection.teacher_set(config, run)
    supervised = np.ones_like(wrong) if selected is None else selected
    wrong_supervised = int(wrong[supervised].sum())
    out["lrds"] = {
        "num_train": int(wrong.size), "teacher_train_errors": int(wrong.sum()),
        "teacher_supervised": int(supervised.sum()),
        "teacher_wrong_supervised": wrong_supervised,
        "revised_targets": wrong_supervised if config.lrds.lr.enabled else 0,
        "ds_scorer": config.lrds.ds.scorer if selected is not None else None}
    return out
