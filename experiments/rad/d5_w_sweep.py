"""RAD Fig. 7 (App. D.5): robustness to w. RAD with the default w = 1 − m/n (OURS) beside RAD
with fixed w ∈ {0.0, 0.1, 0.2, 0.3, 0.5, 0.6, 0.7, 0.8, 1.0}, 5 trials.

    python -m launch.main --config=experiments/rad/d5_w_sweep.py:cpu --workdir=runs/rad_d5_cpu
    python -m launch.main --config=experiments/rad/d5_w_sweep.py:full:cifar10:resnet \
        --workdir=runs/rad_d5_cifar10_resnet

Each w is a strategy variant 'rad@w=<w>' of the compare runner (kdjax/methods/rad/compare.py), so
all of them share each trial's teacher. Arg: as experiments/rad/fig3.py. The cpu scale sweeps
w ∈ {0, 0.5, 1} only.
"""
from __future__ import annotations

from experiments.rad import _base, fig3

W_VALUES = (0.0, 0.1, 0.2, 0.3, 0.5, 0.6, 0.7, 0.8, 1.0)   # D.5
CPU_W_VALUES = (0.0, 0.5, 1.0)


def strategies_for(ws) -> tuple[str, ...]:
    return ("rad",) + tuple(f"rad@w={w:g}" for w in ws)


def get_config(arg: str | None = None):
    scale, parts = _base.parse_arg(arg)
    ds, pair, e, a, b, t = fig3.parse_panel(parts)
    if scale == "full":
        c = _base.full_base(ds, pair, epochs=e, num_labeled=a, budget=b, rounds=t, trials=5)
        c.active.strategies = strategies_for(W_VALUES)
    else:
        c = _base.cpu_base(f"Fig. 7 (D.5), {ds}, {pair}",
                           strategies=strategies_for(CPU_W_VALUES))
        c.scale_note += f"; w ∈ {CPU_W_VALUES} only (paper: {W_VALUES})"
        _base.own_seeds(c, "rad_fig7_d5")
    _base.set_claim(c, "the default w = 1 − m/n performs as well as every fixed w (within one "
                    "std of the best; D.5, Fig. 7)", "not_worse", c.active.strategies[1:])
    return c
