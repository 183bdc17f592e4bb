"""Several selection strategies side by side in the active distillation loop (RAD Sec. 4).

One teacher per trial (trained on that trial's labeled set |A|), then Alg. 1 with each strategy
of `config.active.strategies`; prints the per-round test accuracy table, mean ± std over
trials. This is the README demo at CPU scale.
"""
from __future__ import annotations

import copy
import os
import time

import jax
import ml_collections
import numpy as np

from kdjax import experiment
from kdjax.active import loop as active_loop
from kdjax.data import split_active
from kdjax.provenance import provenance
from kdjax.train import loop
from kdjax.train import mesh as mesh_lib


def run(config: ml_collections.ConfigDict, workdir: str) -> dict:
    t0 = time.time()
    mesh = mesh_lib.make_mesh(config.mesh.axes)
    splits, info = experiment.load_splits(config.data)
    per_trial, teacher_acc = [], []
    for trial in range(config.active.num_trials):
        seed = config.seed + trial
        trial_dir = os.path.join(workdir, f"trial_{trial}")
        labeled, _ = split_active(splits["train"], config.active.num_labeled, seed=seed)
        tcfg = copy.deepcopy(config)
        with tcfg.unlocked():
            tcfg.seed = seed
        _, summary = experiment.get_teacher(tcfg, trial_dir, {**splits, "train": labeled}, info,
                                            mesh)
        teacher_acc.append(summary["test_accuracy"])
        runs = {}
        for strategy in config.active.strategies:
            cfg = copy.deepcopy(tcfg)
            with cfg.unlocked():
                cfg.method = "rad"
                cfg.active.strategy = strategy
                cfg.teacher.checkpoint = os.path.join(trial_dir, "teacher")
            runs[strategy] = active_loop.run(cfg, os.path.join(trial_dir, strategy))
        per_trial.append(runs)
    table = summarize(per_trial, list(config.active.strategies), config.active.rounds)
    results = {"table": table, "trials": per_trial, "teacher_test_accuracy": teacher_acc, "wall_time": time.time() - t0,
               "config": config.to_dict(), "provenance": provenance()}
    loop.write_results(workdir, results)
    if jax.process_index() == 0:
        print(format_table(table, config, results["wall_time"], teacher_acc), flush=True)
    return results


def summarize(per_trial: list[dict], strategies: list[str], rounds: int) -> list[dict]:
    """Rows per round: queries and mean ± std test accuracy of each strategy over trials."""
    rows = []
    for r in range(rounds + 1):
        row = {"round": r}
        for s in strategies:
            recs = [trial[s]["records"][r] for trial in per_trial]
            acc = np.array([rec["test_accuracy"] for rec in recs])
            row[s] = (float(acc.mean()), float(acc.std()))
            row["queries"] = recs[0]["queries"]
            if r:
                row[f"{s}/teacher_acc_selected"] = float(np.mean(
                    [rec["teacher_accuracy_on_selected"] for rec in recs]))
        rows.append(row)
    return rows


def _pm(mean: float, std: float, trials: int) -> str:
    return f"{100 * mean:.2f} ± {100 * std:.2f}" if trials > 1 else f"{100 * mean:.2f}"


def format_table(table: list[dict], config, wall_time: float,
                 teacher_acc: list[float]) -> str:
    strategies = list(config.active.strategies)
    trials = config.active.num_trials
    lines = [f"Active distillation on {config.data.name}: teacher {config.teacher.name}, student "
             f"{config.model.name}, |A| = {config.active.num_labeled}, b = "
             f"{config.active.budget} per round, {trials} trial(s) (seeds {config.seed}.."
             f"{config.seed + trials - 1}); student test accuracy (%)"
             + (", mean ± std" if trials > 1 else ""),
             f"teacher (trained on the |A| hard labels): "
             f"{_pm(np.mean(teacher_acc), np.std(teacher_acc), trials)}%",
             "round 0: the student on the hard labels only (CE); round t: retrained from "
             "scratch with the KL loss on hard labels + the teacher's soft labels queried so far",
             "| round | queries | " + " | ".join(strategies) + " |",
             "|---|---|" + "---|" * len(strategies)]
    for row in table:
        cells = [_pm(*row[s], trials) for s in strategies]
        lines.append(f"| {row['round']} | {row['queries']} | " + " | ".join(cells) + " |")
    last = table[-1]
    if len(table) > 1:
        lines.append("teacher accuracy on the points each strategy queried (last round): " +
                     ", ".join(f"{s} {100 * last[f'{s}/teacher_acc_selected']:.1f}%"
                               for s in strategies))
    if config.get("scale_note"):
        lines.append(f"NOTE: {config.scale_note}")
    lines.append(f"total wall time {wall_time:.1f} s")
    return "\n".join(lines)
