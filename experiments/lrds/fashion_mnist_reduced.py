"""LR+DS reduced run on offline Fashion-MNIST (issue 4's CPU run): a deliberately weak teacher.

    python -m launch.main --config=experiments/lrds/fashion_mnist_reduced.py \
        --workdir=runs/lrds_fmnist                  # KD+LR+DS, seed 0
    python -m launch.reproduce --table=lrds_fashion_mnist    # every variant, 3 seeds

The teacher (a 16-unit MLP, 1 epoch) is wrong on a sizeable share of the training set, so label
revision changes many targets. The table's variants (`SCORER_SWEEP`, experiments/tables.py):
CE, KD, KD+LR, KD+DS, KD+LR+DS; DS scores come from the exact last-layer influence ||H^-1 g_i|| of
a 1-epoch CE student; then KD+LR+DS with each other scorer (self / validation influence, TracIn,
loss, margin) in place of it, and the direction ablation: the teacher on the LOWEST-influence 80%
instead (`lrds.ds.lowest`).
'cpu' (default) is this reduced setting; 'full' uses all 55k training images and 15 epochs.
"""
import ml_collections

from experiments import default

# the paper's open question: cheaper DS scorers behind the same interface
SCORER_SWEEP = ("self_influence", "val_influence", "tracin", "loss", "margin")


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    arg = arg or "cpu"
    if arg not in ("cpu", "full"):
        raise ValueError(f"arg must be 'cpu' or 'full', got {arg!r}")
    c = default.get_config("lrds")
    c.progress_bar = False
    c.tensorboard = False
    c.data.name = "fashion_mnist"
    c.data.max_train_examples = 12000 if arg == "cpu" else 0
    c.data.num_validation = 2000 if arg == "cpu" else 5000
    c.data.max_test_examples = 0
    c.data.batch_size = 128
    c.model.name = "mlp"
    c.model.kwargs = {"hidden": (128,)}
    c.teacher.name = "mlp"
    c.teacher.kwargs = {"hidden": (16,)}   # weak on purpose
    c.teacher.epochs = 1
    c.teacher.learning_rate = 0.01
    c.train.epochs = 4 if arg == "cpu" else 15
    c.train.learning_rate = 0.05
    c.train.log_every_steps = 50
    c.train.checkpoint_every_steps = 1000
    c.lrds.ds.warmup_epochs = 1
    c.lrds.ds.scorer = "influence"
    c.lrds.ds.fraction = 0.8
    c.scale_note = ("reduced scale: Fashion-MNIST 12k-image training subset (10k train / 2k val),"
                    " MLP student (128 units, 4 epochs), weak MLP teacher (16 units, 1 epoch)"
                    if arg == "cpu" else
                    "full Fashion-MNIST (55k/5k/10k), MLP student 15 epochs, weak MLP teacher")
    return c
