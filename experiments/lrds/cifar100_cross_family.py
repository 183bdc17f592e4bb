"""LR+DS on CIFAR-100, cross-family teacher -> student pairs the model zoo provides.

    python -m launch.main --config=experiments/lrds/cifar100_cross_family.py:full \
        --workdir=runs/lrds_c100_cross

RepDistiller's cross-family pairs, restricted to the models kdjax has (no ShuffleNetV1):
vgg13 -> MobileNetV2, ResNet50 -> MobileNetV2, ResNet50 -> vgg8, resnet32x4 -> ShuffleNetV2.
Same recipe as `cifar100.py` (lr 0.01 for MobileNet/ShuffleNet students).
"""
import ml_collections

from experiments.lrds.cifar100 import build

PAIRS = ("vgg13:mobilenetv2", "resnet50:mobilenetv2", "resnet50:vgg8",
         "resnet32x4:shufflenetv2")


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    return build(arg, PAIRS, "cifar100_cross_family")
