"""Beyond the papers (issue 21): which points to query × how to trust the teacher's answers.

    python -m launch.reproduce --table=compose_active_cpu
    python -m launch.main --config=experiments/compose/active_retrain.py --workdir=runs/compose

RAD's active loop (Alg. 1) with a teacher that is wrong on about a quarter of the pool: a CNN
trained on |A| = 200 hard labels of offline Fashion-MNIST (test accuracy ≈ 75% in
experiments/rad/claim_cpu.py's pilot), a one-hidden-layer MLP student (64 units) retrained
from scratch each round. Arms: selection uniform / margin / RAD (m̂ from the labeled
validation split, no queries spent on it) × retraining loss (kdjax/methods/rad/retrain.py):
  kd    Hinton KD, τ = 4, kd_weight 0.9, CE weight 0.1 (CE on the teacher's arg-max on the
        queried points, on the true label on A);
  lrds  KD + Label Revision (η = 0.8; DS off): revises only toward the labels the loop has,
        i.e. on a queried point it sharpens the teacher toward its own arg-max;
  alm   ALM-KD (one λ per example, meta-learned every 10 steps on the labeled validation
        split, λ from 0.5).
Round 0 (Alg. 1's CE-only student) is shared by all arms of a trial; every arm of a trial
shares its split, teacher and seed, so differences are paired (papers.rad.compose_active).
No setting was chosen from test numbers. Arg: 'cpu' (this setting); 'full' builds the same
reduced config (no paper counterpart), which its scale note says.
"""
from __future__ import annotations

from experiments.rad import _base
from kdjax import config as config_lib

NUM_LABELED, POOL = 200, 3000
BUDGET, ROUNDS = 300, 2
STRATEGIES = ("uniform", "margin", "rad")
RETRAINS = ("kd", "lrds", "alm")


def get_config(arg: str | None = None):
    arg = arg or "cpu"
    if arg not in ("cpu", "full"):
        raise ValueError(f"active_retrain arg must be 'cpu' or 'full', got {arg!r}")
    c = _base.cpu_base("selection × retraining (issue 21)", num_labeled=NUM_LABELED,
                       budget=BUDGET, rounds=ROUNDS, epochs=15, trials=8,
                       max_train=1000 + NUM_LABELED + POOL, strategies=STRATEGIES)
    c.method = "papers.rad.compose_active:run"
    for name in RETRAINS:      # the retraining methods' sections (LR+DS, ALM-KD)
        config_lib.mount(c, name)
    c.data.batch_size = 64
    c.model.name = "mlp"
    c.model.kwargs = {"hidden": (64,)}
    c.teacher.epochs = 30
    c.active.pool_size = POOL
    c.active.retrains = RETRAINS
    c.loss.temperature, c.loss.kd_weight, c.loss.ce_weight = 4.0, 0.9, 0.1
    c.lrds.lr.enabled, c.lrds.ds.enabled, c.lrds.lr.eta = True, False, 0.8
    c.alm.variant = "alm"
    c.scale_note = (
        f"beyond the papers, reduced for a shared 2-core CPU: offline Fashion-MNIST, CNN "
        f"teacher (widths 32/64, 30 epochs) on |A| = {NUM_LABELED} hard labels, MLP student "
        f"(64 hidden units, 15 epochs of batch 64, retrained from scratch each round), fixed "
        f"pool of {POOL:,}, {ROUNDS} rounds of b = {BUDGET}, m̂ from the 1,000-image "
        f"validation split, paired trials with seeds {c.seed}, {c.seed + 1}, ...")
    return c
