"""The CPU experiment most able to show RAD's claim (issue 18): RAD vs MARGIN vs UNIFORM with the
teacher's accuracy varied through |A|, paired over 8 trials, beside two references.

    python -m launch.reproduce --table=rad_claim_cpu            # 3 points (one per |A|)
    python -m launch.main --config=experiments/rad/claim_cpu.py:cpu:A500 --workdir=runs/claim

The paper's claim (Sec. 4, Fig. 3): RAD outperforms MARGIN and UNIFORM, most where the teacher
makes mistakes. To give it the best chance at CPU scale:
- the teacher is a CNN trained on the |A| hard labels, |A| ∈ {200, 500, 1500}: teacher test
  accuracy ≈ 75 / 80 / 85% (|A| picked from one pilot teacher per level, seed 0; no arm's
  setting was chosen from test numbers);
- the student is a one-hidden-layer MLP (64 units), weaker than the CNN teacher, trained to
  convergence at this size (30 epochs of batch 64, Adam 3e-3 cosine: training accuracy ~1.0
  on the labeled set in the pilot); every round retrains it from scratch (Alg. 1);
- a fixed pool of 5,000 unlabeled images (`active.pool_size`) for every |A|, and 2 rounds of
  b = 500: a cumulative budget of 1,000 = 20% of the pool (Fig. 3: ~23% of CIFAR's pool);
- m̂ from the 1,000-image labeled validation split (D.1), no queries spent on it.
Arms: rad, uniform, margin, rad@m=oracle (RAD given the teacher's true number of mistakes on
the pool) and oracle_margin, a BOUND that reads the teacher's correctness (the ground truth):
the lowest-margin points among those the teacher labels correctly. It shows what avoiding
teacher mistakes while keeping MARGIN's informativeness could gain; it is not a method.
The claim is judged on the all-rounds paired differences RAD − MARGIN and RAD − UNIFORM
(kdjax.methods.rad.paired, kdjax.reproduce.stats.claim_status, kind 'greater').

Arg: 'cpu' (|A| = 500) or 'cpu:A<|A|>'; there is no full-scale version (Fig. 3 is the paper's;
'full' builds this same reduced config, which its scale note says).
"""
from __future__ import annotations


from experiments.rad import _base

LEVELS = (200, 500, 1500)   # |A|: teacher accuracy ≈ 75 / 80 / 85% on Fashion-MNIST
POOL = 5000
BUDGET, ROUNDS = 500, 2
STRATEGIES = ("rad", "uniform", "margin", "rad@m=oracle", "oracle_margin")


def get_config(arg: str | None = None):
    arg = arg or "cpu"
    scale, *rest = arg.split(":")
    if scale not in ("cpu", "full"):
        raise ValueError(f"claim_cpu arg must be 'cpu[:A<|A|>]', got {arg!r}")
    a = 500
    for p in rest:
        if len(p) < 2 or p[0] != "A" or not p[1:].isdigit() or int(p[1:]) <= 0:
            raise ValueError(f"claim_cpu field {p!r}: expected A<|A|> with a positive integer")
        a = int(p[1:])
    c = _base.cpu_base("Fig. 3's claim, RAD vs MARGIN vs UNIFORM", num_labeled=a,
                       budget=BUDGET, rounds=ROUNDS, epochs=30, trials=8,
                       max_train=1000 + max(LEVELS) + POOL, strategies=STRATEGIES)
    c.data.batch_size = 64
    c.model.name = "mlp"
    c.model.kwargs = {"hidden": (64,)}
    c.teacher.epochs = 30
    c.active.pool_size = POOL
    c.active.pairs = (("rad", "margin"), ("rad", "uniform"), ("margin", "uniform"),
                      ("rad@m=oracle", "rad"), ("oracle_margin", "margin"),
                      ("oracle_margin", "rad"))
    c.active.claim.text = "RAD outperforms MARGIN and UNIFORM (Sec. 4, Fig. 3)"
    c.active.claim.kind, c.active.claim.on = "greater", "all"
    c.active.claim.pairs = (("rad", "margin"), ("rad", "uniform"))
    c.scale_note = (
        f"reduced scale for a 2-core CPU, no paper counterpart: offline Fashion-MNIST, CNN "
        f"teacher (widths 32/64, 30 epochs) trained on the |A| hard labels (|A| = the "
        f"num_labeled column), MLP student (64 hidden units, 30 epochs of batch 64, retrained "
        f"from scratch each round), fixed pool of {POOL:,}, {ROUNDS} rounds of b={BUDGET} "
        f"(cumulative {ROUNDS * BUDGET} = {100 * ROUNDS * BUDGET / POOL:.0f}% of the pool), m̂ "
        f"from the 1,000-image validation split, paired trials with seeds {c.seed}, "
        f"{c.seed + 1}, ...; oracle_margin reads the teacher's correctness (a bound, not a "
        f"method)")
    return c
