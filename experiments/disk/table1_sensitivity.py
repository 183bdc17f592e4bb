"""Sensitivity of DiSK Table 1 to the choices the paper leaves open (issue 9 closing note).

Each variant changes one group of fields of experiments/disk/table1.py; only the methods a
variant can move are re-run (DiSK-only knobs re-run DiSK). Counts are classified on the test
split as in the table; validation accuracy is printed beside them (the split any selection
should use).

    PYTHONPATH=. python experiments/disk/table1_sensitivity.py --workdir=/tmp/disk_sens \
        [--variants=paper_budget,tau_s_fit] [--num_runs=100]
"""
import json
import os
import sys
import time

import numpy as np
from absl import app, flags

from experiments.disk import table1
from papers.disk import toy_problems as P
from papers.disk import table1 as T

flags.DEFINE_string("workdir", "/tmp/disk_sens", "Output folder.")
flags.DEFINE_string("variants", "", "Comma-separated subset of VARIANTS (default: all).")
flags.DEFINE_integer("num_runs", 100, "Runs per method and variant.")
flags.DEFINE_string("toys", "", "Comma-separated subset of toys (default: the variant's).")
FLAGS = flags.FLAGS


def _paper_budget(c, toy):
    """Eq. 3 as printed: label CE, mean over N, no clamp, constant δ, no extra g penalty.
    δ = error of the global minimum (A.1/A.5 rule): 1/6 for 1D, 0 for 2D."""
    d = c.disk
    d.ce_target, d.normalize, d.max_ce, d.penalty = "label", "mean", None, 0.0
    d.delta_min = d.delta_max = 1 / 6 if toy == "intervals_1d" else 0.0


def _tau_s_fit(c, toy):
    """Sec. 3.2: τ_S refit on the training set at every round, clipped to [1, τ_T]."""
    c.disk.tau_s_mode = "fit_round"


def _one_student_epoch(c, toy):
    """One student epoch per round (200 in all, as CE/KD) instead of the official 3."""
    c.disk.s_epochs = 1


def _eq4_full(c, toy):
    """Eq. 4 as printed: full teacher target, top-K mask without the label."""
    c.disk.target, c.disk.include_label = "full", False


def _sharpness5(c, toy):
    """1D sigmoid scale k = 5 (teacher no longer fits f*: ~95% validation)."""
    c.sharpness = 5.0


def _big_guide(c, toy):
    """A.4's CIFAR guide (64, 128) instead of a student-sized guide."""
    c.disk.guide_hidden = (64, 128)


# name -> (toys, methods, function)
VARIANTS = {
    "paper_budget": (("intervals_1d", "gaussians_2d"), ("disk",), _paper_budget),
    "tau_s_fit": (("intervals_1d", "gaussians_2d"), ("disk",), _tau_s_fit),
    "one_student_epoch": (("intervals_1d", "gaussians_2d"), ("disk",), _one_student_epoch),
    "eq4_full_target": (("gaussians_2d",), ("disk",), _eq4_full),
    "big_guide": (("gaussians_2d",), ("disk",), _big_guide),
    "sharpness5": (("intervals_1d",), ("ce", "kd", "disk"), _sharpness5),
}


def main(argv):
    del argv
    names = [v for v in FLAGS.variants.split(",") if v] or list(VARIANTS)
    os.makedirs(FLAGS.workdir, exist_ok=True)
    summary = {}
    for name in names:
        toys, methods, change = VARIANTS[name]
        only = [t for t in FLAGS.toys.split(",") if t]
        for toy in (t for t in toys if not only or t in only):
            config = table1.get_config("cpu")
            change(config[toy], toy)
            t0 = time.time()
            res = T.run_toy(toy, config[toy], seed=config.seed, num_runs=FLAGS.num_runs,
                            methods=methods)
            rows = T.table_rows(toy, res, FLAGS.num_runs, None)
            for r in rows:
                r["validation_acc_mean"] = float(np.mean(
                    res["methods"][{"Cross-Entropy": "ce", "KD": "kd", "DiSK": "disk"}[
                        r["method"]]]["validation_accuracy"]))
            summary[f"{name}/{toy}"] = {"rows": rows, "teacher": res["teacher"],
                                        "wall_s": time.time() - t0}
            for r in rows:
                counts = " ".join(f"{k}={r[k]}" for k in P.MINIMA_NAMES[toy] + ("other",))
                print(f"{name:18s} {toy:13s} {r['method']:13s} {counts}  "
                      f"val {100 * r['validation_acc_mean']:.1f} "
                      f"test {100 * r['test_acc_mean']:.1f}  ({time.time() - t0:.0f}s)",
                      flush=True)
            with open(os.path.join(FLAGS.workdir, f"sensitivity_{FLAGS.variants or 'all'}.json"),
                      "w") as f:
                json.dump(summary, f)


if __name__ == "__main__":
    app.run(main)
