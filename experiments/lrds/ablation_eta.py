"""LR+DS ablation over the label-revision strength eta (KD+LR+DS, resnet56 -> resnet20).

    python -m launch.main --config=experiments/lrds/ablation_eta.py:full \
        --workdir=runs/lrds_eta
    python -m launch.reproduce --table=lrds_ablation_eta    # reduced ('cpu') version

KD once as the reference, then KD+LR+DS at eta in {0.1, 0.3, 0.5, 0.7, 0.8, 0.9}, DS fraction 0.8.
'cpu': the same eta grid on `cifar100.py`'s reduced setting (offline Fashion-MNIST, the MLP
stand-in mlp_3x256 -> mlp_1x64 for resnet56 -> resnet20, 3 seeds).
"""
import ml_collections

from experiments.lrds.cifar100 import CPU_PAIRS, build

ETAS = (0.1, 0.3, 0.5, 0.7, 0.8, 0.9)


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    c = build(arg, ("resnet56:resnet20",),
              "ablation_eta", cpu_pairs=CPU_PAIRS[:1])
    c.lrds.variants = ("kd",)
    c.lrds.eta_sweep = ETAS
    c.scale_note += "; eta swept over {0.1, 0.3, 0.5, 0.7, 0.8, 0.9} (the paper's grid)"
    return c
