"""RAD Figs. 9-16 (App. D.7): SVHN configuration grid, RAD vs (STANDARD) MARGIN vs UNIFORM.

    python -m launch.main --config=experiments/rad/d7_svhn_grid.py:cpu --workdir=runs/rad_d7_cpu
    python -m launch.main --config=experiments/rad/d7_svhn_grid.py:full:resnetv2_11:resnetv2_56:e100:A5000:b1000 \
        --workdir=runs/rad_d7_v2_11_v2_56_e100_A5000_b1000

Arg: '<scale>[:<student>:<teacher>:e<epochs>:A<|A|>:b<b>]'; GRID lists every cell of
Figs. 9-16 (figure -> student, e, |A|; rows = teacher, columns = b ∈ {1000, 2000, 5000}).
The captions name a "ResNetv2-101" teacher in the second row while D.7's text says
ResNetv2-{56, 110}; we use resnetv2_110 (kdjax has no ResNetV2-101 for 32x32 inputs).
Rounds per cell are not stated: [ours] 10.

At cpu scale each cell keeps its shape, scaled down (CPU_SCALE, [ours]): the student's and
teacher's sizes become cnn_small widths (ResNetV2-11/20/29 -> 4/8, 8/16, 12/24; ResNetV2-56/110
-> 32/64, 48/96), e -> e/25 epochs, |A| -> |A|/10 and b -> b/5, 2 rounds, on Fashion-MNIST;
each cell draws its own seeds.
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
# cpu scale of a cell [ours]: model -> cnn_small widths; e, |A|, b divided by these factors.
CPU_WIDTHS = {"resnetv2_11": (4, 8), "resnetv2_20": (8, 16), "resnetv2_29": (12, 24),
              "resnetv2_56": (32, 64), "resnetv2_110": (48, 96)}
CPU_SCALE = {"e": 25, "A": 10, "b": 5}
CPU_ROUNDS = 2


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
        c = _base.cpu_base(f"Figs. 9-16 (D.7), SVHN {cell}", strategies=STRATEGIES,
                           num_labeled=a // CPU_SCALE["A"], budget=b // CPU_SCALE["b"],
                           rounds=CPU_ROUNDS, epochs=e // CPU_SCALE["e"], max_train=7000,
                           student_widths=CPU_WIDTHS[student],
                           teacher_widths=CPU_WIDTHS[teacher])
        c.scale_note += (f"; this cell at cpu scale: {student} -> cnn_small "
                         f"{CPU_WIDTHS[student]}, {teacher} -> cnn_small {CPU_WIDTHS[teacher]}, "
                         f"e/{CPU_SCALE['e']}, |A|/{CPU_SCALE['A']}, b/{CPU_SCALE['b']}")
        _base.own_seeds(c, "rad_fig9_d7", 10 * grid().index(cell))
    c.active.strategies = STRATEGIES
    _base.set_claim(c, "RAD performs better or at least as well as (STANDARD) MARGIN and "
                    "UNIFORM (D.7, Figs. 9-16)", "not_worse", ("margin", "uniform"))
    return c
