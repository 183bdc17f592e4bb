"""LR+DS ablation over the DS fraction |D^t|/|D| (KD+LR+DS, resnet56 -> resnet20, eta = 0.8).

    python -m launch.main --config=experiments/lrds/ablation_fraction.py:full \
        --workdir=runs/lrds_fraction

KD once as the reference, then KD+LR+DS with the top 50 ... 100% influence-ranked examples
distilled (1.0 = LR only: every example gets the revised teacher).
"""
import ml_collections

from experiments.lrds.cifar100 import build


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    scale = (arg or "cpu").partition(":")[0]
    c = build(arg if ":" in (arg or "") else f"{scale}:resnet56:resnet20", (),
              "ablation_fraction")
    c.lrds.variants = ("kd",)
    c.lrds.fraction_sweep = (0.5, 0.6, 0.7, 0.8, 0.9, 1.0) if scale == "full" else (0.5, 1.0)
    return c
