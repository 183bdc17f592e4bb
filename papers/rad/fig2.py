"""Fig. 2 of the RAD paper: Corollary 1's distribution for several teacher accuracies, exactly.

Gains are drawn uniformly from [0, 1] (as the figure's caption says), the teacher mislabels
m = (1 − accuracy)·n of them, w = 1 − m/n, and p comes from `rad_distribution` (no sampling: the
curve is the exact optimum). The figure carries no numbers, so each row reports the shape
statistics the text describes, with a check of each stated property:
  * accurate teacher → mass on the highest gains (support shrinks as accuracy grows),
  * inaccurate teacher → spread out, least probability on the highest-gain points (p ∝ 1/g),
  * a band of low-gain points is ignored (support = {g ≥ OPT}).
"""
from __future__ import annotations

import os

import numpy as np

from kdjax import storage
from kdjax.methods import rad


def fig2_distributions(accuracies, n: int = 10_000, seed: int = 0):
    """Sorted gains and p for each teacher accuracy: {'gains': (n,), acc: dict(p, k_star, value)}."""
    g = np.sort(np.random.default_rng(seed).random(n))[::-1]
    out = {"gains": g}
    for acc in accuracies:
        if not 0.0 <= acc <= 1.0:
            raise ValueError(f"teacher accuracy must be in [0, 1], got {acc}")
        m = (1.0 - acc) * n
        sol = rad.rad_distribution(g, m)
        out[acc] = {"p": np.asarray(sol.p), "k_star": int(sol.k_star), "value": float(sol.value),
                    "num_mistakes": m}
    return out


def _row(acc, g, d, n):
    p = d["p"]
    k = d["k_star"]
    support = p > 0
    peak = int(np.argmax(p))
    return {
        "teacher_accuracy": acc,
        "num_mistakes": d["num_mistakes"],
        "k_star": k,
        "support_fraction": k / n,
        "OPT": d["value"],
        "lowest_gain_in_support": float(g[support].min()),
        "gain_at_peak": float(g[peak]),
        "p_top_over_p_peak": float(p[0] / p[peak]),
        "peak_over_uniform": float(p[peak] * n),
        "paper": None,  # Fig. 2 is a plot without numbers
    }


def run_fig2(config, workdir: str) -> dict:
    """Runner for experiments/rad/fig2.py: rows per accuracy + the property checks (+ a plot)."""
    accs = list(config.accuracies)
    rows, seeds = [], list(config.seeds)
    per_seed = []
    for seed in seeds:
        res = fig2_distributions(accs, n=config.n, seed=seed)
        per_seed.append([_row(a, res["gains"], res[a], config.n) for a in accs])
    for j, acc in enumerate(accs):
        cells = [ps[j] for ps in per_seed]
        row = {"teacher_accuracy": acc, "seeds": seeds, "paper": None}
        for key in ("k_star", "support_fraction", "OPT", "lowest_gain_in_support",
                    "gain_at_peak", "p_top_over_p_peak", "peak_over_uniform"):
            vals = np.array([c[key] for c in cells], float)
            row[key] = f"{vals.mean():.4g} ± {vals.std():.2g}"
            row[key + "_mean"] = float(vals.mean())
        rows.append(row)
    sf = [r["support_fraction_mean"] for r in rows]
    checks = {
        "support shrinks as accuracy grows": bool(np.all(np.diff(sf) <= 1e-12)),
        "low-gain points ignored (support < n) for every accuracy < 1":
            all(r["support_fraction_mean"] < 1 for r, a in zip(rows, accs) if a < 1),
        "highest-gain point below the peak when the teacher is inaccurate":
            all(r["p_top_over_p_peak_mean"] < 1 for r, a in zip(rows, accs) if a <= 0.9),
    }
    result = {"rows": rows, "checks": checks,
              "scale_note": f"exact computation, n = {config.n} uniform gains per seed "
                            "(the paper does not state n or the accuracies plotted)"}
    storage.write_json(os.path.join(workdir, "results.json"), result)
    if config.get("plot", True):
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt

            res = fig2_distributions(accs, n=config.n, seed=seeds[0])
            fig, ax = plt.subplots(figsize=(6, 4))
            for acc in accs:
                ax.plot(res["gains"], res[acc]["p"] * config.n, label=f"teacher acc {acc:.2f}")
            ax.set_xlabel("gain g = 1 − margin")
            ax.set_ylabel("n · p (1 = uniform)")
            ax.legend(fontsize=7)
            fig.tight_layout()
            storage.save_figure(fig, os.path.join(workdir, "fig2.png"))
            plt.close(fig)
        except ImportError:  # plotting is optional
            pass
    return result
