"""Print the paired Table 1 comparisons of one or more DiSK Table 1 results.json files.

    PYTHONPATH=. python experiments/disk/table1_paired.py \
        runs/s4/disk_table1_variants/cpu/all/run/results.json [more results.json ...]

For every toy: runs per minimum of each method under both selections ('last' epoch and
'best_validation'), the validation-chosen KD (α, τ), and every DiSK-like method's paired
difference of the indicator "landed in the global minimum" against CE, fixed KD and grid KD
(mean [95% t-interval] in percentage points of runs; with several (data, teacher) draws the
interval over draws, n = draws, and the runs pooled beside it; one draw: n = its shared
initialisations). Several
files (e.g. disk_table1_variants and disk_table1_cap) are merged per toy: they share data,
teachers and keys, which this script checks on the CE runs before pairing across files.
"""
import json
import sys

import numpy as np

from papers.disk import table1 as R
from papers.disk.toy_problems import GLOBAL_MINIMUM, MINIMA_NAMES


def merge(paths):
    toys: dict = {}
    for path in paths:
        with open(path) as f:
            details = json.load(f)["details"]
        for name, res in details.items():
            if name not in toys:
                toys[name] = res
                continue
            ce_old = toys[name]["methods"]["ce"]["by_selection"]
            ce_new = res["methods"]["ce"]["by_selection"]
            if ce_old != ce_new:
                raise ValueError(f"{path}: {name} CE runs differ from the first file's; the "
                                 "files do not share keys/data, so they cannot be paired")
            toys[name]["methods"].update(res["methods"])
    return toys


def report(toys) -> str:
    lines = []
    for name, res in toys.items():
        problem = res["problem"]
        names = MINIMA_NAMES[problem] + ("other",)
        glob = GLOBAL_MINIMUM[problem]
        lines.append(f"== {name} (problem {problem}, global minimum {glob})")
        for sel in R.SELECTIONS:
            lines.append(f"  selection {sel}: " + " ".join(f"{k:>5s}" for k in names)
                         + "  test acc")
            for m, rec in res["methods"].items():
                minima = np.array(rec["by_selection"][sel]["minima"])
                acc = np.array(rec["by_selection"][sel]["test_accuracy"])
                extra = ""
                if "selected" in rec:
                    extra = f"  [α={rec['selected']['alpha']:g}, τ={rec['selected']['tau']:g}]"
                lines.append(f"    {m:16s}" + " ".join(f"{int(np.sum(minima == k)):>5d}"
                                                      for k in names)
                             + f"  {100 * acc.mean():.1f}{extra}")
            for (a, b), d in R.paired_global(res, sel).items():
                lines.append(f"    {a} − {b}: {R.fmt_diff(d)}")
        for m, rec in res["methods"].items():
            if "guide_init_mean" in rec:
                lines.append(f"  {m}: g after the init epochs mean {rec['guide_init_mean']:.4f}"
                             f", max {rec['guide_init_max']:.4f}; last-round mean g "
                             f"{rec['log_mean']['guide_mean'][-1]:.4f}")
    return "\n".join(lines)


if __name__ == "__main__":
    print(report(merge(sys.argv[1:])))
