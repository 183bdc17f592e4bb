"""RAD Fig. 5 (App. D.3): final accuracy, accuracy over the last round's training epochs, and
the realized gain of Sec. 3's objective per round, for RAD vs (STANDARD) MARGIN vs UNIFORM.

    python -m launch.main --config=experiments/rad/d3_gains.py:cpu --workdir=runs/rad_d3_cpu
    python -m launch.main --config=experiments/rad/d3_gains.py:full:svhn:resnet \
        --workdir=runs/rad_d3_svhn_resnet

Arg: as experiments/rad/fig3.py ('<scale>[:<dataset>:<pair>[:e..][:A..][:b..][:T..]]'); the
paper runs "CIFAR10, CIFAR100, and SVHN similar to those in Sec. 4". Every round's student
is evaluated after each epoch (train.eval_every_epochs = 1) so the last round's trajectory
(Fig. 5, second column) is in its round_<T>/results.json; the realized gain per round is in
each strategy's records (loop.py: gains with the teacher's true mistakes, one w for all).
"""
from __future__ import annotations

from experiments.rad import _base

STRATEGIES = ("rad", "margin", "uniform")   # D.3: RAD, STANDARD MARGIN, UNIFORM


def get_config(arg: str | None = None):
    c, (ds, pair, e, a, b, t) = _base.panel_config(arg, "Fig. 5 (D.3)", "rad_fig5_d3", STRATEGIES)
    c.train.eval_every_epochs = 1
    _base.set_claim(c, "RAD achieves a higher final test accuracy than STANDARD MARGIN and "
                    "UNIFORM (D.3, Fig. 5, first column)", "greater", ("margin", "uniform"),
                    on="last")
    return c
