"""RAD Fig. 8 (App. D.6): RAD with margin gains (OURS, g = 1 − margin) vs RAD ENTROPY (gains =
entropy of the student's softmax), 5 trials.

    python -m launch.main --config=experiments/rad/d6_entropy_gain.py:cpu \
        --workdir=runs/rad_d6_cpu
    python -m launch.main --config=experiments/rad/d6_entropy_gain.py:full:cifar100:resnet \
        --workdir=runs/rad_d6_cifar100_resnet

Arg: as experiments/rad/fig3.py ('<scale>[:<dataset>:<pair>[:e..][:A..][:b..][:T..]]').
"""
from __future__ import annotations

from experiments.rad import _base

STRATEGIES = ("rad", "rad_entropy")


def get_config(arg: str | None = None):
    c, (ds, pair, e, a, b, t) = _base.panel_config(arg, "Fig. 8 (D.6)", "rad_fig8_d6",
                                                   STRATEGIES, full_trials=5)
    _base.set_claim(c, "entropy gains instead of margin gains lead to no significant change "
                    "(D.6, Fig. 8)", "equal", ("rad_entropy",))
    return c
