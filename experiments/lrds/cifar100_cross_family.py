"""LR+DS on CIFAR-100, cross-family teacher -> student pairs the model zoo provides.

    python -m launch.main --config=experiments/lrds/cifar100_cross_family.py:full \
        --workdir=runs/lrds_c100_cross             # the first pair, KD+LR+DS, seed 0
    python -m launch.reproduce --table=lrds_cifar100_cross_family   # reduced ('cpu') version

RepDistiller's cross-family pairs, restricted to the models kdjax has (no ShuffleNetV1):
vgg13 -> MobileNetV2, ResNet50 -> MobileNetV2, ResNet50 -> vgg8, resnet32x4 -> ShuffleNetV2.
Same recipe as `cifar100.py` (lr 0.01 for MobileNet/ShuffleNet students).
'cpu': offline Fashion-MNIST, a convolutional teacher (kdjax's small CNN, 2 epochs) -> an MLP
student (one hidden layer of 64 units) as the cross-family pair, otherwise `cifar100.py`'s cpu
setting (10k training images, students 4 epochs).
"""
import ml_collections

from experiments.lrds.cifar100 import build

PAIRS = ("vgg13:mobilenetv2", "resnet50:mobilenetv2", "resnet50:vgg8",
         "resnet32x4:shufflenetv2")
CPU_PAIRS = ("cnn_small:mlp_1x64",)


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    c = build(arg, PAIRS, cpu_pairs=CPU_PAIRS)
    if (arg or "cpu").startswith("cpu"):
        c.teacher.epochs = 2   # the CNN teacher is the one costly model here (~30 s / epoch)
        c.scale_note = c.scale_note.replace(
            "MLP stand-ins for the paper's CNN pairs", "a CNN teacher -> MLP student stand-in "
            "for the paper's cross-family pairs").replace("teacher 3", "teacher 2")
    return c
