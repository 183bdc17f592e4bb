"""CE vs. KD on CIFAR-100, the standard RepDistiller setting (accelerator scale).

resnet56 -> resnet20 by default; `get_config('resnet32x4:resnet8x4')` picks another
teacher:student pair. SGD 0.05, momentum 0.9, wd 5e-4, 240 epochs, step decay ×0.1 at
150/180/210, batch 64, crop+flip, τ = 4 (Tian et al., 2020).

    python -m launch.main --config=experiments/cifar100_kd.py --workdir=gs://BUCKET/c100_kd
    python -m launch.main --config=experiments/cifar100_kd.py:wrn_40_2:wrn_16_2 --workdir=...
"""
from experiments import default


def get_config(arg: str | None = None):
    teacher, student = (arg or "resnet56:resnet20").split(":")
    c = default.get_config("kd")
    c.data.name = "cifar100"
    c.data.num_validation = 0
    c.data.augment = True
    c.data.batch_size = 64
    c.data.eval_batch_size = 500
    c.model.name = student
    c.teacher.name = teacher
    c.teacher.epochs = 240
    c.train.epochs = 240
    c.train.learning_rate = 0.05
    c.train.weight_decay = 5e-4
    c.train.schedule = "step"
    c.train.decay_epochs = (150, 180, 210)
    c.train.decay_factor = 0.1
    c.train.checkpoint_every_steps = 2000
    c.loss.temperature = 4.0
    c.loss.kd_weight = 0.9
    c.teacher.cache_logits = False   # augmented inputs: the teacher runs inside the step
    return c
