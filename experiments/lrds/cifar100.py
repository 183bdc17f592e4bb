"""LR+DS on CIFAR-100, same-family teacher -> student pairs: KD, KD+LR, KD+DS, KD+LR+DS.

    python -m launch.main --config=experiments/lrds/cifar100.py:full --workdir=runs/lrds_c100
    python -m launch.main --config=experiments/lrds/cifar100.py:full:resnet56:resnet20 \
        --workdir=runs/lrds_c100_r56_r20      # one pair only
    python -m launch.reproduce --table=lrds_cifar100    # the reduced ('cpu') version

Training follows the standard RepDistiller recipe the paper builds on (Tian et al. 2020): SGD
0.05 (0.01 for MobileNet/ShuffleNet students), momentum 0.9, wd 5e-4, 240 epochs, x0.1 at
150/180/210, batch 64, crop + flip, T = 4, CE weight 0.1 / KD weight 0.9 (= lambda2 / lambda1).
LR: eta = 0.8 (the paper's studied value). DS: top 80% by last-layer influence ||H^-1 g_i|| of the
student after a CE warm-up ([ours]: 20 epochs; the summary does not say when scores are taken).

'cpu' is a declared reduced version on OFFLINE Fashion-MNIST (no TFDS data needed): the paper's
convolutional pairs cost minutes per epoch on a 2-core CPU, so each is mirrored by an MLP pair of
the same structure (`CPU_PAIRS`: deeper -> shallower and wider -> thinner, same family), with the
same losses, T, lambdas, eta and DS fraction; 10k training images, the 10k test images, teacher 3
epochs, students 4 epochs (cosine), batch 128, no augmentation, 3 seeds.
"""
import ml_collections

from experiments import default
from kdjax.methods.lrds import default_lrds_config
from kdjax.methods.lrds_train import model_alias

PAIRS = ("resnet56:resnet20", "resnet110:resnet32", "resnet32x4:resnet8x4",
         "wrn_40_2:wrn_16_2", "vgg13:vgg8")
SMALL_LR_STUDENTS = ("mobilenetv2", "mobilenetv2_half", "shufflenetv2", "shufflenetv2_0_5")
STUDENT_LR = {name: 0.01 for name in SMALL_LR_STUDENTS}   # RepDistiller: 0.01 for these

# cpu scale: names in pairs that stand for a zoo model with its own kwargs (see
# kdjax.methods.lrds_train.run); the MLPs mirror the paper's deep->shallow / wide->thin pairs.
CPU_MODELS = {
    "mlp_3x256": {"name": "mlp", "kwargs": {"hidden": (256, 256, 256)}},   # ~ resnet56
    "mlp_1x64": {"name": "mlp", "kwargs": {"hidden": (64,)}},              # ~ resnet20
    "mlp_1x1024": {"name": "mlp", "kwargs": {"hidden": (1024,)}},          # ~ resnet32x4
    "mlp_1x32": {"name": "mlp", "kwargs": {"hidden": (32,)}},              # ~ resnet8x4
    "mlp_4x256": {"name": "mlp", "kwargs": {"hidden": (256,) * 4}},        # ~ resnet34
    "mlp_2x256": {"name": "mlp", "kwargs": {"hidden": (256, 256)}},        # ~ resnet18
    "cnn_small": {"name": "cnn_small", "kwargs": {}},                      # conv teacher
}
CPU_PAIRS = ("mlp_3x256:mlp_1x64", "mlp_1x1024:mlp_1x32")
CPU_SEEDS = (0, 1, 2)


def _set_pair(c: ml_collections.ConfigDict, pair: str) -> None:
    """model / teacher name and kwargs of one 'teacher:student' pair (aliases resolved)."""
    for field, name in zip(("teacher", "model"), pair.split(":")):
        c[field].name, c[field].kwargs = model_alias(c, name)


def build(arg: str | None, pairs: tuple[str, ...], table: str,
          cpu_pairs: tuple[str, ...] = CPU_PAIRS) -> ml_collections.ConfigDict:
    """arg = 'cpu' | 'full', optionally followed by ':teacher:student' to run one pair."""
    scale, _, pair = (arg or "cpu").partition(":")
    if scale not in ("cpu", "full"):
        raise ValueError(f"arg must start with 'cpu' or 'full', got {arg!r}")
    c = default.get_config()
    c.method = "lrds"
    c.method = "kdjax.methods.lrds_train:run"
    c.paper_table = table
    c.model_aliases = {}
    c.pairs = (pair,) if pair else (pairs if scale == "full" else cpu_pairs)
    c.data.name = "cifar100"
    c.data.num_validation = 0
    c.data.augment = True
    c.data.batch_size = 64
    c.data.eval_batch_size = 500
    c.teacher.epochs = 240
    c.train.epochs = 240
    c.train.learning_rate = 0.05
    c.student_learning_rates = STUDENT_LR
    c.train.weight_decay = 5e-4
    c.train.schedule = "step"
    c.train.decay_epochs = (150, 180, 210)
    c.train.decay_factor = 0.1
    c.train.checkpoint_every_steps = 2000
    c.teacher.cache_logits = False   # augmented inputs: the teacher runs inside the train step
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
        c.tensorboard = False
        c.model_aliases = CPU_MODELS
        c.data.name = "fashion_mnist"   # offline
        c.data.augment = False
        c.teacher.cache_logits = True       # no augmentation: teacher logits computed once
        c.data.max_train_examples = 10000
        c.data.max_test_examples = 0
        c.data.batch_size = 128
        c.data.eval_batch_size = 1000
        c.teacher.epochs, c.train.epochs = 3, 4
        c.train.schedule = "cosine"
        c.train.log_every_steps = 50
        c.train.checkpoint_every_steps = 1000
        c.lrds.ds.warmup_epochs = 1
        c.lrds.seeds = CPU_SEEDS
        c.scale_note = (
            "reduced scale: offline Fashion-MNIST instead of CIFAR-100 (10k-image training "
            "subset, full 10k test set), MLP stand-ins for the paper's CNN pairs (pair column; "
            "mlp_AxB = A hidden layers of B units), teacher "
            f"{c.teacher.epochs} / student {c.train.epochs} "
            "epochs (cosine, batch 128, no augmentation), DS warm-up 1 epoch, "
            f"{len(c.lrds.seeds)} seeds; same losses, T=4, lambda 0.9/0.1, eta=0.8, DS 80%; "
            "not comparable to the paper's numbers")
    _set_pair(c, c.pairs[0])
    return c


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    return build(arg, PAIRS, "cifar100_same_family")
