"""LR+DS as a `Method`: the base method's loss (`lrds.base`, Hinton KD by default) wrapped by
Label Revision and Data Selection (`loss.py`), D^t from the run's DS stage (`selection.py`).

One run is one variant on one seed: `lrds.lr.enabled` / `lrds.ds.enabled` pick KD, KD+LR,
KD+DS or KD+LR+DS; the teacher and the DS warm-up student are trained with `lrds.stage_seed`,
so every student seed distils the same teacher on the same D^t.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from kdjax import experiment
from kdjax import run as run_lib
from kdjax.methods.lrds import loss as loss_lib
from kdjax.methods.lrds import selection
from kdjax.train.method import Method


def teachers(config, run) -> list:
    """The teacher, trained (or loaded) with the shared stage seed into `<workdir>/teacher`."""
    teacher, summary = experiment.get_teacher(selection.stage_config(config), run.workdir,
                                              run.splits, run.info, run.mesh)
    run.teacher_summaries = [summary]
    return [teacher]


def base_method(config, run) -> Method:
    """The `Method` of `lrds.base` whose loss LR and DS wrap."""
    module = run_lib.resolve(config.lrds.base)
    if not hasattr(module, "make_method"):
        raise ValueError(f"lrds.base={config.lrds.base!r} names no method with make_method")
    return module.make_method(config, run)


def make_method(config, run) -> Method:
    base = base_method(config, run)
    c = config.lrds
    loss = base.loss
    if c.lr.enabled:
        loss = loss_lib.label_revision(loss, eta=c.lr.eta, temperature=config.loss.temperature)
    per_example = dict(base.per_example)
    selected = selection.teacher_set(config, run)
    if selected is not None:
        loss = loss_lib.data_selection(loss, ce_weight=config.loss.ce_weight)
        per_example["ds_mask"] = selected.astype(np.float32)
    return dataclasses.replace(base, loss=loss, per_example=per_example)


def summarize(config, run, result) -> dict:
    """`lrds` entries of results.json: the training split's size, the teacher's errors on it,
    |D^t| (teacher-supervised examples) and the teacher-wrong examples among them, and
    `revised_targets`: the teacher-wrong targets LR corrects (0 without LR; the teacher-right
    targets LR only sharpens are not counted)."""
    del result
    wrong = selection.teacher_wrong(config, run)
    selected = selection.teacher_set(config, run)
    supervised = np.ones_like(wrong) if selected is None else selected
    wrong_supervised = int(wrong[supervised].sum())
    return {"lrds": {
        "num_train": int(wrong.size), "teacher_train_errors": int(wrong.sum()),
        "teacher_supervised": int(supervised.sum()),
        "teacher_wrong_supervised": wrong_supervised,
        "revised_targets": wrong_supervised if config.lrds.lr.enabled else 0,
        "ds_scorer": config.lrds.ds.scorer if selected is not None else None}}
