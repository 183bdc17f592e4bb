"""RAD Fig. 6 (App. D.4): RAD in the standard active learning setting.

    python -m launch.main --config=experiments/rad/d4_active_learning.py:cpu \
        --workdir=runs/rad_d4_cpu
    python -m launch.main --config=experiments/rad/d4_active_learning.py:full:cifar10:resnet \
        --workdir=runs/rad_d4_cifar10_resnet

There is no teacher: a query returns the ground-truth label (a perfect labeling oracle), the
model retrains on the hard labels, and RAD is instantiated with m = 0.05·n "teacher mistakes"
(D.4: about 5% of points are too difficult or outliers; w = 1 − m/n = 0.95). Configured here by
active.label_oracle = True (one-hot targets for queried points) and active.m_estimate = 'fixed'
with active.m_fraction = 0.05 (no error-rate queries). The teacher is still trained by the
runner but never queried.

Arg: as experiments/rad/fig3.py; strategies: RAD and the active-learning baselines of Fig. 6.
"""
from __future__ import annotations

from experiments.rad import _base

STRATEGIES = ("rad", "margin", "entropy", "coreset", "cluster_margin", "uniform")


def get_config(arg: str | None = None):
    c, (ds, pair, e, a, b, t) = _base.panel_config(arg, "Fig. 6 (D.4)", "rad_fig6_d4", STRATEGIES)
    c.active.label_oracle = True      # queries return the true label (no teacher)
    c.active.m_fraction = 0.05        # D.4: m = 0.05 n
    c.active.m_estimate = "fixed"
    c.data.num_validation = 0         # no teacher error rate to estimate
    c.scale_note += ("; D.4 standard active learning: every query returns the true label (the "
                     "teacher is never queried; counted as label queries) and m = 0.05n")
    _base.set_claim(c, "RAD matches or improves on the best-performing active learning "
                    "technique (D.4, Fig. 6)", "not_worse", STRATEGIES[1:])
    return c
