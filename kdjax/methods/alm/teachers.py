"""ALM-KD's teacher sets and the multi-teacher baselines of Table 1.

`teachers(config, run)` returns the frozen teachers of one run's `alm.variant` with their
names and summaries (test accuracy, source):
  * the final teacher (`config.teacher`, trained with `teacher.seed` or loaded: `run.teacher`)
    and, with
    `alm.teacher_epochs`, the same run's checkpoints at those epochs (early-stopped teachers,
    Sec. 6.3); self-distillation (Sec. 6.5) is `teacher.name == model.name`;
  * with `alm.assistants`, smaller models trained as stages in `<workdir>/assistants/`: by CE
    (ALM-KD's teacher set), in KD hops (TAKD, Mirzadeh et al., 2019) or each from all larger
    models at once with one fixed λ per teacher (DGKD, Son et al., 2021; the shared-λ special
    case of Eq. 12, teachers dropped at random with `alm.dgkd_drop_prob`).
With `data.label_noise` the run's training labels are noisy (teacher, assistants and student
see the same noisy labels).
"""
from __future__ import annotations

import copy
import math
import os
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from kdjax.data import Split
from kdjax.methods.alm.loss import make_student_loss, student_loss
from kdjax.methods.api import Teacher, teacher_seed
from kdjax.methods.ce.method import ce_loss
from kdjax.methods.kd.method import make_kd_loss
from kdjax.train.method import Method

Array = jax.Array


# ---------------------------------------------------------------- DGKD / TAKD

def takd_hops(chain: Sequence[str]) -> list[tuple[str, str]]:
    """[teacher, TA_1, ..., student] -> [(teacher, TA_1), (TA_1, TA_2), ..., (TA_m, student)]."""
    if len(chain) < 2:
        raise ValueError(f"TAKD needs at least a teacher and a student, got {list(chain)}")
    return [(chain[i], chain[i + 1]) for i in range(len(chain) - 1)]


def dgkd_keep_mask(rng: Array, num_teachers: int, drop_prob: float) -> Array:
    """Bernoulli(1 − drop_prob) keep mask over teachers with at least one teacher kept."""
    if not 0.0 <= drop_prob < 1.0:
        raise ValueError(f"drop_prob must be in [0, 1), got {drop_prob}")
    k1, k2 = jax.random.split(rng)
    keep = jax.random.bernoulli(k1, 1.0 - drop_prob, (num_teachers,))
    fallback = jax.nn.one_hot(jax.random.randint(k2, (), 0, num_teachers), num_teachers) > 0
    return jnp.where(keep.any(), keep, fallback)


def dgkd_loss(logits: Array, labels: Array, teacher_logits: Array, lam: Array | float, *,
              temperature: float = 4.0, keep: Array | None = None) -> Array:
    """Per-example DGKD loss (1 − max_k λ_k)·CE + Σ_k keep_k·λ_k·τ²·KL_k; teachers (B, K, C).
    `lam` is a scalar or one value per teacher (K,); with K = 1 and keep all it is Hinton KD."""
    if teacher_logits.ndim != 3:
        raise ValueError(f"dgkd_loss wants teacher_logits (B, K, C), got {teacher_logits.shape}")
    k = teacher_logits.shape[1]
    lam = jnp.broadcast_to(jnp.asarray(lam, jnp.float32), (k,))
    if keep is not None:
        lam = lam * keep.astype(lam.dtype)
    return student_loss(logits, labels, teacher_logits, jnp.broadcast_to(
        lam, (logits.shape[0], k)), temperature)


def dgkd_method(temperature: float, kd_weight: float, num_teachers: int,
                drop_prob: float) -> Method:
    """DGKD as a `Method`: λ = kd_weight for every teacher and example; with drop_prob > 0 the
    pre-step zeroes the λ of dropped teachers (keep mask from fold_in(step rng, 2))."""
    lam = jnp.full(() if num_teachers == 1 else (num_teachers,), kd_weight, jnp.float32)
    if not drop_prob:
        return Method(loss=make_student_loss(temperature, lam))

    def pre_step(state, batch, ctx):
        keep = dgkd_keep_mask(jax.random.fold_in(ctx.rng, 2), num_teachers, drop_prob)
        lam_b = jnp.broadcast_to(lam, (batch["label"].shape[0],) + lam.shape)
        lam_b = lam_b * keep.astype(lam_b.dtype)
        return state, {**batch, "lambda": lam_b}, {"lambda_mean": jnp.mean(lam_b)}

    return Method(loss=make_student_loss(temperature), pre_step=pre_step)


# ---------------------------------------------------------------- teacher sets

def _float32_cache(model, variables, config, run) -> np.ndarray | None:
    if config.data.augment or not config.teacher.cache_logits:
        return None
    logits, _ = run.predict(model, variables, run.splits["train"])
    return np.asarray(logits, np.float32)


def split_logits(teachers: Sequence[Teacher], split: Split, run) -> np.ndarray:
    """Teachers' logits on `split` (float32, rows in split order): (N, C) for one, (N, K, C)."""
    outs = [np.asarray(run.predict(t.model, t.variables, split)[0], np.float32)
            for t in teachers]
    return outs[0] if len(outs) == 1 else np.stack(outs, axis=1)


def _stage_config(config):
    """A copy of `config` with seed = `teacher_seed` (the teacher's and the assistants' seed,
    shared by every student seed of a table cell)."""
    c = copy.deepcopy(config)
    with c.unlocked():
        c.seed = teacher_seed(config)
    return c


def main_teachers(config, run) -> list[tuple[str, Teacher, dict]]:
    """[(name, teacher, summary)]: the early-stopped checkpoints (alm.teacher_epochs, in that
    order) and the final teacher; the final one alone without teacher_epochs."""
    epochs = [int(e) for e in config.alm.teacher_epochs]
    spe = len(run.splits["train"]) // config.data.batch_size
    tcfg = _stage_config(config)
    if epochs:
        if any(e < 1 or e > config.teacher.epochs for e in epochs):
            raise ValueError(f"alm.teacher_epochs {epochs} must lie in [1, teacher.epochs="
                             f"{config.teacher.epochs}]")
        every = math.gcd(*epochs, config.teacher.epochs)
        with tcfg.unlocked():   # keep a checkpoint at every early-stop epoch
            tcfg.train.checkpoint_every_steps = every * spe
            tcfg.train.keep_checkpoints = config.teacher.epochs // every + 1
    teacher, summary = run.teacher(tcfg)
    cache = teacher.logits_cache   # the training-split logits `_float32_cache` computes
    final = (f"{config.teacher.name}@final",
             Teacher(teacher.model, teacher.variables,
                     None if cache is None else np.asarray(cache, np.float32)),
             summary)
    if not epochs:
        return [final]
    source = run.teacher_path(config)
    out = []
    for e in epochs:
        if e == config.teacher.epochs:
            out.append(final)
            continue
        try:
            v = run.load(source, step=e * spe)
        except Exception as err:  # orbax raises various errors for a missing step
            raise ValueError(f"no teacher checkpoint at epoch {e} (step {e * spe}) in {source}; "
                             "train the teacher with checkpoints at alm.teacher_epochs (delete "
                             f"{source} to retrain) or fix the epochs") from err
        acc = run.accuracy(teacher.model, v, run.splits["test"])
        out.append((f"{config.teacher.name}@{e}",
                    Teacher(teacher.model, v, _float32_cache(teacher.model, v, config, run)),
                    {"source": source, "step": e * spe, "test_accuracy": acc}))
    return out


def assistant_chain(config, run, final: tuple, how: str) -> list[tuple[str, Teacher, dict]]:
    """The final teacher + `alm.assistants` (large -> small), each trained by `how`: 'ce'
    (independent CE models), 'takd' (KD from the previous model, λ = loss.kd_weight) or 'dgkd'
    (fixed-λ KD from every larger model; the first assistant is TAKD's), each a stage of the run
    in `<workdir>/assistants/`."""
    chain = [final]
    kwargs = tuple(config.alm.assistant_kwargs)
    for i, name in enumerate(config.alm.assistants):
        acfg = _stage_config(config)
        with acfg.unlocked():
            acfg.model.name = name
            acfg.model.kwargs = dict(kwargs[i]) if i < len(kwargs) else {}
            acfg.train.epochs = config.alm.assistant_epochs or config.train.epochs
        mode = how if not (how == "dgkd" and i == 0) else "takd"  # one larger model: TAKD
        lc = config.loss
        if mode == "ce":
            method, used = Method(loss=ce_loss), []
        elif mode == "takd":
            method, used = Method(loss=make_kd_loss(lc.temperature, lc.kd_weight)), chain[-1:]
        else:
            method, used = dgkd_method(lc.temperature, lc.kd_weight, len(chain),
                                       config.alm.dgkd_drop_prob), chain
        folder = f"assistants/{mode}_{i}_{name}"
        variables, summary = run.stage(
            folder, acfg, method, teachers=[t for _, t, _ in used],
            evals=("validation", "test"), record=lambda result, v: {
                "test_accuracy": result.history[-1]["test/accuracy"],
                "teacher_queries": result.teacher_queries})
        model = run.model(acfg.model)
        chain.append((f"{name}({mode})",
                      Teacher(model, variables, _float32_cache(model, variables, config, run)),
                      dict(summary, source=os.path.join(run.workdir, folder), assistant=True)))
    return chain


def teachers(config, run) -> list[tuple[str, Teacher, dict]]:
    """[(name, teacher, summary)] of `alm.variant` (see the module docstring)."""
    variant = config.alm.variant
    main = main_teachers(config, run)
    if variant in ("kd", "alm_final", "threshold"):
        chosen = main[-1:]
    elif variant == "alm":
        chosen = assistant_chain(config, run, main[-1], "ce") if config.alm.assistants else main
    elif variant == "takd":
        chosen = assistant_chain(config, run, main[-1], "takd")[-1:]
    else:  # dgkd
        chosen = assistant_chain(config, run, main[-1], "dgkd")
    return [(n, t, {"assistant": False, **s, "name": n}) for n, t, s in chosen]


def teacher_logits_from_checkpoints(forward, checkpoints: Sequence, x,
                                    batch_size: int = 1024) -> np.ndarray:
    """Logits (N, K, C) of several teachers given as parameter sets of one `forward(params,
    x) -> (logits, features)` (e.g. early-stopped checkpoints of one run, Sec. 6.3)."""
    if len(checkpoints) == 0:
        raise ValueError("teacher_logits_from_checkpoints needs at least one checkpoint")
    fwd = jax.jit(lambda p, xb: forward(p, xb)[0])
    x = np.asarray(x)
    out = []
    for p in checkpoints:
        chunks = [np.asarray(fwd(p, x[i:i + batch_size])) for i in range(0, len(x), batch_size)]
        out.append(np.concatenate(chunks, axis=0))
    return np.stack(out, axis=1)
