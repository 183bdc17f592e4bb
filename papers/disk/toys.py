"""DiSK Table 1: CE / KD / DiSK on the 1D-intervals (A.1) and 2D-Gaussians (A.2) toys,
vectorised over seeds.

One training run written as a pure function of a PRNG key (so `jax.vmap` runs all 100
initialisations at once; a toy loop of its own, with kdjax.train's optimizer) and the teacher;
the runner `run_table1(config, workdir)` (methods, KD grid, paired comparisons, claim) is in
papers/disk/table1.py, the data, function classes and the classification into Table 1's
minima in papers/disk/toy_problems.py. Every run also evaluates its best-validation epoch
(metrics['best']); the config's `select` decides which one the table reports.

Choices the paper leaves open (each is a config field, see experiments/disk/table1.py):
* 1D: p(blue|x) = h(x) of the interval class, computed in log space so log p and log(1 − p)
  (the two logits) are exact; endpoints sorted so any parameter vector is a valid member;
  sigmoid sharpness k from config. Class-balanced sampling, uniform within each class
  ('balanced'; [ours] 'gap_heavy' puts half of Red on [3, 5], disk_toy_problems.RED_SHARES_1D).
* 2D: x ~ N(c, r·I) with r = 0.05 as written in A.2 (variance r); n/6 points per centre.
* Teacher: best of `teacher_restarts` CE runs by validation accuracy (A.1 says the teacher
  recovers f*; a single SGD run of an interval class need not).
* Minima: a run is assigned by which test clusters it gets right (majority vote per cluster),
  which refines "classify by test accuracy" when two minima have equal accuracy.
"""
from __future__ import annotations

from typing import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from kdjax import losses
from kdjax.methods.disk import loss as disk
from kdjax.methods.disk.guide import guide_module, init_lambda, phase_lambda
from papers.disk.toy_problems import (GLOBAL_MINIMUM, MINIMA_NAMES, IntervalModel, ToyMLP,
                                          classify_minima, ideal_accuracy, make_dataset)
from kdjax.train.optim import make_optimizer

Array = jax.Array


# ----------------------------------------------------------------------------- models
def build_models(name: str, cfg) -> tuple[nn.Module, nn.Module, nn.Module]:
    """(teacher, student, guide) modules of toy `name` from its config block."""
    guide = guide_module(cfg.disk)
    if name == "intervals_1d":
        return (IntervalModel(2, cfg.sharpness, cfg.prob_floor),
                IntervalModel(1, cfg.sharpness, cfg.prob_floor), guide)
    if name == "gaussians_2d":
        return (ToyMLP(tuple(cfg.teacher_hidden)), ToyMLP(tuple(cfg.student_hidden)), guide)
    raise ValueError(f"unknown toy {name!r}")


# ----------------------------------------------------------------------------- training
def _optimizer(cfg) -> optax.GradientTransformation:
    """PyTorch-style SGD: coupled weight decay, momentum, constant lr (A.1)."""
    train = ml_collections.ConfigDict({
        "optimizer": "sgd", "schedule": "constant", "learning_rate": cfg.learning_rate,
        "momentum": cfg.momentum, "weight_decay": cfg.weight_decay, "epochs": cfg.epochs})
    return make_optimizer(train, 1)[0]


def _init(module: nn.Module, key: Array, x: Array, *extra) -> dict:
    return dict(module.init(key, x, *extra, train=False))


def _apply(module, variables, *inputs, train: bool):
    if train and "batch_stats" in variables:
        out, upd = module.apply(variables, *inputs, train=True, mutable=["batch_stats"])
        return out, {**variables, **upd}
    return module.apply(variables, *inputs, train=train), variables


def _accuracy(logits: Array, y: Array) -> Array:
    return jnp.mean(jnp.argmax(logits, -1) == y)


def _batches(key: Array, n: int, batch_size: int) -> Array:
    if n % batch_size:
        raise ValueError(f"batch_size {batch_size} must divide the training-set size {n}")
    return jax.random.permutation(key, n).reshape(n // batch_size, batch_size)


def keep_best(best: tuple, variables, score: Array, epoch: Array) -> tuple:
    """(variables, score, epoch) of the best epoch so far: replaced only when `score` is
    strictly higher, so the first arg-max epoch is kept (the official code's `acc > best`)."""
    b_vars, b_score, b_epoch = best
    better = score > b_score
    return (jax.tree.map(lambda new, old: jnp.where(better, new, old), variables, b_vars),
            jnp.where(better, score, b_score), jnp.where(better, epoch, b_epoch))


def _no_best(variables) -> tuple:
    return variables, jnp.float32(-1.0), jnp.int32(-1)


def make_supervised_run(module: nn.Module, train: dict, evals: dict, cfg, *,
                        loss_fn: Callable[[Array, Array, dict], Array]):
    """run(key) -> (variables, metrics) for a CE/KD-trained `module`; loss_fn(logits, y, batch).

    `train` holds arrays 'x', 'y' (and 'teacher_logits' for KD); pure in `key`, vmappable.
    The returned variables are the last epoch's; metrics['best'] evaluates the epoch of
    highest validation accuracy (best-validation selection, `keep_best`).
    """
    opt = _optimizer(cfg)
    n = train["x"].shape[0]

    def run(key):
        k_init, k_data = jax.random.fold_in(key, 0), jax.random.fold_in(key, 1)
        variables = _init(module, k_init, train["x"][:2])
        state = (variables, opt.init(variables["params"]))

        def step(state, idx):
            variables, opt_state = state
            batch = jax.tree.map(lambda a: a[idx], train)

            def objective(params):
                (logits, _), new_vars = _apply(module, {**variables, "params": params},
                                               batch["x"], train=True)
                return jnp.mean(loss_fn(logits, batch["y"], batch)), new_vars

            grads, new_vars = jax.grad(objective, has_aux=True)(variables["params"])
            updates, opt_state = opt.update(grads, opt_state, variables["params"])
            new_vars = {**new_vars, "params": optax.apply_updates(variables["params"], updates)}
            return (new_vars, opt_state), None

        def epoch(carry, inp):
            state, best = carry
            e, k = inp
            state, _ = jax.lax.scan(step, state, _batches(k, n, cfg.batch_size))
            log = _eval_log(module, state[0], evals)
            best = keep_best(best, state[0], log["validation_accuracy"], e)
            return (state, best), log

        inp = (jnp.arange(cfg.epochs), jax.random.split(k_data, cfg.epochs))
        (state, best), log = jax.lax.scan(epoch, (state, _no_best(state[0])), inp)
        return state[0], _final(module, state[0], evals, log, best)

    return run


def _eval_log(module, variables, evals) -> dict:
    out = {}
    for split in ("train", "validation"):
        if split in evals:
            (logits, _), _ = _apply(module, variables, evals[split]["x"], train=False)
            out[f"{split}_accuracy"] = _accuracy(logits, evals[split]["y"])
    return out


def _evaluate(module, variables, evals) -> dict:
    out = {}
    for split, d in evals.items():
        (logits, _), _ = _apply(module, variables, d["x"], train=False)
        out[f"{split}_accuracy"] = _accuracy(logits, d["y"])
        out[f"{split}_pred"] = jnp.argmax(logits, -1).astype(jnp.int32)
    return out


def _final(module, variables, evals, log, best) -> dict:
    """Last-epoch metrics, the log, and under 'best' those of the best-validation epoch."""
    out = {"log": log, **_evaluate(module, variables, evals)}
    out["best"] = {**_evaluate(module, best[0], evals), "epoch": best[2]}
    return out


def make_disk_run(student: nn.Module, guide: nn.Module, train: dict, evals: dict, cfg):
    """run(key) -> (student variables, metrics) for one DiSK run (Alg. 1).

    `train` holds 'x', 'y', 'teacher_logits', 'teacher_features'. Each round r: λ_r (Alg. 1
    line 8) and δ_r (official cosine budget), `g_epochs` epochs of guide SGD (line 6), then
    `s_epochs` epochs of student SGD (line 7); `guide_init_epochs` of guide SGD come first
    (official init_epochs). τ_S: 'fixed', or 'fit' (Sec. 3.2) on the initial student, or
    'fit_round' at the start of every round, clipped to [tau_s_min, tau_s_max].
    """
    d = cfg.disk
    s_opt, g_opt = _optimizer(cfg), _optimizer(cfg)
    n = train["x"].shape[0]
    dist_kw = dict(alpha=cfg.loss.ce_weight, tau_t=cfg.loss.temperature, top_k=d.top_k,
                   include_label=d.include_label, target=d.target)
    usage_kw = dict(ce_target=d.ce_target, max_ce=d.max_ce, normalize=d.normalize)
    penalty_kw = dict(penalty=d.penalty, penalty_scale=d.get("penalty_scale", "official"))
    if d.tau_s_mode not in ("fixed", "fit", "fit_round"):
        raise ValueError(f"tau_s_mode must be fixed|fit|fit_round, got {d.tau_s_mode!r}")

    def student_logits(s_vars, x):
        (logits, _), _ = _apply(student, s_vars, x, train=False)
        return logits

    def guide_value(g_vars, batch):
        g, _ = _apply(guide, g_vars, batch["teacher_features"], batch["teacher_logits"],
                      train=False)
        return g

    def fit_tau(s_vars):
        tau = disk.fit_student_temperature(student_logits(s_vars, train["x"]),
                                           train["teacher_logits"], cfg.loss.temperature)
        return jnp.clip(tau, d.tau_s_min, d.tau_s_max)

    def guide_step(carry, idx):
        s_vars, g_vars, g_state, lam, delta, tau_s = carry
        batch = jax.tree.map(lambda a: a[idx], train)
        s_log = student_logits(s_vars, batch["x"])

        def objective(params):
            g, new_vars = _apply(guide, {**g_vars, "params": params}, batch["teacher_features"],
                                 batch["teacher_logits"], train=True)
            loss = disk.guide_loss(s_log, batch["teacher_logits"], batch["y"], g, lam=lam,
                                   delta=delta, tau_s=tau_s, **penalty_kw, **dist_kw,
                                   **usage_kw)
            return loss, new_vars

        grads, new_vars = jax.grad(objective, has_aux=True)(g_vars["params"])
        updates, g_state = g_opt.update(grads, g_state, g_vars["params"])
        new_vars = {**new_vars, "params": optax.apply_updates(g_vars["params"], updates)}
        return (s_vars, new_vars, g_state, lam, delta, tau_s), None

    def student_step(carry, idx):
        s_vars, s_state, g_vars, tau_s = carry
        batch = jax.tree.map(lambda a: a[idx], train)
        g = guide_value(g_vars, batch)

        def objective(params):
            (logits, _), new_vars = _apply(student, {**s_vars, "params": params}, batch["x"],
                                           train=True)
            per = disk.student_loss(logits, batch["teacher_logits"], batch["y"], g,
                                    tau_s=tau_s, **dist_kw)
            return jnp.mean(per), new_vars

        grads, new_vars = jax.grad(objective, has_aux=True)(s_vars["params"])
        updates, s_state = s_opt.update(grads, s_state, s_vars["params"])
        new_vars = {**new_vars, "params": optax.apply_updates(s_vars["params"], updates)}
        return (new_vars, s_state, g_vars, tau_s), None

    def guide_epochs(s_vars, g_vars, g_state, lam, delta, tau_s, key, epochs):
        idx = jax.vmap(lambda k: _batches(k, n, cfg.batch_size))(jax.random.split(key, epochs))
        carry = (s_vars, g_vars, g_state, lam, delta, tau_s)
        carry, _ = jax.lax.scan(guide_step, carry, idx.reshape(-1, cfg.batch_size))
        return carry[1], carry[2]

    def run(key):
        # same student initialisation as the CE / KD runs of this key
        k_s, k_g, k_init, k_rounds = (jax.random.fold_in(key, i) for i in (0, 2, 3, 4))
        s_vars = _init(student, k_s, train["x"][:2])
        g_vars = _init(guide, k_g, train["teacher_features"][:2], train["teacher_logits"][:2])
        s_state, g_state = s_opt.init(s_vars["params"]), g_opt.init(g_vars["params"])
        tau0 = fit_tau(s_vars) if d.tau_s_mode != "fixed" else jnp.float32(d.tau_s)
        delta0 = disk.budget_schedule(0, d.delta_min, d.delta_max, d.delta_period, d.delta_gamma)
        if d.guide_init_epochs:
            g_vars, g_state = guide_epochs(s_vars, g_vars, g_state, init_lambda(d), delta0,
                                           tau0, k_init, d.guide_init_epochs)
        g_init = guide_value(g_vars, train)     # g before round 1 (after the init epochs)

        def one_round(carry, inp):
            s_vars, s_state, g_vars, g_state, tau_s, best = carry
            r, k = inp
            k_g, k_s = jax.random.split(k)
            if d.tau_s_mode == "fit_round":
                tau_s = fit_tau(s_vars)
            lam = phase_lambda(d, r, disk.lambda_schedule(r, d.lam_min, d.lam_max,
                                                          d.lam_period))
            delta = disk.budget_schedule(r, d.delta_min, d.delta_max, d.delta_period,
                                         d.delta_gamma)
            g_vars, g_state = guide_epochs(s_vars, g_vars, g_state, lam, delta, tau_s, k_g,
                                           d.g_epochs)
            idx = jax.vmap(lambda kk: _batches(kk, n, cfg.batch_size))(
                jax.random.split(k_s, d.s_epochs)).reshape(-1, cfg.batch_size)
            (s_vars, s_state, _, _), _ = jax.lax.scan(student_step,
                                                      (s_vars, s_state, g_vars, tau_s), idx)
            logs = _eval_log(student, s_vars, evals)
            s_log = student_logits(s_vars, train["x"])
            g_all = guide_value(g_vars, train)
            logs.update(
                lam=lam, delta=delta, tau_s=tau_s,
                budget_usage=disk.budget_usage(s_log, g_all, train["y"],
                                               teacher_logits=train["teacher_logits"],
                                               **usage_kw),
                guide_on_misclassified=disk.misclassified_guide_mean(s_log, g_all, train["y"]),
                guide_mean=jnp.mean(g_all))
            best = keep_best(best, s_vars, logs["validation_accuracy"], r)
            return (s_vars, s_state, g_vars, g_state, tau_s, best), logs

        rounds = jnp.arange(d.rounds)
        carry = (s_vars, s_state, g_vars, g_state, tau0, _no_best(s_vars))
        carry, log = jax.lax.scan(one_round, carry, (rounds, jax.random.split(k_rounds, d.rounds)))
        out = _final(student, carry[0], evals, log, carry[5])
        out["guide_init"] = g_init
        return carry[0], out

    return run


# ----------------------------------------------------------------------------- teacher
def _arrays(split: dict) -> dict:
    return {"x": jnp.asarray(split["x"]), "y": jnp.asarray(split["y"])}


def _ce(logits, y, batch):
    return losses.cross_entropy(logits, y)


def train_teacher(teacher: nn.Module, data: dict, cfg, seed: int) -> tuple[dict, dict]:
    """CE teacher (A.1/A.2): best of `cfg.teacher_restarts` vmapped runs by validation
    accuracy (ties: training accuracy). Returns (variables, {split_accuracy: value})."""
    evals = {s: _arrays(v) for s, v in data.items()}
    run = make_supervised_run(teacher, evals["train"], evals, cfg, loss_fn=_ce)
    keys = jax.random.split(jax.random.PRNGKey(seed + 10_000), cfg.teacher_restarts)
    variables, metrics = jax.jit(jax.vmap(run))(keys)
    val = np.asarray(metrics["validation_accuracy"])
    tr = np.asarray(metrics["train_accuracy"])
    best = int(np.lexsort((-tr, -val))[0])
    acc = {k: float(np.asarray(v)[best]) for k, v in metrics.items() if k.endswith("accuracy")}
    return jax.tree.map(lambda a: a[best], variables), acc
