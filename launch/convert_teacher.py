"""Convert a published PyTorch teacher (.pth/.pt) into a kdjax checkpoint.

    python -m launch.convert_teacher --model=resnet32x4 --num_classes=100 \
        --torch=save/models/resnet32x4_vanilla/ckpt_epoch_240.pth --out=teachers/resnet32x4

writes `<out>/checkpoints/0/` (orbax, `{'params', 'batch_stats'}`), which
`kdjax.train.checkpoint.load_variables(<out>)` and `config.teacher.checkpoint=<out>` read. Names are
kdjax's (`kdjax.models.list_models()`); RepDistiller's 'ResNet50', 'MobileNetV2', 'ShuffleV2' are
accepted too. Needs PyTorch (`pip install 'kdjax[torch]'`); the converted checkpoint does not.
"""
from __future__ import annotations

import math
import os

from absl import app, flags

_MODEL = flags.DEFINE_string("model", None, "kdjax model name of the teacher, e.g. resnet32x4.")
_NUM_CLASSES = flags.DEFINE_integer("num_classes", None, "Classes of the teacher's head.")
_TORCH = flags.DEFINE_string("torch", None, "The PyTorch .pth/.pt file (RepDistiller, mdistiller "
                             "or torchvision).")
_OUT = flags.DEFINE_string("out", None, "Directory to write <out>/checkpoints/0 into.")
flags.mark_flags_as_required(["model", "num_classes", "torch", "out"])


def convert(name: str, num_classes: int, torch_path: str, out: str) -> str:
    """Convert `torch_path` and save it as step 0 under `<out>/checkpoints`; returns that dir."""
    directory = os.path.join(os.path.abspath(out), "checkpoints")
    if os.path.isdir(directory) and os.listdir(directory):
        raise FileExistsError(f"--out: {directory} already holds a checkpoint; remove it or "
                              "choose another --out")
    import jax  # late: the checks above need none of jax / torch

    from kdjax.models import from_torch
    from kdjax.train.checkpoint import Checkpointer

    variables = jax.device_get(from_torch(name, num_classes, torch_path))
    ckpt = Checkpointer(directory, max_to_keep=1)
    ckpt.save(0, variables, force=True)
    ckpt.wait()
    ckpt.close()
    count = sum(math.prod(x.shape) for x in jax.tree.leaves(variables["params"]))
    print(f"{torch_path} -> {directory}/0 ({name}, {num_classes} classes, {count:,} params)",
          flush=True)
    return directory


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    convert(_MODEL.value, _NUM_CLASSES.value, _TORCH.value, _OUT.value)


if __name__ == "__main__":
    app.run(main)
