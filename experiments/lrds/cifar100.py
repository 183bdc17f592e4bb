"""LR+DS on CIFAR-100, same-family teacher -> student pairs: KD, KD+LR, KD+DS, KD+LR+DS.

    python -m launch.main --config=experiments/lrds/cifar100.py:full --workdir=runs/lrds_c100
    python -m launch.main --config=experiments/lrds/cifar100.py:full:resnet56:resnet20 \
        --workdir=runs/lrds_c100_r56_r20      # one pair only

Training follows the standard RepDistiller recipe the paper builds on (Tian et al. 2020): SGD
0.05 (0.01 for MobileNet/ShuffleNet students), momentum 0.9, wd 5e-4, 240 epochs, x0.1 at
150/180/210, batch 64, crop + flip, T = 4, CE weight 0.1 / KD weight 0.9 (= lambda2 / lambda1).
LR: eta = 0.8 (the paper's studied value). DS: top 80% by last-layer influence ||H^-1 g_i|| of the
student after a CE warm-up ([ours]: 20 epochs; the summary does not say when scores are taken).
'cpu' is a smoke-scale run (5k images, 2 epochs, 1 pair, 1 seed) that needs CIFAR-100 already
prepared in the TFDS data_dir (no downloads at run time).
"""
import ml_collections

from experiments import default
from kdjax.methods.lrds import default_lrds_config

PAIRS = ("resnet56:resnet20", "resnet110:resnet32", "resnet32x4:resnet8x4",
         "wrn_40_2:wrn_16_2", "vgg13:vgg8")
SMALL_LR_STUDENTS = ("mobilenetv2", "mobilenetv2_half", "shufflenetv2", "shufflenetv2_0_5")
STUDENT_LR = {name: 0.01 for name in SMALL_LR_STUDENTS}   # RepDistiller: 0.01 for these


def build(arg: str | None, pairs: tuple[str, ...], table: str) -> ml_collections.ConfigDict:
    """arg = 'cpu' | 'full', optionally followed by ':teacher:student' to run one pair."""
    scale, _, pair = (arg or "cpu").partition(":")
    if scale not in ("cpu", "full"):
        raise ValueError(f"arg must start with 'cpu' or 'full', got {arg!r}")
    c = default.get_config()
    c.method = "lrds"
    c.runner = "kdjax.methods.lrds_train:run"
    c.paper_table = table
    c.pairs = (pair,) if pair else (pairs if scale == "full" else pairs[:1])
    c.data.name = "cifar100"
    c.data.num_validation = 0
    c.data.augment = True
    c.data.batch_size = 64
    c.data.eval_batch_size = 500
    c.model.name, c.teacher.name = c.pairs[0].split(":")[::-1]
    c.teacher.epochs = 240
    c.train.epochs = 240
    c.train.learning_rate = 0.05
    c.student_learning_rates = STUDENT_LR
    c.train.weight_decay = 5e-4
    c.train.schedule = "step"
    c.train.decay_epochs = (150, 180, 210)
    c.train.decay_factor = 0.1
    c.train.checkpoint_every_steps = 2000
    c.kd.cache_teacher = False   # augmented inputs: the teacher runs inside the train step
    c.lrds = default_lrds_config()
    c.lrds.temperature = 4.0
    c.lrds.lambda1, c.lrds.lambda2 = 0.9, 0.1
    c.lrds.lr.eta = 0.8
    c.lrds.ds.fraction = 0.8
    c.lrds.ds.scorer = "influence"
    c.lrds.ds.warmup_epochs = 20
    c.lrds.variants = ("kd", "kd_lr", "kd_ds", "kd_lr_ds")
    c.lrds.seeds = (0, 1, 2)
    c.scale_note = "full setting (RepDistiller CIFAR-100 recipe, 240 epochs, 3 seeds)"
    if scale == "cpu":
        c.progress_bar = False
        c.data.max_train_examples = 5000
        c.data.max_test_examples = 2000
        c.data.eval_batch_size = 250
        c.teacher.epochs = c.train.epochs = 2
        c.train.schedule = "cosine"
        c.lrds.ds.warmup_epochs = 1
        c.lrds.seeds = (0,)
        c.scale_note = (f"reduced scale: {c.pairs[0]} only, 5k CIFAR-100 training images, 2k "
                        "test images, 2 epochs, 1 seed (smoke scale; not comparable to the paper)")
    return c


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    return build(arg, PAIRS, "cifar100_same_family")
