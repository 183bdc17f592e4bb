"""Shared pieces of the RAD experiment configs (Sec. 4, App. D): the paper's full setting and
the declared CPU reduction. Each experiments/rad/<figure>.py builds on these.

Run any of them with the compare runner, e.g.

    python -m launch.main --config=experiments/rad/fig3.py:cpu --workdir=runs/rad_fig3_cpu
"""
from __future__ import annotations

import ml_collections

from experiments import default

# Sec. 4: every strategy compared in Fig. 3 (CM = cluster_margin).
ALL_STRATEGIES = ("rad", "margin", "entropy", "coreset", "cluster_margin", "unixkd", "uniform")

# Student / teacher pairs of Sec. 4.1 ("resnet" = ResNetV2-20 student, ResNet-50 teacher;
# MobileNet: depth/width multiplier 1 student, 2 teacher, App. D.1).
PAIRS = {
    "resnet": ("resnetv2_20", "resnet50"),
    "mobilenet": ("mobilenet", "mobilenet_w2"),
}
# TFDS names of the paper's data sets.
DATASETS = {"cifar10": "cifar10", "cifar100": "cifar100", "svhn": "svhn_cropped"}

CPU_NOTE = ("reduced scale for a 2-core CPU: offline Fashion-MNIST ({n_train:,}-image train subset, "
            "{n_test:,} test images), small CNNs (teacher widths {tw}, student {sw}) in place of "
            "the paper's ResNets/MobileNets, |A|={A}, b={b}, {T} rounds, {e} student epochs "
            "(Adam, cosine), {trials} trials; the paper ({what}) trains on TPUs")


def set_claim(c: ml_collections.ConfigDict, text: str, kind: str, baselines, arm: str = "rad",
              on: str = "all") -> ml_collections.ConfigDict:
    """The paper's claim about `arm` − each baseline, judged by kdjax.methods.rad.paired on the
    paired differences ('greater': outperforms; 'not_worse': matches or improves; 'equal': no
    significant change); printed by the compare runner and the reproduce report."""
    claim = c.active.claim
    claim.text, claim.kind, claim.on = text, kind, on
    claim.pairs = tuple((arm, b) for b in baselines)
    return c


def panel_config(arg: str | None, title: str, entry: str, strategies: tuple, *,
                 full_trials: int | None = None) -> tuple[ml_collections.ConfigDict, tuple]:
    """One panel of an App. D figure: the paper's setting at 'full' (`full_base`), the cpu
    stand-in with the entry's own seeds at 'cpu'; returns (config, (ds, pair, e, A, b, T))."""
    from experiments.rad import fig3
    scale, parts = parse_arg(arg)
    ds, pair, e, a, b, t = panel = fig3.parse_panel(parts)
    if scale == "full":
        kw = {} if full_trials is None else {"trials": full_trials}
        c = full_base(ds, pair, epochs=e, num_labeled=a, budget=b, rounds=t, **kw)
    else:
        c = cpu_base(f"{title}, {ds}, {pair}", strategies=strategies)
        own_seeds(c, entry)
    c.active.strategies = strategies
    return c, panel


def parse_arg(arg: str | None) -> tuple[str, list[str]]:
    """'cpu' | 'full' | 'cpu:<panel...>' | 'full:<panel...>' -> (scale, panel parts)."""
    arg = arg or "cpu"
    scale, *rest = arg.split(":")
    if scale not in ("cpu", "full"):
        raise ValueError(f"config arg must start with 'cpu' or 'full', got {arg!r}")
    return scale, rest


def full_base(dataset: str, pair: str, *, epochs: int, num_labeled: int, budget: int,
              rounds: int, trials: int = 10) -> ml_collections.ConfigDict:
    """The paper's CIFAR-10/100 / SVHN setting (Sec. 4.1, App. D.1)."""
    if dataset not in DATASETS:
        raise ValueError(f"dataset {dataset!r} unknown; choose from {sorted(DATASETS)}")
    if pair not in PAIRS:
        raise ValueError(f"pair {pair!r} unknown; choose from {sorted(PAIRS)}")
    c = default.get_config("kdjax.methods.rad.compare:run")
    c.scale_note = "full setting"
    c.progress_bar = False
    c.data.name = DATASETS[dataset]
    c.data.num_validation = 1000        # D.1: validation set of 1,000 to estimate m
    c.data.augment = False              # D.1: no data augmentation
    c.data.batch_size = 128             # Sec. 4.1
    c.data.eval_batch_size = 1000
    c.model.name, c.teacher.name = PAIRS[pair]
    c.model.dtype = "bfloat16"
    c.teacher.epochs = epochs
    c.train.epochs = epochs
    c.train.optimizer = "adam"          # Sec. 4.1 / D.1
    c.train.learning_rate = 1e-3
    c.train.weight_decay = 0.0          # D.1: no weight regularization
    # D.1: ResNets use the piecewise 1e-3 .. 5e-7 schedule; MobileNet Adam defaults (1e-3).
    c.train.schedule = "rad_piecewise" if pair == "resnet" else "constant"
    c.train.eval_every_epochs = 1000    # evaluate at the end of each training
    c.active.num_labeled = num_labeled
    c.active.budget = budget
    c.active.rounds = rounds
    c.active.strategies = ALL_STRATEGIES
    c.active.num_trials = trials        # Sec. 4.1: 10 trials unless stated otherwise
    c.active.m_estimate = "validation"  # D.1
    c.active.b_uniform = 0
    return c


def cpu_base(what: str, *, num_labeled: int = 1000, budget: int = 500, rounds: int = 2,
             epochs: int = 4, trials: int = 2, max_train: int = 6_000, max_test: int = 2_500,
             strategies: tuple = ALL_STRATEGIES, student_widths: tuple = (8, 16),
             teacher_widths: tuple = (32, 64)) -> ml_collections.ConfigDict:
    """The declared CPU reduction: offline Fashion-MNIST, small CNNs, minutes on 2 cores.

    Sized so every RAD entry of the reproduce harness finishes in minutes on a shared 2-core
    machine: 2 trials and a 6,000-image train subset (|A| = 1,000, 1,000 validation, a pool
    of 4,000 of which 2 rounds of b = 500 query a quarter, as Fig. 3's 10 rounds of b = 1,000
    query ~23% of CIFAR's 44,000-image pool)."""
    c = default.get_config("kdjax.methods.rad.compare:run")
    c.progress_bar = False
    c.tensorboard = False
    c.data.name = "fashion_mnist"
    c.data.max_train_examples = max_train
    c.data.max_test_examples = max_test
    c.data.num_validation = 1000        # D.1's validation set estimates m, as in the paper
    c.data.batch_size = 128
    c.data.eval_batch_size = 1000
    c.model.name = "cnn_small"
    c.model.kwargs = {"widths": tuple(student_widths), "hidden": 32}
    c.teacher.name = "cnn_small"
    c.teacher.kwargs = {"widths": tuple(teacher_widths), "hidden": 128}
    c.teacher.epochs = 10
    c.train.epochs = epochs
    c.train.optimizer = "adam"
    c.train.learning_rate = 3e-3
    c.train.weight_decay = 0.0
    c.train.schedule = "cosine"
    c.train.log_every_steps = 1000
    c.train.eval_every_epochs = 1000
    c.train.checkpoint_every_steps = 10_000
    c.active.num_labeled = num_labeled
    c.active.budget = budget
    c.active.rounds = rounds
    c.active.strategies = tuple(strategies)
    c.active.num_trials = trials
    c.active.m_estimate = "validation"
    c.active.b_uniform = 0
    c.active.num_clusters = 20
    c.scale_note = CPU_NOTE.format(n_train=max_train, n_test=max_test, A=num_labeled, b=budget,
                                   T=rounds, e=epochs, trials=trials, what=what,
                                   tw="/".join(map(str, teacher_widths)),
                                   sw="/".join(map(str, student_widths)))
    return c


# Each RAD entry's cpu run draws its own seeds (trial t of an entry uses seed offset + t), so
# no two entries of docs/reproduction.md are the same run (Fig. 3's panels: 0, 10, ..., 50).
SEED_OFFSETS = {"rad_fig4": 100, "rad_fig5_d3": 200, "rad_fig6_d4": 300, "rad_fig7_d5": 400,
                "rad_fig8_d6": 500, "rad_fig9_d7": 600}


def own_seeds(c: ml_collections.ConfigDict, entry: str, extra: int = 0) -> None:
    """Give a cpu config its entry's own seeds (SEED_OFFSETS[entry] + extra) and say so."""
    c.seed = SEED_OFFSETS[entry] + extra
    c.scale_note += (f"; this entry's trials use their own seeds {c.seed}, {c.seed + 1}, ... "
                     "(no other entry shares its runs)")
