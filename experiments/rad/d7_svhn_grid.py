"""RAD Figs. 9-16 (App. D.7): SVHN configuration grid, RAD vs (STANDARD) MARGIN vs UNIFORM.

    python -m launch.main --config=experiments/rad/d7_svhn_grid.py:cpu --workdir=runs/rad_d7_cpu
    python -m launch.main --config=experiments/rad/d7_svhn_grid.py:full:resnetv2_11:resnetv2_56:e100:A5000:b1000 \
        --workdir=runs/rad_d7_v2_11_v2_56_e100_A5000_b1000

Arg: '<scale>[:<student>:<teacher>:e<epochs>:A<|A|>:b<b>]'; GRID lists every cell of
Figs. 9-16 (figure -> student, e, |A|; rows = teacher, columns = b ∈ {1000, 2000, 5000}).
The captions name a "ResNetv2-101" teacher in the second row while D.7's text says
ResNetv2-{56, 110}; we use resnetv2_110 (kdjax has no ResNetV2-101 for 32x32 inputs).
Rounds per cell are not stated: [ours] 10.
"""
from __future__ import annotations

from experiments.rad import _base

STRATEGIES = ("rad", "margin", "uniform")
TEACHERS = ("resnetv2_56", "resnetv2_110")
BUDGETS = (1000, 2000, 5000)
# Figure -> (student, epochs, |A|), App. D.7 captions.
FIGURES = {
    9: ("resnetv2_11", 100, 5000),
    10: ("resnetv2_11", 200, 5000),
    11: ("resnetv2_11", 200, 10000),
    12: ("resnetv2_11", 200, 20000),
    13: ("resnetv2_20", 100, 5000),
    14: ("resnetv2_20", 200, 5000),
    15: ("resnetv2_20", 200, 10000),
    16: ("resnetv2_29", 200, 5000),
}
ROUNDS = 10   # [ours]


def grid() -> list[str]:
    """Every panel of Figs. 9-16 as a get_config argument suffix."""
    return [f"{s}:{t}:e{e}:A{a}:b{b}" for (s, e, a) in FIGURES.values() for t in TEACHERS
            for b in BUDGETS]


def get_config(arg: str | None = None):
    scale, parts = _base.parse_arg(arg)
    if not parts:
        parts = grid()[0].split(":")
    if len(parts) != 5:
        raise ValueError("d7 arg must be '<scale>:<student>:<teacher>:e<E>:A<|A|>:b<b>', got "
                         f"{arg!r}")
    student, teacher = parts[:2]
    try:
        e, a, b = (int(p[1:]) for p in parts[2:])
    except ValueError:
        raise ValueError(f"d7 arg {arg!r}: e/A/b need integers") from None
    cell = f"{student}:{teacher}:e{e}:A{a}:b{b}"
    if cell not in grid():
        raise ValueError(f"d7 cell {cell!r} is not in Figs. 9-16; choose from grid()")
    if scale == "full":
        c = _base.full_base("svhn", "resnet", epochs=e, num_labeled=a, budget=b, rounds=ROUNDS)
        c.model.name, c.teacher.name = student, teacher
    else:
        c = _base.cpu_base(f"Figs. 9-16 (D.7), SVHN {cell}", strategies=STRATEGIES)
    c.active.strategies = STRATEGIES
    c.figure = "rad_fig9_d7"
    c.panel = cell
    return c
