"""Selection × retraining: RAD's active loop with every pair of a selection rule
(`active.strategies`) and a retraining loss (`active.retrains`, kdjax/methods/rad/retrain.py),
paired.

    config.method = "papers.rad.compose_active:run"

One trial per seed config.seed + k: the trial's split, teacher (trained on its |A| hard labels
with the trial's seed) and round-0 student (Alg. 1's CE-only student, the same for every arm)
are shared by all arms, so any two arms are compared by their per-trial differences
(kdjax.methods.rad.paired: per round and over all rounds 1..T, 95% t-intervals and n). An arm is
named '<strategy>/<retrain>' (e.g. 'rad/lrds'); its loop lives in
`<workdir>/trial_<k>/<strategy>_<retrain>`. The pairs printed are every strategy difference
within each loss and every loss against the first one (`active.retrains[0]`) within each
strategy.
"""
from __future__ import annotations

import itertools
import time

import jax
import ml_collections
import numpy as np

from kdjax import placement
from kdjax.methods.rad.compare import query_totals, strategy_fields
from kdjax.methods.rad.paired import accuracies, paired_rows
from kdjax.methods.rad.trials import Arm, run_trials
from kdjax.provenance import record_start
from kdjax.reproduce import stats
from kdjax.train import loop


def arms(config) -> list[str]:
    return [f"{s}/{r}" for r in config.active.retrains for s in config.active.strategies]


def pairs(config) -> list[tuple[str, str]]:
    """Strategy differences within each loss, loss differences within each strategy."""
    strategies, retrains = list(config.active.strategies), list(config.active.retrains)
    out = [(f"{a}/{r}", f"{b}/{r}") for r in retrains
           for a, b in itertools.combinations(strategies, 2)]
    out += [(f"{s}/{r}", f"{s}/{retrains[0]}") for s in strategies for r in retrains[1:]]
    return out


def run(config: ml_collections.ConfigDict, workdir: str) -> dict:
    t0 = time.time()
    started = record_start(workdir)  # provenance.json: this start (or resume)
    act = config.active
    if not act.retrains:
        raise ValueError("config.active.retrains is empty; name the losses to compare")
    grid = [Arm(f"{s}/{r}", f"{s}_{r}", {**strategy_fields(s), "retrain": r})
            for r, s in itertools.product(act.retrains, act.strategies)]
    per_trial, teacher_acc = run_trials(config, workdir, grid)
    names = arms(config)
    seeds = [config.seed + k for k in range(act.num_trials)]
    results = {"arms": names, "seeds": seeds, "rows": report_rows(per_trial, config, seeds),
               "mean_accuracy": {a: _mean_std(accuracies(per_trial, a, "all")) for a in names},
               "paired_rows": paired_rows(per_trial, pairs(config), act.rounds),
               "teacher_test_accuracy": teacher_acc,
               "teacher_pool_error": [runs[names[0]]["true_teacher_error_rate"]
                                      for runs in per_trial],
               **query_totals(per_trial), "trials": per_trial,
               "scale_note": config.scale_note, "wall_time": time.time() - t0,
               "config": config.to_dict(), "provenance": started,
               "placement": placement.describe(config)}
    loop.write_results(workdir, results)
    if jax.process_index() == 0:
        print(format_report(results, config), flush=True)
    return results


def report_rows(per_trial: list[dict], config, seeds: list[int]) -> list[dict]:
    """One row per (strategy, retrain, round) for the reproduce report: test accuracy as a
    {'mean', 'std', 'n'} cell (std with ddof = 1) and the teacher's accuracy on the points
    queried that round."""
    rows = []
    for r, s in itertools.product(config.active.retrains, config.active.strategies):
        for t in range(config.active.rounds + 1):
            recs = [runs[f"{s}/{r}"]["records"][t] for runs in per_trial]
            m, sd = _mean_std(np.asarray([rec["test_accuracy"] for rec in recs]))
            row = {"strategy": s, "retrain": r, "round": t, "queries": recs[0]["queries"],
                   "test_accuracy": {"mean": m, "std": sd, "n": len(seeds)}}
            if t:
                row["teacher_acc_selected"] = float(np.mean(
                    [rec["teacher_accuracy_on_selected"] for rec in recs]))
            rows.append({**row, "seeds": seeds})
    return rows


def _mean_std(values: np.ndarray) -> list[float]:
    return [float(values.mean()), float(values.std(ddof=1)) if values.size > 1 else 0.0]


def format_report(results: dict, config) -> str:
    """Mean accuracy over rounds 1..T per arm, then the paired differences ('all' rounds)."""
    n = len(results["seeds"])
    lines = [f"Selection × retraining on {config.data.name}: |A| = {config.active.num_labeled}, "
             f"b = {config.active.budget} × {config.active.rounds} rounds, {n} paired trials "
             f"(seeds {results['seeds'][0]}..{results['seeds'][-1]})",
             "teacher test accuracy: " + stats.fmt_mean_std(results["teacher_test_accuracy"])
             + "%; teacher error on the pool: "
             + stats.fmt_mean_std(results["teacher_pool_error"]) + "%",
             "student test accuracy (%), mean over rounds 1..T, mean ± sample std:",
             "| strategy | " + " | ".join(config.active.retrains) + " |",
             "|---|" + "---|" * len(config.active.retrains)]
    for s in config.active.strategies:
        cells = [results["mean_accuracy"][f"{s}/{r}"] for r in config.active.retrains]
        lines.append(f"| {s} | " + " | ".join(f"{100 * m:.2f} ± {100 * sd:.2f}"
                                               for m, sd in cells) + " |")
    lines.append("paired differences (all rounds; 95% t-interval):")
    lines += [f"  {row['comparison']}: {row['text']}" for row in results["paired_rows"]
              if row["round"] == "all"]
    if config.scale_note:
        lines.append(f"NOTE: {config.scale_note}")
    lines.append(f"total wall time {results['wall_time']:.1f} s")
    return "\n".join(lines)
