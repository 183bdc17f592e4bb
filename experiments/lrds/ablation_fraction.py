"""LR+DS ablation over the DS fraction |D^t|/|D| (KD+LR+DS, resnet56 -> resnet20, eta = 0.8).

    python -m launch.main --config=experiments/lrds/ablation_fraction.py:full \
        --config.lrds.ds.fraction=0.6 --workdir=runs/lrds_fraction0.6
    python -m launch.reproduce --table=lrds_ablation_fraction    # reduced ('cpu') version

The table's grid: KD once as the reference, then KD+LR+DS with the top 50 ... 100%
influence-ranked examples distilled (`FRACTIONS`; 1.0 = LR only: every example gets the revised
teacher). 'cpu': the same grid on `cifar100.py`'s reduced setting (offline Fashion-MNIST, the MLP
stand-in mlp_3x256 -> mlp_1x64 for resnet56 -> resnet20).
"""
import ml_collections

from experiments.lrds.cifar100 import build

FRACTIONS = (0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    c = build(arg, ("resnet56:resnet20",))
    c.scale_note += "; DS fraction swept over {0.5, ..., 1.0} (the paper's grid)"
    return c
