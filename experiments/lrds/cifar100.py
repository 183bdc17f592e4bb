"""LR+DS on CIFAR-100, same-family teacher -> student pairs: one run of KD / KD+LR / KD+DS /
KD+LR+DS (by `lrds.lr.enabled`, `lrds.ds.enabled`) on one pair and one seed.

    python -m launch.main --config=experiments/lrds/cifar100.py:full --workdir=runs/lrds_c100
    python -m launch.main --config=experiments/lrds/cifar100.py:full:resnet110:resnet32 \
        --config.lrds.lr.enabled=False --config.seed=1 --workdir=runs/lrds_c100_r110_kdds
    python -m launch.reproduce --table=lrds_cifar100    # every pair x variant x seed, cpu scale

The sweep over `PAIRS` (or `CPU_PAIRS`), the variants and the seeds is the table's grid
(experiments/tables.py, `pair_setting`). Training follows the standard RepDistiller recipe the
paper builds on (Tian et al. 2020): SGD 0.05 (0.01 for MobileNet/ShuffleNet students), momentum
0.9, wd 5e-4, 240 epochs, x0.1 at 150/180/210, batch 64, crop + flip, T = 4, CE weight 0.1 / KD
weight 0.9 (the paper's λ2 / λ1). LR: eta = 0.8 (the paper's studied value). DS: top 80% by
last-layer influence ||H^-1 g_i|| of the student after a CE warm-up ([ours]: 20 epochs; the
summary does not say when scores are taken).

'cpu' is a declared reduced version on OFFLINE Fashion-MNIST (no TFDS data needed): the paper's
convolutional pairs cost minutes per epoch on a 2-core CPU, so each is mirrored by an MLP pair of
the same structure (`CPU_PAIRS`: deeper -> shallower and wider -> thinner, same family), with the
same losses, T, weights, eta and DS fraction; 10k training images, the 10k test images, teacher 3
epochs, students 4 epochs (cosine), batch 128, no augmentation, 3 seeds.
"""
import ml_collections

from experiments import default
from kdjax.reproduce.sweep import Setting

PAIRS = ("resnet56:resnet20", "resnet110:resnet32", "resnet32x4:resnet8x4",
         "wrn_40_2:wrn_16_2", "vgg13:vgg8")
LEARNING_RATE = 0.05
SMALL_LR_STUDENTS = ("mobilenetv2", "mobilenetv2_half", "shufflenetv2", "shufflenetv2_0_5")
STUDENT_LR = {name: 0.01 for name in SMALL_LR_STUDENTS}   # RepDistiller: 0.01 for these

# cpu scale: names in pairs that stand for a zoo model with its own kwargs; the MLPs mirror the
# paper's deep->shallow / wide->thin pairs.
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


def model_alias(name: str) -> tuple[str, dict]:
    """(zoo name, kwargs) of a model name in a pair: a `CPU_MODELS` stand-in, else the zoo model
    `name` with its own defaults."""
    alias = CPU_MODELS.get(name)
    return (name, {}) if alias is None else (alias["name"], dict(alias["kwargs"]))


def pair_setting(pair: str) -> Setting:
    """The config fields of one 'teacher:student' pair (aliases resolved; the student's own
    learning rate, RepDistiller's 0.01 for MobileNet/ShuffleNet)."""
    teacher, _, student = pair.partition(":")
    if not teacher or not student:
        raise ValueError(f"a pair must read 'teacher:student', got {pair!r}")
    fields = []
    for field, name in (("teacher", teacher), ("model", student)):
        zoo, kwargs = model_alias(name)
        fields += [(f"{field}.name", zoo), (f"{field}.kwargs", kwargs)]
    fields.append(("train.learning_rate", STUDENT_LR.get(student, LEARNING_RATE)))
    return Setting(pair, tuple(fields))


def build(arg: str | None, pairs: tuple[str, ...],
          cpu_pairs: tuple[str, ...] = CPU_PAIRS) -> ml_collections.ConfigDict:
    """arg = 'cpu' | 'full', optionally followed by ':teacher:student' (default: the first of
    `pairs` / `cpu_pairs`)."""
    scale, _, pair = (arg or "cpu").partition(":")
    if scale not in ("cpu", "full"):
        raise ValueError(f"arg must start with 'cpu' or 'full', got {arg!r}")
    c = default.get_config("lrds")
    c.data.name = "cifar100"
    c.data.num_validation = 0
    c.data.augment = True
    c.data.batch_size = 64
    c.data.eval_batch_size = 500
    c.teacher.epochs = 240
    c.train.epochs = 240
    c.train.weight_decay = 5e-4
    c.train.schedule = "step"
    c.train.decay_epochs = (150, 180, 210)
    c.train.decay_factor = 0.1
    c.train.checkpoint_every_steps = 2000
    c.teacher.cache_logits = False   # augmented inputs: the teacher runs inside the train step
    c.loss.temperature = 4.0
    c.loss.kd_weight, c.loss.ce_weight = 0.9, 0.1
    c.lrds.lr.eta = 0.8
    c.lrds.ds.fraction = 0.8
    c.lrds.ds.scorer = "influence"
    c.lrds.ds.warmup_epochs = 20
    c.scale_note = "full setting (RepDistiller CIFAR-100 recipe, 240 epochs)"
    if scale == "cpu":
        c.progress_bar = False
        c.tensorboard = False
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
        c.scale_note = (
            "reduced scale: offline Fashion-MNIST instead of CIFAR-100 (10k-image training "
            "subset, full 10k test set), MLP stand-ins for the paper's CNN pairs (pair column; "
            "mlp_AxB = A hidden layers of B units), teacher "
            f"{c.teacher.epochs} / student {c.train.epochs} "
            "epochs (cosine, batch 128, no augmentation), DS warm-up 1 epoch; "
            "same losses, T=4, weights 0.9/0.1, eta=0.8, DS 80%; "
            "not comparable to the paper's numbers")
    for field, value in pair_setting(pair or (pairs if scale == "full" else cpu_pairs)[0]).fields:
        *parent, leaf = field.split(".")
        c[parent[0]][leaf] = value
    return c


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    return build(arg, PAIRS)
