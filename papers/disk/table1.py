"""DiSK Table 1 runner: every method of a toy on the same initialisation keys, the KD grid chosen
on validation, DiSK variants, paired comparisons of landing in the global minimum, the claim.

    python -m papers.disk.table1 --config=experiments/disk/table1.py --workdir=DIR

Methods (config `methods`): 'ce', 'kd' (fixed α = loss.ce_weight, τ = loss.temperature),
'kd_grid' (KD over the paper's A.1 scan, α ∈ toy.kd_grid.alpha × τ ∈ toy.kd_grid.tau, α the CE
weight, so α = 1 is CE; the (α, τ) with the highest mean VALIDATION accuracy over the runs is
reported — the test split never enters the choice), 'disk' (Alg. 1 with the toy's `disk`
block) and any name of `config.disk_variants` (DiSK with those `disk.*` fields replaced).
Run i of every method uses key i, so CE, KD and DiSK run i share their student's
initialisation: the indicator "run i landed in the global minimum" is paired across methods
and `stats.paired` gives DiSK − CE / − KD with its 95% t-interval.

Selection (toy field `select`): 'last' = the final epoch (our default) or 'best_validation' =
the epoch (DiSK: round) of highest validation accuracy, as the official code keeps its best
evaluation epoch (ours evaluates the validation split, never test). Both are computed in every
run; `by_selection` in results.json holds both, `select` picks the one the table shows.
"""
from __future__ import annotations

import copy
import json
import os
import time
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from kdjax import losses
from kdjax.reproduce import stats
from papers.disk import toys as T
from papers.disk.toy_problems import (GLOBAL_MINIMUM, MINIMA_NAMES, classify_minima,
                                          ideal_accuracy, make_dataset)

SELECTIONS = ("last", "best_validation")
METHOD_NAMES = {"ce": "Cross-Entropy", "kd": "KD", "kd_grid": "KD (α, τ on validation)",
                "disk": "DiSK"}
PAPER_ROWS = {"ce": "Cross-Entropy", "kd_grid": "KD", "disk": "DiSK"}
CLAIM_TEXT = ("DiSK lands in the global minimum of Table 1 more often than CE and KD (1D "
              "intervals and 2D Gaussians)")


def kd_combos(cfg) -> list[tuple[float, float]]:
    """(α, τ) pairs of the KD grid; α = 1 (pure CE) once, not once per τ."""
    alphas, taus = tuple(cfg.kd_grid.alpha), tuple(cfg.kd_grid.tau)
    return [(float(a), float(t)) for a in alphas for t in taus if a < 1.0 or t == taus[0]]


def _kd_run(student, train, evals, cfg, alpha, tau):
    return T.make_supervised_run(student, train, evals, cfg, loss_fn=lambda lg, y, b:
                                 losses.kd_loss(lg, y, b["teacher_logits"], temperature=tau,
                                                alpha=1.0 - alpha))


def _pick(metrics: dict, select: str) -> dict:
    return metrics if select == "last" else metrics["best"]


def _record(problem: str, metrics: dict, test: dict, select: str, wall: float) -> dict:
    """One method's per-run results under both selections; the top level is `select`'s."""
    by = {}
    for s in SELECTIONS:
        m = _pick(metrics, s)
        by[s] = {"minima": classify_minima(problem, m["test_pred"], test),
                 **{f"{k}_accuracy": np.asarray(m[f"{k}_accuracy"]).tolist()
                    for k in ("train", "validation", "test")}}
    by["best_validation"]["epoch"] = np.asarray(metrics["best"]["epoch"]).tolist()
    log = {k: np.mean(v, axis=0).round(5).tolist() for k, v in metrics["log"].items()}
    return {**by[select], "by_selection": by, "wall_s": wall, "log_mean": log}


def run_toy(name: str, cfg, *, seed: int, num_runs: int, methods: Sequence[str],
            disk_variants: dict | None = None, init_seed: int | None = None) -> dict:
    """One (data, teacher) draw: the data (`make_dataset(seed)`) and the teacher (best of
    `teacher_restarts` CE runs keyed by seed + 10000) from the draw seed `seed`, then
    `num_runs` students per method (vmapped) on the keys split from PRNGKey(init_seed) (None =
    the draw seed, as before draws existed), classified into minima."""
    problem = cfg.get("problem", name)
    select = cfg.get("select", "last")
    if select not in SELECTIONS:
        raise ValueError(f"{name}.select must be one of {SELECTIONS}, got {select!r}")
    variants = dict(disk_variants or {})
    data = make_dataset(problem, seed, dict(cfg.sizes), **dict(cfg.get("data_kw", {})))
    teacher, student, guide = T.build_models(problem, cfg)
    t0 = time.time()
    t_vars, t_acc = T.train_teacher(teacher, data, cfg, seed)
    out: dict[str, Any] = {"teacher": {**t_acc, "wall_s": time.time() - t0}, "methods": {},
                           "problem": problem, "select": select}
    train = T._arrays(data["train"])
    logits, feats = teacher.apply(t_vars, train["x"], train=False)
    train.update(teacher_logits=logits, teacher_features=feats)
    evals = {s: T._arrays(v) for s, v in data.items()}
    init_seed = seed if init_seed is None else init_seed
    keys = jax.random.split(jax.random.PRNGKey(init_seed), num_runs)
    for method in methods:
        t0 = time.time()
        extra: dict = {}
        if method == "kd_grid":
            combos = kd_combos(cfg)
            a, t = (jnp.asarray([c[i] for c in combos], jnp.float32) for i in (0, 1))
            grid = jax.jit(jax.vmap(lambda al, ta: jax.vmap(
                lambda k: _kd_run(student, train, evals, cfg, al, ta)(k)[1])(keys)))(a, t)
            grid = jax.tree.map(np.asarray, grid)
            val = [float(np.mean(_pick(grid, select)["validation_accuracy"][i]))
                   for i in range(len(combos))]
            best = int(np.argmax(val))          # first of the highest mean validation accuracy
            metrics = jax.tree.map(lambda v: v[best], grid)
            extra["grid"] = [{"alpha": al, "tau": ta, "validation_acc_mean": val[i],
                              "test_acc_mean": float(np.mean(
                                  _pick(grid, select)["test_accuracy"][i]))}
                             for i, (al, ta) in enumerate(combos)]
            extra["selected"] = {"alpha": combos[best][0], "tau": combos[best][1],
                                 "by": f"mean validation accuracy ({select})"}
        else:
            if method == "ce":
                run = T.make_supervised_run(student, train, evals, cfg, loss_fn=T._ce)
            elif method == "kd":
                run = _kd_run(student, train, evals, cfg, cfg.loss.ce_weight,
                              cfg.loss.temperature)
            elif method == "disk" or method in variants:
                c = cfg
                if method in variants:
                    c = copy.deepcopy(cfg)
                    c.disk.update(dict(variants[method]))
                _, s_mod, g_mod = T.build_models(problem, c)
                run = T.make_disk_run(s_mod, g_mod, train, evals, c)
            else:
                raise ValueError(f"unknown method {method!r} (not in config.disk_variants)")
            metrics = jax.tree.map(np.asarray, jax.jit(jax.vmap(run))(keys)[1])
            if "guide_init" in metrics:
                extra["guide_init_mean"] = float(np.mean(metrics["guide_init"]))
                extra["guide_init_max"] = float(np.max(metrics["guide_init"]))
        out["methods"][method] = {**_record(problem, metrics, data["test"], select,
                                            time.time() - t0), **extra}
    out["ideal_accuracy"] = ideal_accuracy(problem, data["test"])
    out["seed"], out["init_seed"] = seed, init_seed
    return out


def _name(method: str) -> str:
    return METHOD_NAMES.get(method, f"DiSK [{method}]")


_PER_RUN = ("minima", "train_accuracy", "validation_accuracy", "test_accuracy", "epoch")


def merge_draws(draws: Sequence[dict]) -> dict:
    """One toy's (data, teacher) draws as one run_toy-shaped result: every per-run list
    concatenated in draw order and 'draw' = each run's draw seed (the unit of the two-level
    comparison, stats.two_level). One draw: run_toy's result as it is (plus 'draw', 'seeds').
    Several: the per-draw items (teacher, KD grid choice, wall time, logs) as lists, each
    method's under 'per_draw' (its 'log_mean' averaged over draws)."""
    first = draws[0]
    sizes = [len(next(iter(d["methods"].values()))["minima"]) for d in draws]
    label = sum(([d["seed"]] * k for d, k in zip(draws, sizes)), [])
    if len(draws) == 1:
        return {**first, "draw": label, "seeds": [first["seed"]]}
    out = {"problem": first["problem"], "select": first["select"], "draw": label,
           "seeds": [d["seed"] for d in draws], "init_seed": [d["init_seed"] for d in draws],
           "teacher": [d["teacher"] for d in draws],
           "ideal_accuracy": [d["ideal_accuracy"] for d in draws], "methods": {}}
    cat = lambda recs, k: sum((list(r[k]) for r in recs), [])
    for m in first["methods"]:
        recs = [d["methods"][m] for d in draws]
        merged = {k: cat(recs, k) for k in _PER_RUN if k in recs[0]}
        merged["by_selection"] = {s: {k: cat([r["by_selection"][s] for r in recs], k)
                                      for k in recs[0]["by_selection"][s]} for s in SELECTIONS}
        merged["log_mean"] = {k: np.mean([r["log_mean"][k] for r in recs], 0).tolist()
                              for k in recs[0]["log_mean"]}
        merged["wall_s"] = float(sum(r["wall_s"] for r in recs))
        merged["per_draw"] = [{k: v for k, v in r.items()
                               if k not in _PER_RUN + ("by_selection", "log_mean")}
                              for r in recs]
        out["methods"][m] = merged
    return out


def _indicator(res: dict, method: str, selection: str) -> np.ndarray:
    minima = res["methods"][method]["by_selection"][selection]["minima"]
    return (np.array(minima) == GLOBAL_MINIMUM[res["problem"]]).astype(np.float64)


def _draw_labels(res: dict, n: int) -> list:
    return list(res.get("draw") or [res.get("seed", 0)] * n)


def paired_global(res: dict, selection: str) -> dict[tuple[str, str], stats.TwoLevel]:
    """(DiSK-like method, baseline) -> paired difference of the global-minimum indicator, two
    levels (stats.two_level): over the (data, teacher) draws (each draw's runs averaged; n =
    draws) and over every run pooled (n = runs; the within-teacher interval)."""
    methods = res["methods"]
    guided = [m for m in methods if m not in ("ce", "kd", "kd_grid")]
    out = {}
    for m in guided:
        for b in ("ce", "kd", "kd_grid"):
            if b in methods:
                x, y = _indicator(res, m, selection), _indicator(res, b, selection)
                out[(m, b)] = stats.two_level(x, y, _draw_labels(res, x.size))
    return out


def fmt_diff(d: stats.TwoLevel) -> str:
    """One draw: the runs' interval as before draws existed; several: both levels."""
    return stats.fmt_paired(d.runs, unit="pts") if d.draws.n == 1 else stats.fmt_two_level(d)


def _kd_choices(m: dict) -> str | None:
    """The validation-chosen KD (α, τ): one draw's pair, or each pair with its number of draws."""
    picks = [m["selected"]] if "selected" in m else [
        r["selected"] for r in m.get("per_draw", []) if "selected" in r]
    if not picks:
        return None
    counts: dict[str, int] = {}
    for p in picks:
        key = f"α={p['alpha']:g}, τ={p['tau']:g}"
        counts[key] = counts.get(key, 0) + 1
    if len(picks) == 1:
        return next(iter(counts))
    return "; ".join(f"{k} ×{v}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1]))


def table_rows(name: str, res: dict, num_runs: int, paper: dict | None) -> list[dict]:
    """One row per method: counts per minimum (+ 'other') over every run of every draw,
    accuracies, paired differences of the global-minimum indicator against CE / KD (two
    levels when there are several draws), paper's counts."""
    problem = res["problem"]
    diffs = paired_global(res, res["select"])
    seeds = res.get("seeds", [res.get("seed", 0)])
    draws = _draw_labels(res, len(next(iter(res["methods"].values()))["minima"]))
    rows = []
    for method, m in res["methods"].items():
        acc = np.array(m["test_accuracy"])
        labels = np.array(m["minima"])
        row = {"toy": name, "problem": problem, "method": _name(method), "runs": len(labels),
               "seeds": (f"0..{num_runs - 1}" if len(seeds) == 1 else
                         f"draws {seeds[0]}..{seeds[-1]} ({len(seeds)}) × {num_runs} runs"),
               "select": res["select"]}
        for k in MINIMA_NAMES[problem] + ("other",):
            row[k] = int(np.sum(labels == k))
        row["global"] = row[GLOBAL_MINIMUM[problem]]
        best = np.array(m["by_selection"]["best_validation"]["minima"])
        row["global_best_validation"] = int(np.sum(best == GLOBAL_MINIMUM[problem]))
        if len(seeds) > 1:
            glob = labels == GLOBAL_MINIMUM[problem]
            row["global_per_draw"] = [int(np.sum(glob[np.array(draws) == s])) for s in seeds]
        row["test_acc_mean"] = float(acc.mean())
        row["test_acc_std"] = float(acc.std())
        row["acc_by_minimum"] = {k: float(acc[labels == k].mean())
                                 for k in MINIMA_NAMES[problem] + ("other",)
                                 if np.any(labels == k)}
        choice = _kd_choices(m)
        if choice:
            row["kd_alpha_tau"] = choice
        for (a, b), d in diffs.items():
            if a == method:
                row[f"global − {_name(b)}"] = fmt_diff(d)
        if paper is not None and method in PAPER_ROWS and problem == name:
            row["paper"] = dict(paper.get(name, {}).get(PAPER_ROWS[method], {}))
        rows.append(row)
    return rows


def comparisons(details: dict, guided: Sequence[str], selections: Sequence[str]
                ) -> dict[str, stats.TwoLevel]:
    """The paper's comparisons for each DiSK-like method of `guided` and selection: its
    global-minimum indicator minus CE's and minus KD's (the validation-chosen grid KD when run,
    else the fixed one), on the paper's two toys only (our constructions are not its claim)."""
    diffs = {}
    for m in guided:
        for s in selections:
            for name, res in details.items():
                if res["problem"] != name or m not in res["methods"]:
                    continue
                kd = "kd_grid" if "kd_grid" in res["methods"] else "kd"
                pairs = paired_global(res, s)
                for b in ("ce", kd):
                    if (m, b) in pairs:
                        diffs[_label(name, m, b, s, selections)] = pairs[(m, b)]
    return diffs


def _label(toy: str, m: str, b: str, s: str, selections: Sequence[str]) -> str:
    return f"{toy}: {_name(m)} − {_name(b)}" + (f" [{s}]" if len(selections) > 1 else "")


_NOTE = (" (indicator 'landed in the global minimum', pts = percentage points of runs; n = "
         "(data, teacher) draws, each draw's runs averaged)")


def judge(details: dict, guided: str, selection: str,
          family: dict[str, stats.Judged] | None = None) -> dict:
    """The paper's claim for DiSK-like method `guided` (kind 'greater'; `comparisons`), judged
    on the interval over (data, teacher) draws: stats.claim_status, Holm over the claim's own
    comparisons; or, given `family` (the table's comparisons judged together, `judge_family`),
    each comparison's reading in that family (stats.verdict)."""
    diffs = comparisons(details, (guided,), (selection,))
    out = {"text": CLAIM_TEXT, "kind": "greater", "on": selection}
    if family is None:
        status, detail = stats.claim_status(diffs, "greater")
        return {"status": status, "detail": detail + _NOTE, **out}
    mine = [family[f"{k} [{selection}]"] for k in diffs]     # judge_family's labels
    return {"status": stats.verdict(mine), "detail": f"in the table's Holm family (m = "
            f"{len(family)}, α = {stats.ALPHA:g}); " + "; ".join(
                f"{j.name}: {stats.fmt_judged(j)}" for j in mine) + _NOTE, **out}


def judge_family(details: dict, guided: Sequence[str]) -> tuple[dict, dict]:
    """Every comparison of the table (`comparisons` of every DiSK-like method under both
    selections) judged as ONE Holm family (kind 'greater', α = 0.05) on the draw-level
    intervals: ({name: Judged}, a JSON summary with each comparison's two levels)."""
    diffs = comparisons(details, guided, SELECTIONS)
    if not diffs:
        return {}, {}
    judged = {j.name: j for j in stats.judge(diffs, "greater")}
    summary = {"status": stats.verdict(list(judged.values())),
               "holm": f"Holm, m = {len(judged)}, α = {stats.ALPHA:g}",
               "comparisons": {k: {"reading": j.reading, "p_holm": j.p_holm, "level": j.level,
                                   "holm_interval": [j.lo, j.hi], **diffs[k].as_dict()}
                               for k, j in judged.items()}}
    return judged, summary


def format_table(rows: list[dict], paper_acc: dict | None = None) -> str:
    """Plain-text Table 1, ours (paper's) per cell, then the paired differences."""
    lines = []
    for toy in dict.fromkeys(r["toy"] for r in rows):
        names = MINIMA_NAMES[next(r["problem"] for r in rows if r["toy"] == toy)]
        lines.append(f"{toy:24s} " + " ".join(f"{k:>9s}" for k in names)
                     + "     other  test acc")
        if paper_acc and toy in paper_acc:
            lines.append(f"{'paper acc %':24s} " + " ".join(
                f"{paper_acc.get(toy, {}).get(k, ''):>9}" for k in names))
        for r in (r for r in rows if r["toy"] == toy):
            cells = " ".join(f"{r[k]:>3d} ({r.get('paper', {}).get(k, '-'):>3})" for k in names)
            lines.append(f"{r['method'][:24]:24s} {cells} {r['other']:>9d}  "
                         f"{100 * r['test_acc_mean']:.1f}±{100 * r['test_acc_std']:.1f}"
                         + (f"  [{r['kd_alpha_tau']}]" if "kd_alpha_tau" in r else ""))
        for r in (r for r in rows if r["toy"] == toy):
            for k, v in r.items():
                if k.startswith("global − "):
                    lines.append(f"  {r['method']} {k}: {v}")
    return "\n".join(lines)


def draw_seeds(config) -> list[int]:
    """The (data, teacher) draw seeds: config.seed, config.seed + 1, ... (config.draws of
    them; 1 = the single draw of before)."""
    draws = int(config.get("draws", 1))
    if draws < 1:
        raise ValueError(f"draws must be >= 1, got {draws}")
    return [int(config.seed) + j for j in range(draws)]


def run_table1(config: ml_collections.ConfigDict, workdir: str) -> dict:
    """Runner of experiments/disk/table1*.py: writes results.json, returns {'rows', 'claim',
    ...}; 'claim' judges the paper's DiSK ('disk'), 'variant_claims' every DiSK-like method.

    Each toy runs `config.draws` (data, teacher) draws (`draw_seeds`), `config.num_runs`
    student initialisations per draw (keys from `config.init_seed`, -1 = each draw's seed).
    config.holm: 'claim' = each claim Holm-corrected over its own comparisons; 'table' = every
    comparison of the table (every DiSK-like method x both selections) in one Holm family
    ('family' in the result), each claim read off it."""
    from papers import paper_numbers

    paper = paper_numbers.DISK.get("table1", {})
    os.makedirs(workdir, exist_ok=True)
    variants = config.get("disk_variants", {})
    variants = variants.to_dict() if hasattr(variants, "to_dict") else dict(variants)
    holm = config.get("holm", "claim")
    if holm not in ("claim", "table"):
        raise ValueError(f"holm must be 'claim' or 'table', got {holm!r}")
    init = int(config.get("init_seed", -1))
    seeds = draw_seeds(config)
    rows, details = [], {}
    t0 = time.time()
    for name in config.toys:
        res = merge_draws([run_toy(name, config[name], seed=s, num_runs=config.num_runs,
                                   methods=tuple(config.methods), disk_variants=variants,
                                   init_seed=None if init < 0 else init) for s in seeds])
        details[name] = res
        rows += table_rows(name, res, config.num_runs, paper.get("counts"))
    select = config[config.toys[0]].get("select", "last")
    guided = [m for m in config.methods if m not in ("ce", "kd", "kd_grid")]
    family, summary = judge_family(details, guided) if holm == "table" else ({}, {})
    result = {"rows": rows, "scale_note": config.scale_note,
              "table": format_table(rows, paper.get("accuracy")),
              "wall_s": time.time() - t0, "draw_seeds": seeds,
              "teachers": {k: v["teacher"] for k, v in details.items()},
              "ideal_accuracy": {k: v["ideal_accuracy"] for k, v in details.items()},
              "variant_claims": {f"{m}/{s}": judge(details, m, s, family or None)
                                 for m in guided for s in SELECTIONS}}
    if summary:
        result["family"] = summary
    if "disk" in guided:
        result["claim"] = judge(details, "disk", select, family or None)
    with open(os.path.join(workdir, "results.json"), "w") as f:
        json.dump({**result, "config": config.to_dict(), "details": details}, f)
    return result


def main(argv) -> None:
    """CLI: python -m papers.disk.table1 --config=experiments/disk/table1.py --workdir=DIR."""
    del argv
    from absl import flags
    config = flags.FLAGS.config
    t0 = time.time()
    result = run_table1(config, flags.FLAGS.workdir)
    print(result["table"])
    for k, c in result["variant_claims"].items():
        print(f"claim [{k}]: {c['status']} — {c['detail']}")
    if "family" in result:
        print(f"table family ({result['family']['holm']}): {result['family']['status']}")
    print("teachers:", json.dumps(result["teachers"]))
    print("ideal test accuracy per minimum:", json.dumps(result["ideal_accuracy"]))
    print(f"wall {time.time() - t0:.0f}s")


if __name__ == "__main__":
    from absl import app, flags
    from ml_collections import config_flags

    from kdjax import platform
    platform.apply(persistent_cache=False)  # the settings launch.reproduce runs this table with

    config_flags.DEFINE_config_file("config", "experiments/disk/table1.py", "Table 1 config.")
    flags.DEFINE_string("workdir", "/tmp/disk_table1", "Where results.json goes.")
    app.run(main)
