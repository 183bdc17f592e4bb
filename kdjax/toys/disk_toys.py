"""DiSK Table 1: CE / KD / DiSK on the 1D-intervals (A.1) and 2D-Gaussians (A.2) toys,
vectorised over seeds.

One training run written as a pure function of a PRNG key (so `jax.vmap` runs all 100
initialisations at once; a toy loop of its own, with kdjax.train's optimizer), the teacher, and
the runner `run_table1(config, workdir)`; the data, function classes and the classification into
Table 1's minima are in kdjax/toys/disk_toy_problems.py.

Choices the paper leaves open (each is a config field, see experiments/disk/table1.py):
* 1D: p(blue|x) = h(x) of the interval class, computed in log space so log p and log(1 − p)
  (the two logits) are exact; endpoints sorted so any parameter vector is a valid member;
  sigmoid sharpness k from config. Class-balanced sampling, uniform within each class.
* 2D: x ~ N(c, r·I) with r = 0.05 as written in A.2 (variance r); n/6 points per centre.
* Teacher: best of `teacher_restarts` CE runs by validation accuracy (A.1 says the teacher
  recovers f*; a single SGD run of an interval class need not).
* Minima: a run is assigned by which test clusters it gets right (majority vote per cluster),
  which refines "classify by test accuracy" when two minima have equal accuracy.
"""
from __future__ import annotations

import json
import os
import time
from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from kdjax import losses
from kdjax.methods.disk import loss as disk
from kdjax.methods.disk.guide import GuideMLP
from kdjax.toys.disk_toy_problems import (GLOBAL_MINIMUM, MINIMA_NAMES, IntervalModel, ToyMLP,
                                          classify_minima, ideal_accuracy, make_dataset)
from kdjax.train.optim import make_optimizer

Array = jax.Array


# ----------------------------------------------------------------------------- models
def build_models(name: str, cfg) -> tuple[nn.Module, nn.Module, nn.Module]:
    """(teacher, student, guide) modules of toy `name` from its config block."""
    guide = GuideMLP(hidden=tuple(cfg.disk.guide_hidden))
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


def make_supervised_run(module: nn.Module, train: dict, evals: dict, cfg, *,
                        loss_fn: Callable[[Array, Array, dict], Array]):
    """run(key) -> (variables, metrics) for a CE/KD-trained `module`; loss_fn(logits, y, batch).

    `train` holds arrays 'x', 'y' (and 'teacher_logits' for KD); pure in `key`, vmappable.
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

        def epoch(state, k):
            state, _ = jax.lax.scan(step, state, _batches(k, n, cfg.batch_size))
            return state, _eval_log(module, state[0], evals)

        state, log = jax.lax.scan(epoch, state, jax.random.split(k_data, cfg.epochs))
        return state[0], _final(module, state[0], evals, log)

    return run


def _eval_log(module, variables, evals) -> dict:
    out = {}
    for split in ("train", "validation"):
        if split in evals:
            (logits, _), _ = _apply(module, variables, evals[split]["x"], train=False)
            out[f"{split}_accuracy"] = _accuracy(logits, evals[split]["y"])
    return out


def _final(module, variables, evals, log) -> dict:
    out = {"log": log}
    for split, d in evals.items():
        (logits, _), _ = _apply(module, variables, d["x"], train=False)
        out[f"{split}_accuracy"] = _accuracy(logits, d["y"])
        out[f"{split}_pred"] = jnp.argmax(logits, -1).astype(jnp.int32)
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
                                   delta=delta, tau_s=tau_s, penalty=d.penalty, **dist_kw,
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
            g_vars, g_state = guide_epochs(s_vars, g_vars, g_state, d.lam_min, delta0, tau0,
                                           k_init, d.guide_init_epochs)

        def one_round(carry, inp):
            s_vars, s_state, g_vars, g_state, tau_s = carry
            r, k = inp
            k_g, k_s = jax.random.split(k)
            if d.tau_s_mode == "fit_round":
                tau_s = fit_tau(s_vars)
            lam = disk.lambda_schedule(r, d.lam_min, d.lam_max, d.lam_period)
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
            return (s_vars, s_state, g_vars, g_state, tau_s), logs

        rounds = jnp.arange(d.rounds)
        carry = (s_vars, s_state, g_vars, g_state, tau0)
        carry, log = jax.lax.scan(one_round, carry, (rounds, jax.random.split(k_rounds, d.rounds)))
        return carry[0], _final(student, carry[0], evals, log)

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


# ----------------------------------------------------------------------------- runner
def run_toy(name: str, cfg, *, seed: int, num_runs: int, methods: Sequence[str]) -> dict:
    """Teacher, then `num_runs` students per method (vmapped), classified into minima."""
    data = make_dataset(name, seed, dict(cfg.sizes), **dict(cfg.get("data_kw", {})))
    teacher, student, guide = build_models(name, cfg)
    t0 = time.time()
    t_vars, t_acc = train_teacher(teacher, data, cfg, seed)
    out: dict[str, Any] = {"teacher": {**t_acc, "wall_s": time.time() - t0}, "methods": {}}
    train = _arrays(data["train"])
    logits, feats = teacher.apply(t_vars, train["x"], train=False)
    train.update(teacher_logits=logits, teacher_features=feats)
    evals = {s: _arrays(v) for s, v in data.items()}
    keys = jax.random.split(jax.random.PRNGKey(seed), num_runs)
    for method in methods:
        if method == "ce":
            run = make_supervised_run(student, train, evals, cfg, loss_fn=_ce)
        elif method == "kd":
            c = cfg.loss   # KD weight 1 − ce_weight, as DiSK's
            run = make_supervised_run(student, train, evals, cfg, loss_fn=lambda lg, y, b:
                                      losses.kd_loss(lg, y, b["teacher_logits"],
                                                     temperature=c.temperature,
                                                     alpha=1.0 - c.ce_weight))
        elif method == "disk":
            run = make_disk_run(student, guide, train, evals, cfg)
        else:
            raise ValueError(f"unknown method {method!r}")
        t0 = time.time()
        _, metrics = jax.jit(jax.vmap(run))(keys)
        metrics = jax.tree.map(np.asarray, metrics)
        wall = time.time() - t0
        minima = classify_minima(name, metrics["test_pred"], data["test"])
        out["methods"][method] = {
            "minima": minima, "wall_s": wall,
            "test_accuracy": metrics["test_accuracy"].tolist(),
            "validation_accuracy": metrics["validation_accuracy"].tolist(),
            "train_accuracy": metrics["train_accuracy"].tolist(),
            "log_mean": {k: np.mean(v, axis=0).round(5).tolist()
                         for k, v in metrics["log"].items()}}
    out["ideal_accuracy"] = ideal_accuracy(name, data["test"])
    return out


METHOD_NAMES = {"ce": "Cross-Entropy", "kd": "KD", "disk": "DiSK"}


def table_rows(name: str, res: dict, num_runs: int, paper: dict | None) -> list[dict]:
    """One row per method: counts per minimum (+ 'other'), accuracies, paper's counts."""
    rows = []
    for method, m in res["methods"].items():
        acc = np.array(m["test_accuracy"])
        labels = np.array(m["minima"])
        row = {"toy": name, "method": METHOD_NAMES[method], "runs": num_runs,
               "seeds": f"0..{num_runs - 1}"}
        for k in MINIMA_NAMES[name] + ("other",):
            row[k] = int(np.sum(labels == k))
        row["global"] = row[GLOBAL_MINIMUM[name]]
        row["test_acc_mean"] = float(acc.mean())
        row["test_acc_std"] = float(acc.std())
        row["acc_by_minimum"] = {k: float(acc[labels == k].mean())
                                 for k in MINIMA_NAMES[name] + ("other",) if np.any(labels == k)}
        if paper is not None:
            row["paper"] = dict(paper.get(name, {}).get(METHOD_NAMES[method], {}))
        rows.append(row)
    return rows


def format_table(rows: list[dict], paper_acc: dict | None = None) -> str:
    """Plain-text Table 1, ours (paper's) per cell."""
    lines = []
    for toy in dict.fromkeys(r["toy"] for r in rows):
        names = MINIMA_NAMES[toy]
        head = f"{toy:14s} " + " ".join(f"{k:>9s}" for k in names) + "     other  test acc"
        lines.append(head)
        if paper_acc:
            lines.append(f"{'paper acc %':14s} " + " ".join(
                f"{paper_acc.get(toy, {}).get(k, ''):>9}" for k in names))
        for r in (r for r in rows if r["toy"] == toy):
            cells = " ".join(f"{r[k]:>3d} ({r.get('paper', {}).get(k, '-'):>3})" for k in names)
            lines.append(f"{r['method']:14s} {cells} {r['other']:>9d}  "
                         f"{100 * r['test_acc_mean']:.1f}±{100 * r['test_acc_std']:.1f}")
    return "\n".join(lines)


def run_table1(config: ml_collections.ConfigDict, workdir: str) -> dict:
    """Runner of experiments/disk/table1.py: writes results.json, returns {'rows', ...}."""
    from kdjax.reproduce import paper_numbers

    paper = paper_numbers.DISK.get("table1", {})
    os.makedirs(workdir, exist_ok=True)
    rows, details = [], {}
    t0 = time.time()
    for name in config.toys:
        res = run_toy(name, config[name], seed=config.seed, num_runs=config.num_runs,
                      methods=tuple(config.methods))
        details[name] = res
        rows += table_rows(name, res, config.num_runs, paper.get("counts"))
    result = {"rows": rows, "scale_note": config.scale_note,
              "table": format_table(rows, paper.get("accuracy")),
              "wall_s": time.time() - t0,
              "teachers": {k: v["teacher"] for k, v in details.items()},
              "ideal_accuracy": {k: v["ideal_accuracy"] for k, v in details.items()}}
    with open(os.path.join(workdir, "results.json"), "w") as f:
        json.dump({**result, "config": config.to_dict(), "details": details}, f)
    return result


def main(argv) -> None:
    """CLI: python -m kdjax.toys.disk_toys --config=experiments/disk/table1.py --workdir=DIR."""
    del argv
    from absl import flags
    config = flags.FLAGS.config
    t0 = time.time()
    result = run_table1(config, flags.FLAGS.workdir)
    print(result["table"])
    print("teachers:", json.dumps(result["teachers"]))
    print("ideal test accuracy per minimum:", json.dumps(result["ideal_accuracy"]))
    print(f"wall {time.time() - t0:.0f}s")


if __name__ == "__main__":
    from absl import app, flags
    from ml_collections import config_flags

    config_flags.DEFINE_config_file("config", "experiments/disk/table1.py", "Table 1 config.")
    flags.DEFINE_string("workdir", "/tmp/disk_table1", "Where results.json goes.")
    app.run(main)
