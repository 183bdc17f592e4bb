"""Composing the methods: RAD's active loop (Alg. 1) retrained with any method's loss.

`config.active.retrain` names the loss of each retraining round t >= 1 of kdjax.methods.rad.loop,
independently of the selection rule `config.active.strategy`:
  'kl'    Alg. 1's own loss (the loop's `kl_to_targets`): KL to the targets, one-hot on the
          hard-labeled set A, the teacher's softmax on the queried points;
  a name  any method `kdjax.run.resolve` knows with a `make_method` ('kd', 'lrds', 'alm',
          'disk', ...), trained through `loop.fit` on the round's training set P as its split:
  - teacher_logits: the log of Alg. 1's target, i.e. on a queried point the teacher's
    log-softmax at `active.teacher_temperature` (softmax of it = the loop's soft target; the
    method's `loss.temperature` applies on top), on A the one-hot label written as logits
    (0 on the label, −HARD_GAP elsewhere: one-hot to float32 precision at τ = 1, within 1e-10
    per class at τ <= 4). The teacher is the loop's own (trained on A): a method that runs it
    (ALM-KD on the validation split, DiSK's guide on its penultimate features on P) sees the
    same function.
  - label: the true label on A; on a queried point the teacher's arg-max, because a query
    returns the teacher's distribution and no true label (Alg. 1) — with
    `active.label_oracle` (D.4) the true label, whose one-hot is then also the target. So CE
    terms train on the teacher's hard label there; LR on a queried point only sharpens the
    teacher toward its own arg-max (β = η) and on A it is the identity (the target already is
    the label); DS's D^s rows get CE on the same labels.
  - validation: the labeled validation split (ALM-KD's outer objective, LR+DS's tracin_val).
Round 0 (P = A, nothing queried) trains with 'kl' (= CE on A) whatever `active.retrain` says:
every distillation loss degenerates there, and a shared round 0 keeps the strategies and the
retraining losses of one trial paired at round 1. A method's own stages (DiSK's warm start,
LR+DS's DS warm-up and scores) live in the round's workdir and are skipped when finished; its
results.json entries are not written (the loop owns the teacher and its results).
"""
from __future__ import annotations

import copy
import dataclasses

import numpy as np

from kdjax import config as config_lib
from kdjax import experiment
from kdjax import run as run_lib
from kdjax.data import Split
from kdjax.train import loop

# Logit gap of a hard (one-hot) target written as teacher logits.
HARD_GAP = 100.0


def target_logits(targets: np.ndarray) -> np.ndarray:
    """Logits whose softmax is `targets` (N, C): log p, with −HARD_GAP where p = 0."""
    targets = np.asarray(targets, np.float32)
    with np.errstate(divide="ignore"):
        logits = np.where(targets > 0, np.log(targets), -HARD_GAP)
    return np.maximum(logits, -HARD_GAP).astype(np.float32)


def retrain_module(name: str):
    """The method module `active.retrain` names (one with `make_method`)."""
    module = run_lib.resolve(name)
    if callable(module) or not hasattr(module, "make_method"):
        raise ValueError(f"config.active.retrain={name!r} names no method with make_method "
                         "(use 'kl' or a method such as 'kd', 'lrds', 'alm', 'disk')")
    return module


def with_sections(config):
    """`config` with the sections `active.retrain`'s method reads (its own and those of the
    methods it uses, e.g. LR+DS's base), each with its defaults where `config` lacks it: the
    loop's config is a driver's, which holds only the sections its file mounted."""
    probe = copy.deepcopy(config)
    with probe.unlocked():
        probe.method = config.active.retrain
    config_lib.uses(probe)   # mounts what the method reads
    out = copy.deepcopy(config)
    with out.unlocked():
        for key in probe.keys():
            if key not in out:
                out[key] = probe[key]
    return out


def check(config) -> None:
    """The loop has one teacher, its own: ALM-KD's teacher sets cannot be built there."""
    a = config.get("alm")
    uses_alm = "alm" in (config.active.retrain, config.lrds.base if
                         config.active.retrain == "lrds" else "")
    if uses_alm and a is not None and (a.assistants or a.teacher_epochs):
        raise ValueError("config.active.retrain: ALM-KD in the active loop distils the loop's "
                         "one teacher; unset alm.assistants / alm.teacher_epochs")


def training_context(config, workdir: str, train: Split, targets: np.ndarray, evals: dict,
                     info, mesh, *, teacher: loop.Teacher, teacher_summary: dict,
                     validation: Split | None) -> run_lib.Context:
    """The run a method builds on in one round: P with labels = arg-max of the targets (true on
    A, the teacher's on queried points), the loop's teacher with `target_logits` and its
    penultimate features on P as caches, the validation and eval splits."""
    # in memory or on disk alike: only the labels change
    split = dataclasses.replace(train, labels=np.asarray(targets).argmax(-1).astype(np.int32))
    _, features = loop.predict_split(teacher.model, teacher.variables, split, info,
                                     config.data.eval_batch_size, mesh)
    splits = {"train": split, **evals}
    if validation is not None:
        splits["validation"] = validation
    cached = loop.Teacher(teacher.model, teacher.variables, logits_cache=target_logits(targets),
                          features_cache=np.asarray(features, np.float32))
    return run_lib.Context(config, workdir, splits, info, mesh,
                           given_teacher=(cached, teacher_summary))


def retrain(config, workdir: str, train: Split, targets: np.ndarray, evals: dict, info, mesh,
            *, teacher: loop.Teacher, teacher_summary: dict, validation: Split | None):
    """One round's TRAIN(P) with `config.active.retrain`'s method -> (model, variables,
    FitResult), as the loop's `_train_student` returns them."""
    module = retrain_module(config.active.retrain)
    config = with_sections(config)
    check(config)
    run = training_context(config, workdir, train, targets, evals, info, mesh, teacher=teacher,
                           teacher_summary=teacher_summary, validation=validation)
    plan = run_lib.make_plan(module, config, run)
    model = (plan.method.model if plan.method.model is not None
             else experiment.build_model(config.model, info.num_classes))
    result = loop.fit(config, workdir, model=model, method=plan.method,
                      train=run.splits["train"], info=info, evals=evals, teachers=plan.teachers,
                      init_variables=plan.init_variables, horizon_epochs=plan.horizon_epochs,
                      mesh=mesh)
    return model, loop.variables_of(result.state), result
