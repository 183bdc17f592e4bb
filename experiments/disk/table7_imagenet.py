"""DiSK Table 7 (App. A.6): ImageNet-1K, ResNet-50 teacher -> ResNet-18 student.

    python -m launch.reproduce --table=disk_table7_imagenet               # 'cpu' (default)
    python -m launch.reproduce --table=disk_table7_imagenet --scale=full
    python -m launch.main --config=experiments/disk/table7_imagenet.py:full \\
        --workdir=runs/disk_table7 [--config.teacher.checkpoint=<kdjax ResNet-50 checkpoint>]

Rows: CE, KD, DiSK and SimKD students (kdjax.methods.disk, `disk.variant` 'ce', 'kd', 'disk',
'simkd'; one run each, swept by experiments/tables.py) beside DISK['table7'] in
papers/paper_numbers.py (CE / KD / SemCKD / SimKD / DiSK; the paper borrows the
baselines from Chen et al. 2022; SemCKD is listed, not run).

'full' = A.6: TFDS imagenet2012 (1.28M train / the 50k validation split as test), ResNet-50 ->
ResNet-18, DiSK with "the default hyper-parameters from the CIFAR-100 setup" (A.5: K = 20,
λ in [0.1, 50], λ_T = 50, τ_T = 4, α = 0.1) and NO CE warm start ("for a fair comparison").
A.3: random crop + flip + mean/std; kdjax's `augment` is a pad-4 random crop + flip on the
pipeline's resized, center-cropped 224x224 images (a deviation from RandomResizedCrop). The paper
gives no ImageNet schedule; we use the baselines' (SimKD / SemCKD authors' ImageNet script:
90 epochs, batch 256, SGD 0.1 momentum 0.9, ×0.1 at epochs 30 and 60, weight decay 1e-4)
[ours]. The paper's teacher is SimKD's pre-trained PyTorch ResNet-50, which kdjax cannot load:
pass a kdjax checkpoint as teacher.checkpoint, else the teacher is trained here with the same
schedule (a deviation). One seed (the paper reports one number per cell).

'cpu' (default) = a declared reduced stand-in: offline Fashion-MNIST (5k train / 1k val / 2k
test), cnn_small teacher (widths 16/32, 64 hidden; 3 epochs) for ResNet-50 and a cnn_small
student (widths 4/8, 16 hidden) for ResNet-18, 6 student epochs from scratch (no warm start, as
A.6), K = 3 of 10 classes, λ in [5, 50] with λ_T = 3 rounds (as fashion_mnist_reduced.py; λ_max
must exceed the multiplier at which the budget binds, tests/test_disk_budget.py), 3 seeds.
The paper column is ImageNet.
"""
import ml_collections

from experiments.disk import recipe
from experiments.disk import table3

PAIR = "resnet50:resnet18"


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    arg = arg or "cpu"
    if arg not in ("cpu", "full"):
        raise ValueError(f"arg must be 'cpu' or 'full', got {arg!r}")
    c = recipe.base()                  # config.disk: A.5 defaults (K 20, λ 0.1..50, λ_T 50)
    c.loss.temperature = 4.0           # [paper] A.5 τ_T
    c.loss.ce_weight = 0.1             # DiSK's α ([official] l_aux); KD weight 1 − α
    c.loss.kd_weight = 0.9
    c.disk.warm_start_epochs = 0       # [paper] A.6: no CE warm start on ImageNet
    c.disk.s_epochs = 1
    c.disk.g_epochs = 1
    c.train.optimizer = "sgd"
    c.train.momentum = 0.9
    if arg == "full":
        c.data.name = "imagenet2012"
        c.data.num_validation = 0
        c.data.augment = True          # [paper] A.3 random crop + flip
        c.data.batch_size = 256        # [SimKD/SemCKD ImageNet script]
        c.data.eval_batch_size = 1000
        c.model.name, c.teacher.name = "resnet18", "resnet50"
        c.teacher.epochs = 90
        c.train.epochs = 90
        c.train.learning_rate = 0.1
        c.train.weight_decay = 1e-4
        c.train.schedule = "step"
        c.train.decay_epochs = (30, 60)
        c.train.decay_factor = 0.1
        c.train.log_every_steps = 500
        c.train.checkpoint_every_steps = 5000
        c.teacher.cache_logits = False     # augmented inputs: the teacher runs in the step
        c.train.eval_every_epochs = 10
        c.scale_note = ("full setting (A.6) except: teacher trained here unless a kdjax "
                        "ResNet-50 checkpoint is given (the paper borrows SimKD's PyTorch one); "
                        "schedule = the baselines' 90-epoch step schedule (paper silent); "
                        "pad-4 crop + flip on 224x224 center crops")
        return c
    table3.small_cnn_pair(table3.reduced_cpu(c, rounds=6))
    c.data.eval_batch_size = 1000
    c.train.weight_decay = 5e-4
    c.train.schedule = "cosine"
    c.disk.lam_period = 3
    c.disk.delta_period = 3
    c.train.eval_every_epochs = 3
    c.scale_note = ("reduced scale: Fashion-MNIST (5k train / 1k val / 2k test) for ImageNet, "
                    "cnn_small 16/32/64 teacher (3 epochs) -> cnn_small 4/8/16 student for "
                    "ResNet-50 -> ResNet-18, 6 epochs from scratch (no warm start, as A.6), "
                    "K = 3, λ in [5, 50], 3 seeds; paper column = ImageNet")
    return c
