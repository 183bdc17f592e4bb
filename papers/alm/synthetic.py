"""ALM-KD Sec. 5 synthetic experiment (Fig. 3, Fig. 4, and the sensitivity of Sec. 5's open
choices), vectorised over seeds with jax.vmap.

Data: sklearn make_classification, 14 features, 20 classes, 8100 / 900 / 1000 train / val /
test, 10% of the training labels flipped to a different uniformly drawn class (val/test clean).
Teacher MLP 80 hidden, student MLP 50 hidden (one hidden layer, ReLU), SGD lr 0.01, momentum 0.9,
weight decay 5e-4, 100 epochs, cosine schedule. The teacher is trained with CE on the noisy
labels. Students: CE (λ = 0), KD (λ = loss.kd_weight = 0.9, τ = loss.temperature), ALM-KD
(kdjax.methods.alm.meta, τ = loss.temperature, the meta-update settings in config.alm).

Runners: run_fig3, run_fig4, run_sensitivity, run_setting_sensitivity (signature run(config,
workdir) -> dict); the tables and plots they write are built in alm_synthetic_report.
"""
from __future__ import annotations

import dataclasses
import json
import os
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from kdjax.methods.alm import config as alm_config
from kdjax.methods.alm import meta
from kdjax.methods.alm.loss import student_loss
from kdjax.methods.alm.pooled import pooled_lambda, teacher_confidence
from papers.alm.synthetic_data import default_data_config, make_data, make_data_stack
from papers.alm.synthetic_report import (fig3_table, fig4_claim, fig4_paired_rows,
                                            lambda_summary, mean_sem, plot_fig3, plot_fig4)

# ---------------------------------------------------------------- models and training


class MLP(nn.Module):
    """Two-layer network: Dense(hidden) -> ReLU -> Dense(classes); returns (logits, features)."""
    hidden: int
    num_classes: int

    @nn.compact
    def __call__(self, x, train: bool = False):
        h = nn.relu(nn.Dense(self.hidden)(x))
        return nn.Dense(self.num_classes)(h), h


def default_recipe() -> ml_collections.ConfigDict:
    """SGD, epochs, batch size and MLP widths of every Sec. 5 network."""
    return ml_collections.ConfigDict(dict(
        lr=0.01, momentum=0.9, weight_decay=5e-4, epochs=100, batch_size=128,
        student_hidden=50, teacher_hidden=80))


def _optimizer(t, steps_per_epoch):
    sched = optax.cosine_decay_schedule(t.lr, t.epochs * steps_per_epoch)
    tx = optax.chain(optax.add_decayed_weights(t.weight_decay),
                     optax.sgd(sched, momentum=t.momentum))
    return tx, sched


def _accuracy(forward, params, x, y):
    return jnp.mean(jnp.argmax(forward(params, x)[0], -1) == y)


def train_one(key, data: dict, teacher_tr, teacher_val, *, hidden: int, num_classes: int,
              t: ml_collections.ConfigDict, lam_value: float, temperature: float,
              alm_cfg: meta.MetaConfig | None, lam_fixed=None):
    """Trains one network on one seed's data; vmap over (key, data, teacher logits[, λ]).

    alm_cfg None: fixed λ = lam_value (0: CE, 0.9: KD), or the per-example `lam_fixed` (N,)
    (issue 20's threshold and oracle rules), at τ = temperature; otherwise ALM-KD at
    τ = alm_cfg.temperature. Returns final params, final λ (N,) (lambda_model='confidence':
    g_φ of the final φ on every example) and test accuracy per epoch (E,).
    """
    n = data["x_train"].shape[0]
    bs = t.batch_size
    steps = n // bs  # drop the last partial batch of each epoch
    model = MLP(hidden, num_classes)
    forward = meta.flax_forward(model)
    k_init, k_run = jax.random.split(key)
    params = model.init(k_init, data["x_train"][:1])["params"]
    tx, sched = _optimizer(t, steps)
    opt_state = tx.init(params)
    tau = alm_cfg.temperature if alm_cfg is not None else temperature
    if alm_cfg is not None:
        lam = meta.init_lambda_state(n, None, alm_cfg)
    elif lam_fixed is not None:
        lam = jnp.asarray(lam_fixed, jnp.float32)
    else:
        lam = jnp.full((n,), lam_value, jnp.float32)
    separate = alm_cfg is not None and alm_cfg.outer_train == "separate"
    val = {"image": data["x_val"], "label": data["y_val"], "teacher_logits": teacher_val}
    nv = data["x_val"].shape[0]

    if alm_cfg is not None:
        step_fn = meta.make_alm_step(forward, tx, sched, alm_cfg, head_path=("Dense_1",))
    else:
        def step_fn(params, opt_state, lam, s, batch, val_batch, outer_batch=None):
            lam_b = lam[batch["id"]]

            def loss(p):
                logits, _ = forward(p, batch["image"])
                return jnp.mean(student_loss(logits, batch["label"], batch["teacher_logits"], lam_b,
                                             tau))

            l, g = jax.value_and_grad(loss)(params)
            upd, opt_state = tx.update(g, opt_state, params)
            return optax.apply_updates(params, upd), opt_state, lam, {"loss": l}

    def epoch(carry, e):
        params, opt_state, lam = carry
        perm = jax.random.permutation(jax.random.fold_in(k_run, e), n)[:steps * bs].reshape(
            steps, bs)

        def step(c, xs):
            params, opt_state, lam = c
            i, ids = xs
            s = e * steps + i
            # validation minibatch of Alg. 1 line 6 (with replacement: cheap, not a permutation)
            vids = jax.random.randint(jax.random.fold_in(jax.random.fold_in(k_run, 7919), s),
                                      (min(bs, nv),), 0, nv)
            batch = {"image": data["x_train"][ids], "label": data["y_train"][ids], "id": ids,
                     "teacher_logits": teacher_tr[ids]}
            val_b = jax.tree.map(lambda a: a[vids], val)
            outer_b = None
            if separate:  # OURS: Eq. 16's β term on another random training batch
                oids = jax.random.randint(
                    jax.random.fold_in(jax.random.fold_in(k_run, 104729), s), (bs,), 0, n)
                outer_b = {"image": data["x_train"][oids], "label": data["y_train"][oids],
                           "id": oids, "teacher_logits": teacher_tr[oids]}
            params, opt_state, lam, _ = step_fn(params, opt_state, lam, s, batch, val_b,
                                                outer_b)
            return (params, opt_state, lam), None

        (params, opt_state, lam), _ = jax.lax.scan(step, (params, opt_state, lam),
                                                   (jnp.arange(steps), perm))
        acc = _accuracy(forward, params, data["x_test"], data["y_test"])
        return (params, opt_state, lam), acc

    (params, _, lam), accs = jax.lax.scan(epoch, (params, opt_state, lam), jnp.arange(t.epochs))
    if isinstance(lam, dict):  # lambda_model='confidence': λ of every example under final φ
        lam = pooled_lambda(lam["phi"], teacher_confidence(teacher_tr, data["y_train"]))
    return params, lam, accs


def _run_vmapped(keys, data, teacher_tr, teacher_val, lam_fixed=None, **kw):
    if lam_fixed is not None:
        fn = jax.jit(jax.vmap(lambda k, d, ttr, tv, lf: train_one(k, d, ttr, tv, lam_fixed=lf,
                                                                  **kw)))
        return fn(keys, data, teacher_tr, teacher_val, lam_fixed)
    fn = jax.jit(jax.vmap(lambda k, d, ttr, tv: train_one(k, d, ttr, tv, **kw)))
    return fn(keys, data, teacher_tr, teacher_val)


def train_teachers(keys, data, d, t, temperature):
    """CE teachers (80 hidden) on the noisy labels; returns teacher logits on train/val/test."""
    s, n, c = data["x_train"].shape[0], data["x_train"].shape[1], d.n_classes
    zeros_tr = jnp.zeros((s, n, c), jnp.float32)
    zeros_val = jnp.zeros((s, data["x_val"].shape[1], c), jnp.float32)
    params, _, accs = _run_vmapped(keys, data, zeros_tr, zeros_val, hidden=t.teacher_hidden,
                                   num_classes=c, t=t, lam_value=0.0,
                                   temperature=temperature, alm_cfg=None)
    model = MLP(t.teacher_hidden, c)
    logits = jax.jit(jax.vmap(lambda p, x: model.apply({"params": p}, x)[0]))
    return (logits(params, data["x_train"]), logits(params, data["x_val"]),
            logits(params, data["x_test"]), accs)


# ---------------------------------------------------------------- runners


def alm_config_from(config) -> meta.MetaConfig:
    """The meta-update settings: config.alm and τ = config.loss.temperature."""
    return meta.MetaConfig.from_config(config)


_MEMO: dict = {}  # runs shared by runners called in one process (fig4 then fig3: no retraining)


def _key(config, *extra) -> str:
    return json.dumps([config.data.to_dict(), config.recipe.to_dict(), config.seed0,
                       config.num_seeds, config.loss.to_dict(), *extra],
                      sort_keys=True, default=str)


def _setup(config):
    k = _key(config, "setup")
    if k not in _MEMO:
        _MEMO[k] = _setup_uncached(config)
    return _MEMO[k]


def _setup_uncached(config):
    d, t = config.data, config.recipe
    seeds = list(range(config.seed0, config.seed0 + config.num_seeds))
    t0 = time.time()
    data = make_data_stack(seeds, d)
    data_j = {k: jnp.asarray(v) for k, v in data.items()
              if k in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")}
    keys = jax.vmap(jax.random.PRNGKey)(jnp.asarray(seeds))
    kt, ks = jax.vmap(lambda k: jax.random.split(k))(keys).transpose(1, 0, 2)
    t_tr, t_val, t_te, t_accs = train_teachers(kt, data_j, d, t, config.loss.temperature)
    jax.block_until_ready(t_tr)
    return dict(seeds=seeds, data=data, data_j=data_j, keys=ks, teacher_tr=t_tr, teacher_val=t_val,
                teacher_test_acc=np.asarray(t_accs[:, -1]),
                teacher_train_acc_noisy=np.asarray(
                    jnp.mean(jnp.argmax(t_tr, -1) == data_j["y_train"], -1)),
                setup_s=time.time() - t0)


def _student(config, env, kind: str, alm_cfg: meta.MetaConfig | None = None):
    k = _key(config, kind, dataclasses.asdict(alm_cfg) if (kind == "alm" and alm_cfg) else None)
    if k not in _MEMO:
        _MEMO[k] = _student_uncached(config, env, kind, alm_cfg)
    return _MEMO[k]


def _student_uncached(config, env, kind: str, alm_cfg: meta.MetaConfig | None = None):
    t = ml_collections.ConfigDict(config.recipe.to_dict())
    lam_value = {"ce": 0.0, "kd": config.loss.kd_weight, "alm": 0.0}[kind]
    if kind != "alm":
        alm_cfg = None
    t0 = time.time()
    _, lam, accs = _run_vmapped(env["keys"], env["data_j"], env["teacher_tr"], env["teacher_val"],
                                hidden=t.student_hidden, num_classes=config.data.n_classes, t=t,
                                lam_value=lam_value, temperature=config.loss.temperature,
                                alm_cfg=alm_cfg)
    accs = np.asarray(accs)
    return np.asarray(lam), accs, time.time() - t0


def _write(workdir, name, out):
    os.makedirs(workdir, exist_ok=True)
    with open(os.path.join(workdir, name), "w") as f:
        json.dump(out, f, indent=1, default=float)


def _scale_note(config) -> str:
    full = (config.num_seeds == 50 and config.recipe.epochs == 100 and config.data.n_train == 8100)
    return "full setting" if full else (
        f"reduced: {config.num_seeds} seeds, {config.recipe.epochs} epochs, "
        f"n_train {config.data.n_train}")


def run_fig3(config, workdir: str) -> dict:
    """Fig. 3: mean learned λ per teacher-confidence bucket, noisy vs clean, ± SEM over seeds."""
    from papers.paper_numbers import ALM as PAPER
    env = _setup(config)
    cfg = alm_config_from(config)
    lam, accs, secs = _student(config, env, "alm", cfg)
    d = env["data"]
    rows = fig3_table(lam, np.asarray(env["teacher_tr"]), d["y_train"], d["flipped"])
    summ = lambda_summary(lam, np.asarray(env["teacher_tr"]), d["y_train"], d["flipped"])
    claim = PAPER.get(("sec5_fig3", "claim"), "")
    for r in rows:
        r["paper"] = claim
        r["seeds"] = f"{env['seeds'][0]}..{env['seeds'][-1]}"
    out = {"rows": rows, "summary": summ, "alm_config": dataclasses.asdict(cfg),
           "teacher_test_acc": mean_sem(env["teacher_test_acc"]),
           "alm_final_test_acc": mean_sem(accs[:, -1]), "scale_note": _scale_note(config),
           "seconds": {"setup_teacher": env["setup_s"], "alm": secs}}
    _write(workdir, "results.json", out)
    plot_fig3(rows, os.path.join(workdir, "fig3.png"))
    return out


def run_fig4(config, workdir: str) -> dict:
    """Fig. 4: test accuracy per epoch of CE, KD (λ = 0.9), ALM-KD, mean ± SEM over seeds."""
    from papers.paper_numbers import ALM as PAPER
    env = _setup(config)
    curves, secs = {}, {"setup_teacher": env["setup_s"]}
    for kind in ("ce", "kd", "alm"):
        _, accs, s = _student(config, env, kind, alm_config_from(config))
        curves[kind], secs[kind] = accs, s
    e = config.recipe.epochs
    report_epochs = sorted({x for x in (1, 2, 5, 10, 20, 50, e) if x <= e})
    rows = []
    for ep in report_epochs:
        row = {"epoch": ep}
        for kind, a in curves.items():
            row[f"acc_{kind}"] = mean_sem(a[:, ep - 1])
        row["paper"] = PAPER.get(("sec5_fig4", "claim"), "")
        row["seeds"] = f"{env['seeds'][0]}..{env['seeds'][-1]}"
        rows.append(row)
    final = {k: a[:, -1] for k, a in curves.items()}
    paired = {"alm_minus_ce": mean_sem(final["alm"] - final["ce"]),
              "alm_minus_kd": mean_sem(final["alm"] - final["kd"]),
              "kd_minus_ce": mean_sem(final["kd"] - final["ce"]),
              "frac_seeds_alm_gt_kd": float(np.mean(final["alm"] > final["kd"])),
              "frac_seeds_alm_gt_ce": float(np.mean(final["alm"] > final["ce"])),
              # area under the learning curve: the "learns faster" claim
              "auc_alm_minus_kd": mean_sem(curves["alm"].mean(1) - curves["kd"].mean(1)),
              "auc_alm_minus_ce": mean_sem(curves["alm"].mean(1) - curves["ce"].mean(1))}
    out = {"rows": rows, "paired_final": paired, "alm_config": dataclasses.asdict(
        alm_config_from(config)), "teacher_test_acc": mean_sem(env["teacher_test_acc"]),
           "claim": fig4_claim(final["alm"], final["ce"], final["kd"],
                               PAPER.get(("sec5_fig4", "claim"), "")),
           "paired_rows": fig4_paired_rows(final, e),
           "curves_mean": {k: a.mean(0).tolist() for k, a in curves.items()},
           "scale_note": _scale_note(config), "seconds": secs}
    _write(workdir, "results.json", out)
    plot_fig4(curves, os.path.join(workdir, "fig4.png"))
    return out


def run_sensitivity(config, workdir: str) -> dict:
    """ALM-KD under each variant of the open Sec. 5 choices (config.variants: name -> nested
    overrides of config.alm / config.loss, applied to the ALM-KD student only).

    Every variant shares the data and teachers; reports the Fig. 3 pattern (λ noisy − clean,
    overall and within confidence buckets) and the Fig. 4 pattern (final accuracy vs CE and KD).
    """
    env = _setup(config)
    d = env["data"]
    _, acc_ce, _ = _student(config, env, "ce")
    _, acc_kd, _ = _student(config, env, "kd")
    rows = []
    for name in config.variant_order:
        over = config.variants[name]
        cfg = alm_config_from(_override(config, over))
        lam, accs, secs = _student(config, env, "alm", cfg)
        s = lambda_summary(lam, np.asarray(env["teacher_tr"]), d["y_train"], d["flipped"])
        fin = accs[:, -1]
        finite = bool(np.isfinite(lam).all())
        rows.append({
            "variant": name, "overrides": over.to_dict(),
            "lambda_noisy": s["lambda_noisy"], "lambda_clean": s["lambda_clean"],
            "noisy_minus_clean": s["noisy_minus_clean"],
            "within_bucket_noisy_minus_clean": s["within_bucket_noisy_minus_clean"],
            "frac_seeds_noisy_gt_clean": s["frac_seeds_noisy_gt_clean"],
            "lambda_range": [s["lambda_min"], s["lambda_max"]],
            "acc_alm": mean_sem(fin), "alm_minus_ce": mean_sem(fin - acc_ce[:, -1]),
            "alm_minus_kd": mean_sem(fin - acc_kd[:, -1]),
            "fig3_pattern": bool(finite and s["noisy_minus_clean"]["mean"] is not None
                                 and s["noisy_minus_clean"]["mean"] > 0
                                 and s["frac_seeds_noisy_gt_clean"] >= 0.8),
            "fig4_pattern": bool(np.mean(fin - acc_kd[:, -1]) > 0
                                 and np.mean(fin - acc_ce[:, -1]) > 0),
            "seconds": secs, "seeds": f"{env['seeds'][0]}..{env['seeds'][-1]}"})
        _write(workdir, "results.json", {"rows": rows, "scale_note": _scale_note(config)})
    out = {"rows": rows, "acc_ce": mean_sem(acc_ce[:, -1]), "acc_kd": mean_sem(acc_kd[:, -1]),
           "teacher_test_acc": mean_sem(env["teacher_test_acc"]),
           "teacher_train_acc_on_noisy_labels": mean_sem(env["teacher_train_acc_noisy"]),
           "scale_note": _scale_note(config)}
    _write(workdir, "results.json", out)
    return out


def _override(config, over) -> ml_collections.ConfigDict:
    """Copy of `config` with nested overrides, e.g.
    {'data': {'class_sep': 2.0}, 'loss': {'kd_weight': .5}}."""
    c = ml_collections.ConfigDict(config.to_dict())
    for k, v in dict(over).items():
        if hasattr(v, "items"):
            for kk, vv in dict(v).items():
                c[k][kk] = vv
        else:
            c[k] = v
    return c


def run_setting_sensitivity(config, workdir: str) -> dict:
    """Whole Sec. 5 (teachers, CE, KD, ALM-KD) under each setting in config.settings (nested
    overrides of data / recipe / loss / alm): make_classification args, batch size, τ, ...
    Reports the Fig. 3 and Fig. 4 patterns per setting."""
    rows = []
    for name in config.setting_order:
        c = _override(config, config.settings[name])
        env = _setup(c)
        d = env["data"]
        _, acc_ce, _ = _student(c, env, "ce")
        _, acc_kd, _ = _student(c, env, "kd")
        lam, acc_alm, secs = _student(c, env, "alm", alm_config_from(c))
        s = lambda_summary(lam, np.asarray(env["teacher_tr"]), d["y_train"], d["flipped"])
        fin = acc_alm[:, -1]
        rows.append({
            "setting": name, "overrides": config.settings[name].to_dict(),
            "teacher_test_acc": mean_sem(env["teacher_test_acc"]),
            "acc_ce": mean_sem(acc_ce[:, -1]), "acc_kd": mean_sem(acc_kd[:, -1]),
            "acc_alm": mean_sem(fin), "alm_minus_ce": mean_sem(fin - acc_ce[:, -1]),
            "alm_minus_kd": mean_sem(fin - acc_kd[:, -1]),
            "kd_minus_ce": mean_sem(acc_kd[:, -1] - acc_ce[:, -1]),
            "lambda_noisy": s["lambda_noisy"], "lambda_clean": s["lambda_clean"],
            "noisy_minus_clean": s["noisy_minus_clean"],
            "within_bucket_noisy_minus_clean": s["within_bucket_noisy_minus_clean"],
            "frac_seeds_noisy_gt_clean": s["frac_seeds_noisy_gt_clean"],
            "fig3_pattern": bool(s["noisy_minus_clean"]["mean"] is not None
                                 and s["noisy_minus_clean"]["mean"] > 0
                                 and s["frac_seeds_noisy_gt_clean"] >= 0.8),
            "fig4_pattern": bool(np.mean(fin - acc_kd[:, -1]) > 0
                                 and np.mean(fin - acc_ce[:, -1]) > 0),
            "seconds_alm": secs, "seeds": f"{env['seeds'][0]}..{env['seeds'][-1]}"})
        _write(workdir, "results.json", {"rows": rows, "scale_note": _scale_note(config)})
    return {"rows": rows, "scale_note": _scale_note(config)}


def base_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """Shared Sec. 5 config; arg 'cpu' (default) and 'full' are both the paper's full setting
    (it fits this CPU); 'smoke' is a tiny run for tests."""
    arg = arg or "cpu"
    if arg not in ("cpu", "full", "smoke"):
        raise ValueError(f"unknown config arg {arg!r}; use 'cpu', 'full' or 'smoke'")
    c = ml_collections.ConfigDict()
    c.data = default_data_config()
    c.recipe = default_recipe()   # not `train`: this runner has its own schema, not kdjax's
    c.seed0 = 0
    c.num_seeds = 50
    c.loss = ml_collections.ConfigDict(dict(
        kd_weight=0.9,     # λ of the KD student
        temperature=4.0))  # τ of the KD and ALM-KD students
    meta_fields = {f.name for f in dataclasses.fields(meta.MetaConfig)}
    c.alm = ml_collections.ConfigDict(   # the meta-update fields of the `alm` section
        {k: v for k, v in alm_config.section().items() if k in meta_fields})
    c.alm.lambda_lr = 1e4
    if arg == "smoke":
        c.num_seeds = 2
        c.recipe.epochs = 2
        c.data.n_train, c.data.n_val, c.data.n_test = 810, 90, 100
    return c
