"""LR+DS ablation over the label-revision strength eta (KD+LR+DS, resnet56 -> resnet20).

    python -m launch.main --config=experiments/lrds/ablation_eta.py:full \
        --workdir=runs/lrds_eta

KD once as the reference, then KD+LR+DS at eta in {0.1, 0.3, 0.5, 0.7, 0.8, 0.9}, DS fraction 0.8.
"""
import ml_collections

from experiments.lrds.cifar100 import build


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    scale = (arg or "cpu").partition(":")[0]
    c = build(arg if ":" in (arg or "") else f"{scale}:resnet56:resnet20", (), "ablation_eta")
    c.lrds.variants = ("kd",)
    c.lrds.eta_sweep = (0.1, 0.3, 0.5, 0.7, 0.8, 0.9) if scale == "full" else (0.3, 0.8)
    return c
