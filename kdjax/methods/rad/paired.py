"""Paired comparisons of active-distillation strategies over a compare run's trials.

Every strategy of a trial shares that trial's split, teacher, round-0 student and seed, so two
strategies are compared by their per-trial accuracy differences (kdjax.reproduce.stats.paired):
per round t ≥ 1, and over all rounds (each trial's mean accuracy over rounds 1..T, one number
per trial). `config.active.claim` states what the paper claims about such differences:

    claim.text   the claim in words (e.g. "RAD outperforms MARGIN and UNIFORM (Fig. 3)")
    claim.kind   'greater' | 'not_worse' | 'equal' (the rule of stats.claim_status)
    claim.pairs  ((a, b), ...): the claimed differences a − b
    claim.on     'all' (the all-rounds mean; default) or 'last' (the last round)
    claim.margin δ of kinds 'not_worse' / 'equal' (accuracy fraction; default 0)
"""
from __future__ import annotations

import numpy as np

from kdjax.reproduce import stats


def accuracies(per_trial: list[dict], strategy: str, on) -> np.ndarray:
    """Per-trial test accuracy of `strategy` at round `on` (int) or averaged over rounds 1..T
    ('all')."""
    out = []
    for runs in per_trial:
        recs = runs[strategy]["records"]
        out.append(np.mean([r["test_accuracy"] for r in recs[1:]]) if on == "all"
                   else recs[int(on)]["test_accuracy"])
    return np.asarray(out, np.float64)


def comparisons(config) -> list[tuple[str, str]]:
    """The pairs a − b to print: `active.pairs` if set, else the first strategy against each
    other one; the claim's pairs are always included."""
    strategies = list(config.active.strategies)
    pairs = [tuple(p) for p in (config.active.get("pairs") or ())]
    if not pairs:
        pairs = [(strategies[0], s) for s in strategies[1:]]
    claim = config.active.get("claim")
    for p in (claim.get("pairs") or () if claim else ()):
        if tuple(p) not in pairs:
            pairs.append(tuple(p))
    for a, b in pairs:
        if a not in strategies or b not in strategies:
            raise ValueError(f"paired comparison {a} − {b}: both must be in "
                             f"config.active.strategies {strategies}")
    return pairs


def paired_rows(per_trial: list[dict], pairs, rounds: int) -> list[dict]:
    """One row per (comparison, round 1..T and 'all'): the paired difference as a dict
    (mean, std, lo, hi, n, p) and its one-line text."""
    rows = []
    if len(per_trial) == 0 or rounds < 1:
        return rows
    for a, b in pairs:
        for on in list(range(1, rounds + 1)) + ["all"]:
            d = stats.paired(accuracies(per_trial, a, on), accuracies(per_trial, b, on))
            rows.append({"comparison": f"{a} − {b}", "round": on, "diff": d.as_dict(),
                         "text": stats.fmt_paired(d)})
    return rows


def judge_claim(config, per_trial: list[dict]) -> dict | None:
    """{'text', 'kind', 'on', 'status', 'detail'} for `config.active.claim`, or None without
    one."""
    claim = config.active.get("claim")
    if not claim or not claim.get("pairs") or not per_trial:
        return None
    on = claim.get("on", "all")
    rounds = len(next(iter(per_trial[0].values()))["records"]) - 1
    on_key = "all" if on == "all" else rounds
    diffs = {f"{a} − {b}": stats.paired(accuracies(per_trial, a, on_key),
                                        accuracies(per_trial, b, on_key))
             for a, b in claim.pairs}
    margin = float(claim.get("margin", 0.0))
    status, detail = stats.claim_status(diffs, claim.kind, margin)
    return {"text": claim.text, "kind": claim.kind, "on": on, "status": status,
            "detail": detail, "margin": margin,
            "diffs": {k: d.as_dict() for k, d in diffs.items()}}


def m_summary(per_trial: list[dict]) -> dict:
    """For each RAD strategy: m̂ against the teacher's true m on the pool, w and the queries
    spent on estimating m, per trial (Sec. 3.3)."""
    out: dict[str, list[dict]] = {}
    for runs in per_trial:
        for s, res in runs.items():
            rate = res.get("estimated_teacher_error_rate")
            if rate is None or len(res["records"]) < 2:
                continue
            info = res["records"][1].get("selection_info", {})
            n = res.get("pool_size")
            true = res.get("true_teacher_error_rate")
            out.setdefault(s, []).append({
                "m_estimate": res.get("m_estimate"), "estimated_rate": rate,
                "true_rate": true, "pool_size": n,
                "m_hat": info.get("num_mistakes"),
                "m_true": None if true is None or n is None else true * n,
                "w": info.get("w"), "error_rate_queries": res.get("error_rate_queries", 0)})
    return out


def _round_label(on) -> str:
    return "all rounds" if on == "all" else f"round {on}"


def format_paired(results: dict) -> str:
    """The paired-difference table, the claim's verdict and m̂ vs m, as printed text."""
    rows = results.get("paired_rows") or []
    lines = []
    if rows:
        ons = list(dict.fromkeys(r["round"] for r in rows))
        lines += ["paired differences in student test accuracy, a − b over the same trials "
                  "(mean [95% t-interval], n); 'all rounds' = each trial's mean over rounds "
                  "1..T:",
                  "| a − b | " + " | ".join(_round_label(o) for o in ons) + " |",
                  "|---|" + "---|" * len(ons)]
        for comp in dict.fromkeys(r["comparison"] for r in rows):
            cells = {r["round"]: r["text"] for r in rows if r["comparison"] == comp}
            lines.append(f"| {comp} | " + " | ".join(cells[o] for o in ons) + " |")
    for s, trials in (results.get("m_summary") or {}).items():
        def avg(key):
            vals = [t[key] for t in trials if t.get(key) is not None]
            return float(np.mean(vals)) if vals else float("nan")
        lines.append(
            f"{s}: m̂ = {avg('m_hat'):.0f} (teacher error rate estimated "
            f"{100 * avg('estimated_rate'):.1f}%, m_estimate={trials[0]['m_estimate']}, "
            f"{avg('error_rate_queries'):.0f} queries spent on it) vs true m = "
            f"{avg('m_true'):.0f} ({100 * avg('true_rate'):.1f}% of the pool of "
            f"{avg('pool_size'):.0f}); w = {avg('w'):.3f}; mean over {len(trials)} trial(s)")
    claim = results.get("claim")
    if claim:
        lines.append(f"paper's claim: {claim['text']} — judged on "
                     f"{_round_label(claim['on'])} ({claim['kind']}): {claim['status']}; "
                     f"{claim['detail']}")
    return "\n".join(lines)
