"""OURS (issue 20): Sec. 5 (Fig. 3 / 4) re-run with the ALM-KD variants beside CE, KD and the
paper's ALM-KD, paired over shared seeds.

Arms (config.arms, name -> {'kind', 'alm': overrides of config.alm, 'select': grid}):
  kind 'ce' / 'kd'   λ = 0 / loss.kd_weight;
  kind 'alm'         ALM-KD (kdjax.methods.alm.meta) with config.alm + the arm's overrides
                     (paper default, alm.clip='unit', alm.outer_train=..., lambda_model=...);
  kind 'threshold'   λ_i = 1 where p_T(y_i|x_i) < alm.conf_threshold, else
                     alm.threshold_else (-1 = loss.kd_weight, 0 = CE);
  kind 'oracle'      λ_i = 1 on the flipped labels, else alm.threshold_else (uses the true
                     flip mask: a reference, not a method).
Every arm of one seed shares the data, the teacher and the student's initialisation.

Hyper-parameters in an arm's 'select' grid (e.g. conf_threshold, pool_lr) are chosen before
the reported runs, on config.selection: other seeds (disjoint from the reported ones) whose data
carry a fourth clean split (data.n_select points, drawn after the test split): the grid value
with the highest mean final accuracy on that selection split wins. Neither the meta-validation
set nor test is read for the choice.

Result: per arm the final test accuracy, the paired differences arm − CE / − KD / − paper
ALM-KD (95% t-interval, n; kdjax.reproduce.stats), the AUC of λ for flipped vs clean labels
(per seed, then mean and t-interval) and the chosen hyper-parameters; `claim` judges the
paper's Fig. 4 claim (ALM-KD above CE and KD) and `paired_rows` carry the differences.
"""
from __future__ import annotations

import itertools
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from sklearn.metrics import roc_auc_score

from kdjax.methods.alm.pooled import rule_else, teacher_confidence, threshold_lambda
from kdjax.reproduce import stats
from papers.alm import synthetic as S

KINDS = ("ce", "kd", "alm", "threshold", "oracle")


def lambda_auc(lam: np.ndarray, flipped: np.ndarray) -> np.ndarray:
    """Per seed: the AUC of λ as a score for 'the label is flipped' (0.5 = no separation; ties,
    e.g. a constant λ, count half)."""
    return np.array([roc_auc_score(f, l) if 0 < f.sum() < f.size else np.nan
                     for l, f in zip(np.asarray(lam, np.float64), np.asarray(flipped))])


def _arm_config(config, arm) -> ml_collections.ConfigDict:
    return S._override(config, {"alm": arm.get("alm", {})})


def _train(config, env, arm, data_key: str = "x_test"):
    """(λ (S, N), test accuracy per epoch (S, E), accuracy of the final student on
    env['data'][data_key] (S,), seconds) of one arm on the seeds of `env`."""
    kind = arm["kind"]
    if kind not in KINDS:
        raise ValueError(f"arm kind {kind!r} must be one of {KINDS}")
    c = _arm_config(config, arm)
    t = ml_collections.ConfigDict(c.recipe.to_dict())
    kw = dict(hidden=t.student_hidden, num_classes=c.data.n_classes, t=t,
              temperature=c.loss.temperature, lam_value=0.0, alm_cfg=None)
    lam_fixed = None
    if kind == "kd":
        kw["lam_value"] = c.loss.kd_weight
    elif kind == "alm":
        kw["alm_cfg"] = S.alm_config_from(c)
    elif kind == "threshold":
        conf = jax.vmap(teacher_confidence)(env["teacher_tr"], env["data_j"]["y_train"])
        lam_fixed = threshold_lambda(conf, c.alm.conf_threshold, rule_else(
            c.alm.get("threshold_else", -1.0), c.loss.kd_weight))
    elif kind == "oracle":
        lam_fixed = jnp.where(jnp.asarray(env["data"]["flipped"]), 1.0, rule_else(
            c.alm.get("threshold_else", -1.0), c.loss.kd_weight))
    t0 = time.time()
    params, lam, accs = S._run_vmapped(env["keys"], env["data_j"], env["teacher_tr"],
                                       env["teacher_val"], lam_fixed=lam_fixed, **kw)
    model = S.MLP(t.student_hidden, c.data.n_classes)
    x, y = env["data"][data_key], env["data"][data_key.replace("x_", "y_")]
    pred = jax.jit(jax.vmap(lambda p, xx: jnp.argmax(model.apply({"params": p}, xx)[0], -1)))
    acc = np.mean(np.asarray(pred(params, jnp.asarray(x))) == y, axis=-1)
    return np.asarray(lam), np.asarray(accs), acc, time.time() - t0


def _plain(x) -> dict:
    return x.to_dict() if hasattr(x, "to_dict") else dict(x)


def _grid_points(grid) -> list[dict]:
    keys = list(grid)
    return [dict(zip(keys, v)) for v in itertools.product(*(grid[k] for k in keys))]


def select(config, log=print) -> dict:
    """arm name -> {'chosen': overrides, 'scores': [(overrides, mean selection accuracy)]},
    for every arm with a 'select' grid, on config.selection's seeds and selection split."""
    sel = config.selection
    c = S._override(config, {"seed0": sel.seed0, "num_seeds": sel.num_seeds,
                             "data": {"n_select": sel.n_select}})
    out = {}
    env = None
    for name in config.arm_order:
        arm = config.arms[name]
        if not arm.get("select"):
            continue
        env = env or S._setup(c)
        scores = []
        for point in _grid_points(_plain(arm.select)):
            trial = {**arm.to_dict(), "alm": {**_plain(arm.get("alm", {})), **point}}
            _, _, acc, secs = _train(c, env, ml_collections.ConfigDict(trial), "x_select")
            scores.append((point, float(acc.mean())))
            log(f"select {name} {point}: {acc.mean():.4f} ({secs:.0f}s)")
        out[name] = {"chosen": max(scores, key=lambda s: s[1])[0], "scores": scores}
    return out


def _paired_entry(a, b, label, epoch) -> dict:
    d = stats.paired(a, b)
    return {"comparison": label, "round": epoch, "diff": d.as_dict(),
            "text": stats.fmt_paired(d)}


def run_variants(config, workdir: str, log=print) -> dict:
    """The issue 20 comparison (see the module docstring); writes results.json."""
    from papers.paper_numbers import ALM as PAPER
    t0 = time.time()
    chosen = select(config, log) if "selection" in config else {}
    env = S._setup(config)
    d = env["data"]
    conf = np.asarray(jax.vmap(teacher_confidence)(env["teacher_tr"],
                                                   env["data_j"]["y_train"]))
    res, secs = {}, {"setup_teacher": env["setup_s"]}
    for name in config.arm_order:
        arm = config.arms[name].to_dict()
        if name in chosen:
            arm["alm"] = {**arm.get("alm", {}), **chosen[name]["chosen"]}
        if arm["kind"] in ("ce", "kd") or (arm["kind"] == "alm" and not arm.get("alm")):
            # the Fig. 4 students: shared with run_fig4 / run_fig3 in one process
            cfg = S.alm_config_from(config) if arm["kind"] == "alm" else None
            lam, accs, secs[name] = S._student(config, env, arm["kind"], cfg)
        else:
            lam, accs, _, secs[name] = _train(config, env, ml_collections.ConfigDict(arm))
        res[name] = {"lam": lam, "final": accs[:, -1], "curve": accs, "alm": arm.get("alm", {})}
        log(f"{name}: {accs[:, -1].mean():.4f} ({secs[name]:.0f}s)")
        S._write(workdir, "progress.json", {"selection": chosen, "final_test_acc": {
            k: v["final"].tolist() for k, v in res.items()}, "seconds": secs})
    e = config.recipe.epochs
    base = [b for b in ("ce", "kd", "alm") if b in res]
    rows, paired_rows = [], []
    for name, r in res.items():
        auc = lambda_auc(r["lam"], d["flipped"])
        auc_d = stats.paired(auc, np.zeros_like(auc))
        row = {"arm": name, "kind": config.arms[name].kind,
               "settings": ", ".join(f"{k}={v}" for k, v in r["alm"].items()) or "-",
               "test_acc": {"mean": float(r["final"].mean()),
                            "std": float(r["final"].std(ddof=1)) if r["final"].size > 1
                            else float("nan")},
               "lambda_flipped": float(np.mean([l[f].mean() for l, f in zip(r["lam"],
                                                                            d["flipped"])])),
               "lambda_clean": float(np.mean([l[~f].mean() for l, f in zip(r["lam"],
                                                                          d["flipped"])])),
               "auc_lambda_flipped": f"{auc_d.mean:.3f} [{auc_d.lo:.3f}, {auc_d.hi:.3f}]",
               "seconds": secs[name]}
        for b in base:
            if b != name:
                p = _paired_entry(r["final"], res[b]["final"], f"{name} − {b}", e)
                row[f"minus_{b}"] = p["text"]
                paired_rows.append(p)
        rows.append(row)
    teacher_auc = lambda_auc(1.0 - conf, d["flipped"])
    out = {"rows": rows, "paired_rows": paired_rows, "selection": chosen,
           "teacher_test_acc": S.mean_sem(env["teacher_test_acc"]),
           "auc_teacher_conf_flipped": float(np.nanmean(teacher_auc)),
           "scale_note": S._scale_note(config),
           "seeds": f"{env['seeds'][0]}..{env['seeds'][-1]}",
           "seconds": {**secs, "total": time.time() - t0}}
    if "alm" in res and "ce" in res and "kd" in res:
        out["claim"] = S.fig4_claim(res["alm"]["final"], res["ce"]["final"], res["kd"]["final"],
                                  PAPER.get(("sec5_fig4", "claim"), ""))
    S._write(workdir, "results.json", out)
    return out

