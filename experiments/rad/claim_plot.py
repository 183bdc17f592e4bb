"""Plot and tabulate the `rad_claim_cpu` entry (experiments/rad/claim_cpu.py) from its records.

    python -m experiments.rad.claim_plot --workdir=runs/repro \
        --out=experiments/rad/results/claim_cpu

Writes paired.png (left: the all-rounds paired differences a − b with their 95% t-intervals
against the teachers' mean test accuracy, one point per |A|; right: the teacher's accuracy on
the points each arm queried) and tables.md (each |A|'s per-round table and paired differences,
as the compare runner prints them). Reads only finished harness records; numbers are theirs.
"""
from __future__ import annotations

import glob
import json
import os

import ml_collections
import numpy as np
from absl import app, flags

from kdjax.methods.rad import compare, paired

_WORKDIR = flags.DEFINE_string("workdir", "runs/repro", "The reproduce harness's workdir.")
_OUT = flags.DEFINE_string("out", "experiments/rad/results/claim_cpu", "Output folder.")
TABLE = "rad_claim_cpu"
PLOTTED = (("rad", "margin"), ("rad", "uniform"), ("rad@m=oracle", "rad"),
           ("oracle_margin", "margin"))


def load(workdir: str) -> list[dict]:
    """Finished records of the table's cpu points, sorted by |A|."""
    recs = []
    for path in glob.glob(os.path.join(workdir, TABLE, "cpu", "*", "results.json")):
        with open(path) as f:
            rec = json.load(f)
        if rec.get("status") == "finished":
            recs.append(rec)
    return sorted(recs, key=lambda r: r["params"]["active.num_labeled"])


def tables_md(recs: list[dict]) -> str:
    out = ["# rad_claim_cpu: per-|A| tables (as kdjax.methods.rad.compare prints them)", ""]
    for r in recs:
        res, cfg = r["result"], ml_collections.ConfigDict(r["config"])
        out += [f"## |A| = {r['params']['active.num_labeled']}", "", "```",
                compare.format_table(res["table"], cfg, res["wall_time"],
                                     res["teacher_test_accuracy"]),
                paired.format_paired(res), "```", ""]
    return "\n".join(out)


def plot(recs: list[dict], path: str) -> str:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    teacher = np.array([100 * np.mean(r["result"]["teacher_test_accuracy"]) for r in recs])
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(10, 3.8))
    for k, (a, b) in enumerate(PLOTTED):
        means, los, his = [], [], []
        for r in recs:
            row = [p for p in r["result"]["paired_rows"]
                   if p["comparison"] == f"{a} − {b}" and p["round"] == "all"][0]["diff"]
            means.append(100 * row["mean"])
            los.append(100 * (row["mean"] - row["lo"]))
            his.append(100 * (row["hi"] - row["mean"]))
        ax.errorbar(teacher + 0.15 * (k - 1.5), means, yerr=[los, his], marker="o", ms=4,
                    capsize=3, label=f"{a} − {b}")
    ax.axhline(0, color="k", lw=0.8)
    n = recs[0]["result"]["paired_rows"][0]["diff"]["n"]
    ax.set_xlabel("teacher test accuracy (%), mean over trials")
    ax.set_ylabel("paired difference, all rounds (pts)")
    ax.set_title(f"student test accuracy a − b, 95% t-interval (n={n} paired trials)",
                 fontsize=8)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    strategies = recs[0]["config"]["active"]["strategies"]
    for s in strategies:
        last = [r["result"]["table"][-1][f"{s}/teacher_acc_selected"] * 100 for r in recs]
        bx.plot(teacher, last, marker="o", ms=4, label=s)
    bx.set_xlabel("teacher test accuracy (%), mean over trials")
    bx.set_ylabel("teacher accuracy on queried points (%)")
    bx.set_title("last round's queries (oracle_margin reads the teacher's correctness)",
                 fontsize=8)
    bx.legend(fontsize=7)
    bx.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def main(argv):
    del argv
    recs = load(_WORKDIR.value)
    if not recs:
        raise app.UsageError(f"no finished {TABLE} records under {_WORKDIR.value}")
    os.makedirs(_OUT.value, exist_ok=True)
    print(plot(recs, os.path.join(_OUT.value, "paired.png")))
    with open(os.path.join(_OUT.value, "tables.md"), "w") as f:
        f.write(tables_md(recs))
    print(os.path.join(_OUT.value, "tables.md"))


if __name__ == "__main__":
    app.run(main)
