"""ALM-KD as a `Method`: one run trains one student of `alm.variant` (CE is `method='ce'`).

  kd         Eq. 5 with λ fixed at `loss.kd_weight` (Hinton KD, CE weight 1 − λ), final teacher;
  alm        Alg. 1 over every teacher of the set (early stops and/or CE assistants): the λ
             table (one λ per example and teacher) in `Method.example_state`, the meta-update
             of the batch's λ rows as `Method.pre_step` every L steps (Eq. 6-10, 14-16) on the
             validation side batch, then the Eq. 5 / 12 gradient step with the new λ;
  alm_final  the same with the final teacher only (Table 2 row 2);
  takd       Hinton KD from the last assistant of the KD chain;
  dgkd       Eq. 12 with λ = loss.kd_weight for every teacher of the DGKD chain;
  threshold  OURS (issue 20): Eq. 5 with the fixed per-example λ_i = 1 where the final teacher
             gives the label p_T(y_i|x_i) < alm.conf_threshold, else alm.threshold_else
             (-1 = loss.kd_weight).
OURS switches of the meta variants (config.alm): lambda_model='confidence' keeps φ of
λ = g_φ(p_T(y|x)) in `TrainState.extra['lambda_phi']` (the λ table then records g_φ at each
example's last step); outer_train='separate' adds a second training side batch ('outer/*')
for the β term of Eq. 16; clip='unit' keeps λ in [0, 1].
The CE weight of every variant but `ce` is 1 − λ (Eq. 5), so `loss.ce_weight` is not read.
The test accuracy at the best validation epoch (Table 3's early-stopped CE row) is
`early_stop.test_accuracy` of any run's results.json (kdjax/run.py).
"""
from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np

from kdjax import storage
from kdjax.data import flip_mask
from kdjax.methods.alm import teachers as teachers_lib
from kdjax.methods.alm.loss import make_student_loss
from kdjax.methods.alm import pooled
from kdjax.methods.alm.meta import (MetaConfig, batch_lambda, find_head_path, init_lambda_state,
                                    meta_update)
from kdjax.methods.api import Plan
from kdjax.methods.kd.method import make_kd_loss
from kdjax.train.method import Method
from kdjax.train.step import preprocess

_META = ("alm", "alm_final")
_CONST_KEY = {"validation": "val", "outer": "outer"}  # side split -> its constants' prefix


def _forward(model, batch_stats, rng):
    """Training-mode forward with fixed BatchNorm statistics (their updates are dropped)."""

    def forward(params, x):
        out, _ = model.apply({"params": params, "batch_stats": batch_stats}, x, train=True,
                             mutable=["batch_stats"], rngs={"dropout": rng})
        return out

    return forward


def make_pre_step(cfg: MetaConfig, mean, std):
    """Alg. 1 lines 5-8 inside the step: when step % L == 0, the λ rows of the batch take one
    meta-gradient step; the look-ahead (Eq. 7) runs at the current parameters with
    η = the step's learning rate (or alm.lookahead_lr) and dropout key fold_in(dropout_rng, 1);
    the outer loss (Eq. 6, 16) is on the batch's `validation/*` side batch plus β·the training
    batch (outer_train='separate': the `outer/*` side batch). Side-batch teacher logits:
    `constants['<name>_logits'][<name>_row_of_id[id]]`."""

    def side_batch(consts, batch, name):
        key = _CONST_KEY[name]
        rows = consts[f"{key}_row_of_id"][batch[f"{name}/id"]]
        return {"image": preprocess(batch[f"{name}/image"], mean, std),
                "label": batch[f"{name}/label"], "id": batch[f"{name}/id"],
                "mask": batch[f"{name}/mask"].astype(jnp.float32),
                "teacher_logits": consts[f"{key}_logits"][rows]}

    def pre_step(state, batch, ctx):
        consts = state.frozen["method"]
        val_batch = side_batch(consts, batch, "validation")
        outer_batch = side_batch(consts, batch, "outer") if cfg.outer_train == "separate" \
            else None
        tr_batch = {"image": ctx.x, "label": batch["label"], "id": batch["id"],
                    "mask": batch["mask"].astype(jnp.float32),
                    "teacher_logits": batch["teacher_logits"]}
        fwd = _forward(ctx.model, state.batch_stats, jax.random.fold_in(ctx.dropout_rng, 1))
        head_path = None
        if cfg.meta_grad == "last_layer":
            logits_s, feats_s = jax.eval_shape(fwd, state.params, ctx.x)
            head_path = find_head_path(state.params, feats_s.shape[-1], logits_s.shape[-1])
        zero = jnp.zeros((), jnp.float32)

        def do_meta(lam):
            new, m = meta_update(fwd, state.params, lam, tr_batch, val_batch,
                                 ctx.learning_rate, cfg, head_path, outer_batch)
            new = jax.tree.map(lambda a, b: a.astype(b.dtype), new, lam)
            return (new, m["meta_objective"].astype(jnp.float32),
                    m["meta_grad_norm"].astype(jnp.float32))

        lam = state.example_state["lambda"]
        if cfg.lambda_model == "confidence":
            lam = {"table": lam, "phi": state.extra["lambda_phi"]}
        lam, obj, gnorm = jax.lax.cond(state.step % cfg.update_every == 0, do_meta,
                                       lambda lam: (lam, zero, zero), lam)
        if cfg.lambda_model == "confidence":  # the batch's rows: g_φ of the current φ
            lam_b = batch_lambda(lam, tr_batch, cfg)
            real = tr_batch["mask"].reshape(lam_b.shape[:1] + (1,) * (lam_b.ndim - 1)) > 0
            table = lam["table"]
            table = table.at[batch["id"]].set(jnp.where(real, lam_b, table[batch["id"]]))
            state = state.replace(extra={**state.extra, "lambda_phi": lam["phi"]})
            lam = table
        state = state.replace(example_state={**state.example_state, "lambda": lam})
        return state, batch, {"meta_objective": obj, "meta_grad_norm": gnorm,
                              "lambda_mean": jnp.mean(lam[batch["id"]])}

    return pre_step


def make_method(config, run) -> Plan:
    """The student of `alm.variant` on its teachers (`teachers.py`), with its results.json
    entries (`summarize`)."""
    chosen = teachers_lib.teachers(config, run)
    teachers = [t for _, t, _ in chosen]
    summaries = [s for _, _, s in chosen]
    return Plan(student_method(config, run, teachers), teachers=teachers,
                summarize=lambda result: summarize(config, run, summaries, result))


def student_method(config, run, teachers) -> Method:
    variant, lc = config.alm.variant, config.loss
    if variant in ("kd", "takd"):
        return Method(loss=make_kd_loss(lc.temperature, lc.kd_weight))
    if variant == "threshold":
        train = run.splits["train"]
        conf = pooled.teacher_confidence(
            jnp.asarray(teachers_lib.split_logits(teachers, train, run)),
            jnp.asarray(train.labels))
        lam = pooled.threshold_lambda(conf, config.alm.conf_threshold,
                                      pooled.rule_else(config.alm.threshold_else, lc.kd_weight))
        return Method(loss=make_student_loss(lc.temperature),
                      per_example={"lambda": np.asarray(lam, np.float32)})
    k = len(teachers)
    if variant == "dgkd":
        return teachers_lib.dgkd_method(lc.temperature, lc.kd_weight, k,
                                        config.alm.dgkd_drop_prob)
    if "validation" not in run.splits:
        raise ValueError("ALM-KD needs a validation split (config.data.num_validation > 0)")
    cfg = MetaConfig.from_config(config)
    train, val = run.splits["train"], run.splits["validation"]
    num_ids = int(max(train.ids.max(), val.ids.max())) + 1
    constants, sides = {}, {"validation": val}
    if cfg.outer_train == "separate":
        sides["outer"] = train
    for name, split in sides.items():
        row_of_id = np.zeros(int(split.ids.max()) + 1, np.int32)
        row_of_id[split.ids] = np.arange(len(split.ids))
        key = _CONST_KEY[name]
        constants[f"{key}_logits"] = jnp.asarray(teachers_lib.split_logits(teachers, split, run))
        constants[f"{key}_row_of_id"] = jnp.asarray(row_of_id)
    lam = init_lambda_state(num_ids, None if k == 1 else k, cfg)
    extra = None
    if cfg.lambda_model == "confidence":
        lam, extra = lam["table"], {"lambda_phi": lam["phi"]}
    return Method(loss=make_student_loss(cfg.temperature), example_state={"lambda": lam},
                  extra=extra, constants=constants, side_splits=sides,
                  pre_step=make_pre_step(cfg, run.info.mean, run.info.std))


def lambda_stats(lam_rows: np.ndarray, names, flipped: np.ndarray | None = None) -> dict:
    """Per teacher: mean / std / min / max / fraction outside [0, 1] of λ, and the mean on
    flipped and on clean labels when some are flipped."""
    lam_rows = lam_rows.reshape(len(lam_rows), -1)
    out = {}
    for k, name in enumerate(names):
        v = lam_rows[:, k]
        d = {"mean": float(v.mean()), "std": float(v.std()), "min": float(v.min()),
             "max": float(v.max()), "frac_outside_01": float(np.mean((v < 0) | (v > 1)))}
        if flipped is not None and flipped.any() and (~flipped).any():
            d["mean_flipped"] = float(v[flipped].mean())
            d["mean_clean"] = float(v[~flipped].mean())
        out[name] = d
    return out


def summarize(config, run, summaries: list[dict], result) -> dict:
    """results.json entries: the variant, the teachers (the final one as `teacher`; TAKD's
    student has only its assistant), teacher queries (the student's,
    ALM-KD's validation logits, the assistants' training) and for ALM-KD the λ statistics
    (λ itself in `<workdir>/lambda.npy`)."""
    out = {"variant": config.alm.variant, "label_noise": config.data.label_noise}
    queries = result.teacher_queries
    names = [s["name"] for s in summaries]
    if names:
        out["teachers"] = summaries
        out["teacher"] = next((s for s in summaries if s["name"].endswith("@final")),
                              summaries[-1])
        queries += sum(s["teacher_queries"] for s in summaries if s["assistant"])
    if config.alm.variant in _META:
        queries += len(summaries) * len(run.splits["validation"])
        train = run.splits["train"]
        lam = np.asarray(jax.device_get(result.state.example_state["lambda"]))
        if jax.process_index() == 0:
            storage.save_npy(os.path.join(run.workdir, "lambda.npy"), lam)  # local or gs://
        flipped = (flip_mask(len(train), config.data.label_noise, config.data.noise_seed)
                   if config.data.label_noise > 0 else None)
        out["lambda"] = lambda_stats(lam[train.ids], names, flipped)
    out["teacher_queries"] = int(queries)
    return out
