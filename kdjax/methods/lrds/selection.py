"""The DS stage of a run: a CE warm-up student, its scores of the training set, and D^t.

Lan et al. score every training example by its influence on the student and distil only the top
fraction D^t. The student that is scored is a CE warm-up student (`lrds.ds.warmup_epochs`
epochs, seed `teacher.seed`; the sources do not say when the scores are taken, [ours]),
trained through `loop.fit` in `<workdir>/ds/warmup` and skipped once finished; its penultimate
features and logits on train (and validation) are cached in `<workdir>/ds/outputs.npz`, the
scores in `<workdir>/ds/scores_<scorer>.npy`. D^t is recomputed from the cached scores.
"""
from __future__ import annotations

import copy
import os

import numpy as np
import scipy.stats

from kdjax import storage
from kdjax.methods.api import teacher_seed
from kdjax.methods.ce.method import ce_loss
from kdjax.methods.lrds import influence
from kdjax.train.method import Method


def stage_config(config):
    """`config` with the seed of the run's shared stages (teacher, warm-up student):
    `teacher_seed`."""
    cfg = copy.deepcopy(config)
    with cfg.unlocked():
        cfg.seed = teacher_seed(config)
    return cfg


def warmup_outputs(config, run) -> dict[str, np.ndarray]:
    """`{split}_logits` / `{split}_features` of the CE warm-up student on train (and
    validation), trained once into `<workdir>/ds/warmup`."""
    path = os.path.join(run.workdir, "ds", "outputs.npz")
    cached = storage.load_npz(path)  # local or gs://
    if cached is not None:
        return cached
    scfg = stage_config(config)
    with scfg.unlocked():
        scfg.method = "ce"
        scfg.train.epochs = config.lrds.ds.warmup_epochs
    variables, _ = run.stage("ds/warmup", scfg, Method(loss=ce_loss), record=lambda result, v: {
        "warmup_epochs": scfg.train.epochs})
    model = run.model(config.model)
    out = {}
    for name in ("train", "validation"):
        if name in run.splits:
            out[f"{name}_logits"], out[f"{name}_features"] = run.predict(
                model, variables, run.splits[name])
    storage.save_npz(path, **out)  # atomic
    return out


def scores(config, run) -> np.ndarray:
    """DS scores of the training split (row order) under `lrds.ds.scorer`; cached.

    'random' is uniform noise from `teacher.seed` (a control, no warm-up); every other scorer
    reads the CE warm-up student ('tracin' uses its final state as the one checkpoint, with the
    validation gradient when `lrds.ds.tracin_val`).
    """
    ds = config.lrds.ds
    train = run.splits["train"]
    if ds.scorer == "random":
        return np.random.default_rng(teacher_seed(config)).random(len(train))
    path = os.path.join(run.workdir, "ds", f"scores_{ds.scorer}.npy")
    cached = storage.load_npy(path)
    if cached is not None:
        return cached
    out = warmup_outputs(config, run)
    val = val_labels = None
    if ds.scorer == "val_influence" or (ds.scorer == "tracin" and ds.tracin_val):
        if "validation_logits" not in out:
            raise ValueError(f"lrds.ds.scorer={ds.scorer!r} needs a validation split "
                             "(config.data.num_validation > 0)")
        val = influence.Outputs(out["validation_features"], out["validation_logits"])
        val_labels = run.splits["validation"].labels
    result = influence.score_examples(
        ds.scorer, influence.Outputs(out["train_features"], out["train_logits"]), train.labels,
        val=val, val_labels=val_labels, damping=ds.damping, hessian=ds.hessian,
        batch_size=ds.batch_size)
    storage.save_npy(path, result)
    return result


def teacher_set(config, run) -> np.ndarray | None:
    """D^t as a bool mask over the training split's rows (None when DS is off): the top
    `lrds.ds.fraction` of the scores, or the lowest with `lrds.ds.lowest`."""
    ds = config.lrds.ds
    if not ds.enabled:
        return None
    s = scores(config, run)
    return influence.select_subset(-s if ds.lowest else s, ds.fraction)


def teacher_train_logits(run, teacher) -> np.ndarray:
    """(N, C) logits of `teacher` on the training split's rows (its cache if any)."""
    logits = teacher.logits_cache
    if logits is None:
        logits, _ = run.predict(teacher.model, teacher.variables, run.splits["train"])
    return np.asarray(logits)


def teacher_wrong(run, teacher) -> np.ndarray:
    """(N,) bool: `teacher`'s arg-max differs from the label on each training row."""
    return teacher_train_logits(run, teacher).argmax(-1) != run.splits["train"].labels


def agreement(scores, reference, fraction: float) -> dict:
    """How a DS score ranks like a reference score (issue 20): Spearman's rho over all rows and
    the overlap |top-k(scores) ∩ top-k(reference)| / k of the two D^t's,
    k = round(fraction·N)."""
    a, b = np.asarray(scores, np.float64), np.asarray(reference, np.float64)
    top_a = influence.select_subset(a, fraction)
    top_b = influence.select_subset(b, fraction)
    k = int(top_a.sum())
    rho = float(scipy.stats.spearmanr(a, b).statistic) if a.size > 1 else float("nan")
    return {"spearman": rho, "topk_overlap": float((top_a & top_b).sum() / k) if k else 1.0}


def agreement_with_loss(config, run) -> dict:
    """`ds_spearman_vs_loss` and `ds_topk_overlap_vs_loss`: the run's DS scores against the
    per-example CE ('loss' scorer) of the same CE warm-up student; {} for the 'random' scorer
    (no warm-up student)."""
    if config.lrds.ds.scorer == "random":
        return {}
    out = warmup_outputs(config, run)
    loss = influence.loss_scores(influence.Outputs(out["train_features"], out["train_logits"]),
                                 run.splits["train"].labels)
    agree = agreement(scores(config, run), loss, config.lrds.ds.fraction)
    return {"ds_spearman_vs_loss": agree["spearman"],
            "ds_topk_overlap_vs_loss": agree["topk_overlap"]}
