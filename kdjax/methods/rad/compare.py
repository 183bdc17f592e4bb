"""Several selection strategies side by side in the active distillation loop (RAD Sec. 4).

One teacher per trial (trained on that trial's labeled set |A|), then Alg. 1 with each strategy
of `config.active.strategies`; prints the per-round test accuracy table (mean ± sample std over
trials) and, because the strategies of a trial share its split, teacher, round-0 student and
seed, the paired differences between strategies with their 95% t-intervals and n
(kdjax.reproduce.stats); `config.active.claim` (optional) names the differences the paper claims and
how to judge them. This is the README demo at CPU scale.

A strategy name may carry a variant, 'rad@w=0.3' (RAD with a fixed w, App. D.5) or
'rad@m=oracle' (RAD given the teacher's true number of mistakes on the pool): the base name
picks the strategy of kdjax.methods.rad.strategies.STRATEGIES and the suffix sets config.active.w or
config.active.m_estimate. Writes
accuracy.png (test accuracy vs queries, shaded ± 1 std, as the panels of Fig. 3) and gain.png
(realized gain per round, Fig. 4 right / Fig. 5 third column) into the workdir.
"""
from __future__ import annotations

import copy
import os
import time

import jax
import ml_collections
import numpy as np

from kdjax import placement, storage
from kdjax.methods.rad.paired import (comparisons, format_paired, judge_claim, m_summary,
                                      paired_rows)
from kdjax.methods.rad.strategies import STRATEGIES
from kdjax.methods.rad.trials import Arm, run_trials
from kdjax.provenance import record_start
from kdjax.train import loop


_M_ESTIMATES = ("validation", "uniform", "fixed", "oracle")


def parse_strategy(name: str) -> tuple[str, dict]:
    """'rad@w=0.3' -> ('rad', {'w': 0.3}); 'rad@m=oracle' -> ('rad', {'m_estimate': 'oracle'});
    'margin' -> ('margin', {})."""
    base, _, variant = name.partition("@")
    if base not in STRATEGIES:
        raise ValueError(f"strategy {name!r}: unknown base {base!r}; choose from "
                         f"{sorted(STRATEGIES)}")
    if not variant:
        return base, {}
    key, eq, value = variant.partition("=")
    if key not in ("w", "m") or not eq:
        raise ValueError(f"strategy {name!r}: the variants are '@w=<value>' and '@m=<how>'")
    if not base.startswith("rad"):
        raise ValueError(f"strategy {name!r}: variants apply to RAD strategies only")
    if key == "m":
        if value not in _M_ESTIMATES:
            raise ValueError(f"strategy {name!r}: m={value!r}; choose from {_M_ESTIMATES}")
        return base, {"m_estimate": value}
    try:
        w = float(value)
    except ValueError:
        raise ValueError(f"strategy {name!r}: w={value!r} is not a number") from None
    if not 0.0 <= w <= 1.0:
        raise ValueError(f"strategy {name!r}: w must be in [0, 1]")
    return base, {"w": w}


def strategy_fields(name: str) -> dict:
    """The config.active fields a strategy name sets: 'rad@w=0.3' -> {strategy: 'rad', w: 0.3}."""
    base, overrides = parse_strategy(name)
    return {"strategy": base, **overrides}


def run(config: ml_collections.ConfigDict, workdir: str) -> dict:
    t0 = time.time()
    started = record_start(workdir)  # provenance.json: this start (or resume)
    arms = [Arm(s, s, strategy_fields(s)) for s in config.active.strategies]
    per_trial, teacher_acc = run_trials(config, workdir, arms)
    table = summarize(per_trial, list(config.active.strategies), config.active.rounds)
    seeds = [config.seed + t for t in range(config.active.num_trials)]
    paired = paired_rows(per_trial, comparisons(config), config.active.rounds)
    results = {"rows": runner_rows(table, list(config.active.strategies), seeds),
               "paired_rows": paired, "claim": judge_claim(config, per_trial),
               "m_summary": m_summary(per_trial),
               "scale_note": config.get("scale_note") or "full setting",
               **query_totals(per_trial, bool(config.active.get("label_oracle"))),
               "table": table, "trials": per_trial, "teacher_test_accuracy": teacher_acc, "wall_time": time.time() - t0,
               "config": config.to_dict(), "provenance": started,
               "placement": placement.describe(config)}
    loop.write_results(workdir, results)
    if jax.process_index() == 0:
        print(format_table(table, config, results["wall_time"], teacher_acc), flush=True)
        print(format_paired(results), flush=True)
        if config.active.get("plot", True):
            title = (f"{config.data.name}: {config.teacher.name} -> {config.model.name}, |A|="
                     f"{config.active.num_labeled}, b={config.active.budget}, "
                     f"e={config.train.epochs}")
            plot(table, list(config.active.strategies), workdir, title=title)
    return results


def merge(workdirs: list[str], config: ml_collections.ConfigDict,
          out_dir: str | None = None) -> dict:
    """Merge compare runs of one config launched as separate processes, one trial each
    (`--config.seed=s --config.active.num_trials=1`), into the table `run` would print for
    seeds s..: the trials are concatenated in the order given. Writes the plots to out_dir."""
    per_trial, teacher_acc, seeds = [], [], []
    results = []
    for d in workdirs:
        res = storage.read_json(os.path.join(d, "results.json"))
        if res is None:
            raise FileNotFoundError(f"{d}/results.json: no finished compare run to merge")
        results.append(res)
        per_trial += res["trials"]
        teacher_acc += res["teacher_test_accuracy"]
        seeds += [res["config"]["seed"] + t for t in range(len(res["trials"]))]
    strategies = list(config.active.strategies)
    table = summarize(per_trial, strategies, config.active.rounds)
    cfg = copy.deepcopy(config)
    with cfg.unlocked():
        cfg.active.num_trials = len(per_trial)
        cfg.seed = seeds[0]
    walls = [res["wall_time"] for res in results]
    text = format_table(table, cfg, max(walls), teacher_acc)
    merged = {"paired_rows": paired_rows(per_trial, comparisons(config), config.active.rounds),
              "claim": judge_claim(config, per_trial), "m_summary": m_summary(per_trial)}
    text += "\n" + format_paired(merged)
    text += ("\n(merged from " + str(len(workdirs)) + " runs; per-run wall times " +
             ", ".join(f"{w:.0f}" for w in walls) + " s)")
    if seeds != list(range(seeds[0], seeds[0] + len(seeds))):
        text += f"\nseeds: {seeds}"
    if out_dir:
        plot(table, strategies, out_dir, title=f"{config.data.name}, {len(seeds)} trials")
    return {"table": table, "text": text, "rows": runner_rows(table, strategies, seeds),
            **merged,
            **query_totals(per_trial, bool(config.active.get("label_oracle"))),
            "teacher_test_accuracy": teacher_acc, "seeds": seeds}


def queries_by_strategy(per_trial: list[dict]) -> dict[str, int]:
    """Soft labels each strategy bought from the teacher, summed over trials, as the active
    loop recorded them (its `teacher_queries`: every Alg. 1 query, including RAD's b_uniform
    error-rate queries of Sec. 3.3). The teacher's own training and the loop's bookkeeping
    predictions (realized gain, pool error) are not queries."""
    totals: dict[str, int] = {}
    for runs in per_trial:
        for strategy, res in runs.items():
            n = res.get("teacher_queries")
            if n is None:  # results written before the loop reported it: its last record
                n = res["records"][-1]["queries"]
            totals[strategy] = totals.get(strategy, 0) + int(n)
    return totals


def query_totals(per_trial: list[dict], label_oracle: bool = False) -> dict:
    """The run's query bill for the reproduce harness, which sums `teacher_queries`.

    With the D.4 label oracle (`active.label_oracle`) a query returns the true label and the
    teacher is never asked, so the same counts are reported as `label_queries` and
    `teacher_queries` is 0."""
    by_strategy = queries_by_strategy(per_trial)
    if label_oracle:
        return {"teacher_queries": 0, "label_queries": sum(by_strategy.values()),
                "label_queries_by_strategy": by_strategy}
    return {"teacher_queries": sum(by_strategy.values()),
            "teacher_queries_by_strategy": by_strategy}


def runner_rows(table: list[dict], strategies: list[str], seeds: list[int]) -> list[dict]:
    """One row per (round, strategy) for the reproduce report: {'mean', 'std', 'n'} cells.

    The paper's Fig. 3-9 print no values (curves only), so no paper column is attached."""
    rows = []
    for row in table:
        for s in strategies:
            mean, std = row[s]
            out = {"round": row["round"], "queries": row["queries"], "strategy": s,
                   "test_accuracy": {"mean": mean, "std": std, "n": len(seeds)}}
            if row["round"]:
                out["teacher_acc_selected"] = row[f"{s}/teacher_acc_selected"]
                g = row.get(f"{s}/realized_gain")
                if g is not None:
                    out["realized_gain"] = {"mean": g[0], "std": g[1], "n": len(seeds)}
            out["seeds"] = seeds
            rows.append(out)
    return rows


def plot(table: list[dict], strategies: list[str], workdir: str, title: str = "") -> list[str]:
    """accuracy.png (accuracy vs queries, ± 1 std shaded) and gain.png (realized gain)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    q = np.array([row["queries"] for row in table])
    paths = []
    for name, key, rows, ylabel in (
            ("accuracy.png", "", table, "student test accuracy (%)"),
            ("gain.png", "/realized_gain", table[1:], "realized gain (Sec. 3 objective)")):
        if not rows:
            continue
        fig, ax = plt.subplots(figsize=(5, 3.6))
        xs = q if not key else q[1:]
        for s in strategies:
            vals = [row.get(s + key) if key else row[s] for row in rows]
            if any(v is None for v in vals):
                continue
            m = np.array([v[0] for v in vals]) * (100 if not key else 1)
            sd = np.array([v[1] for v in vals]) * (100 if not key else 1)
            ax.plot(xs, m, marker="o", ms=3, label=s)
            ax.fill_between(xs, m - sd, m + sd, alpha=0.2)
        ax.set_xlabel("soft labels queried")
        ax.set_ylabel(ylabel)
        ax.set_title(title, fontsize=8)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        fig.tight_layout()
        path = os.path.join(workdir, name)
        storage.save_figure(fig, path)
        plt.close(fig)
        paths.append(path)
    return paths


def _mean_sd(values: np.ndarray) -> tuple[float, float]:
    """Mean and sample std (ddof = 1; 0 for one trial)."""
    return float(values.mean()), float(values.std(ddof=1)) if values.size > 1 else 0.0


def summarize(per_trial: list[dict], strategies: list[str], rounds: int) -> list[dict]:
    """Rows per round: queries and mean ± std (ddof = 1) test accuracy of each strategy."""
    rows = []
    for r in range(rounds + 1):
        row = {"round": r}
        for s in strategies:
            recs = [trial[s]["records"][r] for trial in per_trial]
            acc = np.array([rec["test_accuracy"] for rec in recs])
            row[s] = _mean_sd(acc)
            row["queries"] = recs[0]["queries"]
            if r:
                row[f"{s}/teacher_acc_selected"] = float(np.mean(
                    [rec["teacher_accuracy_on_selected"] for rec in recs]))
                gains = np.array([rec.get("realized_gain", np.nan) for rec in recs], float)
                row[f"{s}/realized_gain"] = _mean_sd(gains)
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
             + (", mean ± sample std (ddof=1)" if trials > 1 else ""),
             f"teacher (trained on the |A| hard labels): "
             f"{_pm(*_mean_sd(np.asarray(teacher_acc, float)), trials)}%",
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
