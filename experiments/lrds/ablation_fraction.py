"""LR+DS ablation over the DS fraction |D^t|/|D| (KD+LR+DS, resnet56 -> resnet20, eta = 0.8).

    python -m launch.main --config=experiments/lrds/ablation_fraction.py:full \
        --workdir=runs/lrds_fraction
    python -m launch.reproduce --table=lrds_ablation_fraction    # reduced ('cpu') version

KD once as the reference, then KD+LR+DS with the top 50 ... 100% influence-ranked examples
distilled (1.0 = LR only: every example gets the revised teacher).
'cpu': the same fraction grid on `cifar100.py`'s reduced setting (offline Fashion-MNIST, the MLP
stand-in mlp_3x256 -> mlp_1x64 for resnet56 -> resnet20, 3 seeds).
"""
import ml_collections

from experiments.lrds.cifar100 import CPU_PAIRS, build

FRACTIONS = (0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    c = build(arg, ("resnet56:resnet20",),
              "ablation_fraction", cpu_pairs=CPU_PAIRS[:1])
    c.lrds.variants = ("kd",)
    c.lrds.fraction_sweep = FRACTIONS
    c.scale_note += "; DS fraction swept over {0.5, ..., 1.0} (the paper's grid)"
    return c
