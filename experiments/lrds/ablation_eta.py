"""LR+DS ablation over the label-revision strength eta (KD+LR+DS, resnet56 -> resnet20).

    python -m launch.main --config=experiments/lrds/ablation_eta.py:full \
        --config.lrds.lr.eta=0.5 --workdir=runs/lrds_eta0.5
    python -m launch.reproduce --table=lrds_ablation_eta    # reduced ('cpu') version

The table's grid: KD once as the reference, then KD+LR+DS at eta in `ETAS` (the paper's grid),
DS fraction 0.8. 'cpu': the same grid on `cifar100.py`'s reduced setting (offline Fashion-MNIST,
the MLP stand-in mlp_3x256 -> mlp_1x64 for resnet56 -> resnet20).
"""
import ml_collections

from experiments.lrds.cifar100 import build

ETAS = (0.1, 0.3, 0.5, 0.7, 0.8, 0.9)


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    c = build(arg, ("resnet56:resnet20",))
    c.scale_note += "; eta swept over {0.1, 0.3, 0.5, 0.7, 0.8, 0.9} (the paper's grid)"
    return c
