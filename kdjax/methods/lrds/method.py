"""LR+DS as a `Method`: the base method's loss (`lrds.base`, Hinton KD by default) wrapped by
Label Revision and Data Selection (`loss.py`), D^t from the run's DS stage (`selection.py`).

One run is one variant on one seed: `lrds.lr.enabled` / `lrds.ds.enabled` pick KD, KD+LR,
KD+DS or KD+LR+DS; the teacher and the DS warm-up student are trained with `teacher.seed`,
so every student seed distils the same teacher on the same D^t.

Composition: `lrds.base` names any method with `make_method` ('kd', 'disk', 'alm', ...); its
plan (`run.plan`) is kept whole — teachers, warm start, its results.json entries, and its
`Method` (`dataclasses.replace`: example_state, extra, constants, side splits, epoch_start,
model); only the loss is wrapped (LR, then DS) and `ds_mask` joins its per-example arrays. A
base `pre_step` (ALM-KD's meta-update of λ) sees the LR-revised teacher logits, as its loss
does. [ours]: a base's own host phase (DiSK's guide training against the teacher) reads the
unrevised teacher outputs, and ALM-KD's look-ahead loss covers the D^s rows too.
"""
from __future__ import annotations

import dataclasses

import jax
import numpy as np

from kdjax.methods.api import Plan
from kdjax.methods.lrds import loss as loss_lib
from kdjax.methods.lrds import selection


def uses(config) -> list[str]:
    """LR+DS reads its base method's section too (kdjax.config.uses)."""
    return [config.lrds.base]


def revised_pre_step(pre_step, *, eta: float, temperature: float, only_wrong: bool = False):
    """`pre_step` run on the batch with LR-revised `teacher_logits` (ALM-KD's meta-update then
    learns λ against the targets the loss distils); the batch it returns carries the original
    logits again, which the LR-wrapped loss revises itself."""

    def pre(state, batch, ctx):
        seen = dict(batch)
        revise = loss_lib.revise_wrong_only if only_wrong else loss_lib.revised_teacher_logits
        seen["teacher_logits"], _ = revise(
            jax.lax.stop_gradient(batch["teacher_logits"]), batch["label"], eta=eta,
            temperature=temperature)
        state, out, metrics = pre_step(state, seen, ctx)
        return state, {**out, "teacher_logits": batch["teacher_logits"]}, metrics

    return pre


def make_method(config, run) -> Plan:
    """The plan of `lrds.base` (its teachers, warm start, summary) with its loss wrapped by LR
    and DS and D^t's mask among its per-example arrays."""
    base = run.plan(config.lrds.base)
    c = config.lrds
    loss, pre_step = base.method.loss, base.method.pre_step
    if c.lr.enabled:
        loss = loss_lib.label_revision(loss, eta=c.lr.eta, temperature=config.loss.temperature,
                                       only_wrong=c.lr.only_wrong)
        if pre_step is not None:
            pre_step = revised_pre_step(pre_step, eta=c.lr.eta,
                                        temperature=config.loss.temperature,
                                        only_wrong=c.lr.only_wrong)
    per_example = dict(base.method.per_example)
    selected = selection.teacher_set(config, run)
    if selected is not None:
        loss = loss_lib.data_selection(loss, ce_weight=config.loss.ce_weight)
        per_example["ds_mask"] = selected.astype(np.float32)
    method = dataclasses.replace(base.method, loss=loss, per_example=per_example,
                                 pre_step=pre_step)
    return dataclasses.replace(base, method=method, summarize=lambda result: summarize(
        config, run, base, result))


def summarize(config, run, base: Plan, result) -> dict:
    """`lrds` entries of results.json: the training split's size, the teacher's errors on it,
    |D^t| (teacher-supervised examples) and the teacher-wrong examples among them;
    `revised_targets`: every D^t example whose distilled target LR changed
    (`loss.changed_targets`: the teacher-wrong targets LR corrects and the teacher-right ones it
    sharpens; 0 without LR) and `revised_teacher_wrong`, the teacher-wrong ones among them;
    with DS, the scorer and its agreement with the per-example CE of the same warm-up student
    (`selection.agreement_with_loss`: Spearman and top-|D^t| overlap); the base method's own
    entries (its `summarize`) beside them."""
    out = dict(base.summarize(result)) if base.summarize is not None else {}
    c = config.lrds
    logits = selection.teacher_train_logits(run, base.teachers[0])
    labels = run.splits["train"].labels
    wrong = np.asarray(logits).argmax(-1) != labels
    selected = selection.teacher_set(config, run)
    supervised = np.ones_like(wrong) if selected is None else selected
    changed = np.zeros_like(wrong)
    if c.lr.enabled:
        changed = loss_lib.changed_targets(logits, labels, eta=c.lr.eta,
                                           temperature=config.loss.temperature,
                                           only_wrong=c.lr.only_wrong) & supervised
    out["lrds"] = {
        "num_train": int(wrong.size), "teacher_train_errors": int(wrong.sum()),
        "teacher_supervised": int(supervised.sum()),
        "teacher_wrong_supervised": int(wrong[supervised].sum()),
        "revised_targets": int(changed.sum()),
        "revised_teacher_wrong": int((changed & wrong).sum()),
        "ds_scorer": c.ds.scorer if selected is not None else None,
        **(selection.agreement_with_loss(config, run) if selected is not None else {})}
    return out
