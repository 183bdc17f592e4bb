"""Cost of the LR+DS Data-Selection scorers on one training set, measured side by side.

Scores N synthetic examples (penultimate features F, C classes: a student's last layer) with every
scorer behind `kdjax.methods.lrds.influence.score_examples` and prints wall seconds (median of
--repeats after one warm-up call that compiles) and the ratio to the cheapest scorer ('loss'),
plus the Spearman rank correlation of each scorer with the exact influence ||H^-1 g_i||.

    python bench/lrds_scorers.py                          # N=20000, F=64, C=10 (D = 650)
    python bench/lrds_scorers.py --n=50000 --f=64 --c=100 # CIFAR-100 resnet20 head (D = 6500)
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import scipy.stats

from kdjax import platform

platform.apply(persistent_cache=False)  # launch/'s CPU settings, no compilation cache

from kdjax.methods.lrds import influence as inf  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--f", type=int, default=64)
    ap.add_argument("--c", type=int, default=10)
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    rng = np.random.default_rng(0)
    feats = np.maximum(rng.normal(size=(args.n, args.f)), 0).astype(np.float32)  # post-ReLU
    w = rng.normal(size=(args.f, args.c)).astype(np.float32) / np.sqrt(args.f)
    logits = (feats @ w * 3).astype(np.float32)
    labels = rng.integers(0, args.c, args.n).astype(np.int32)
    out = inf.Outputs(feats, logits)
    val = inf.Outputs(feats[:2000], logits[:2000])
    runs = [("loss", {}), ("margin", {}), ("tracin", {}),
            ("influence", {"hessian": "kfac"}), ("influence", {"hessian": "exact"}),
            ("self_influence", {"hessian": "exact"}), ("val_influence", {"hessian": "exact"})]
    d = (args.f + 1) * args.c
    print(f"N={args.n} F={args.f} C={args.c} (last-layer parameters D={d}), batch {args.batch}")
    times, scores = {}, {}
    for scorer, kw in runs:
        name = scorer + (f"[{kw['hessian']}]" if kw else "")
        call = lambda: inf.score_examples(scorer, out, labels, val=val, val_labels=labels[:2000],
                                          batch_size=args.batch, **kw)
        scores[name] = call()   # warm-up: compiles
        ts = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            call()
            ts.append(time.perf_counter() - t0)
        times[name] = statistics.median(ts)
    base = times["loss"]
    ref = scores["influence[exact]"]
    print(f"| scorer | seconds | x loss | Spearman vs influence[exact] |")
    print("|---|---|---|---|")
    for name, t in times.items():
        rho = scipy.stats.spearmanr(scores[name], ref).statistic
        print(f"| {name} | {t:.3f} | {t / base:.1f} | {rho:.3f} |")


if __name__ == "__main__":
    main()
