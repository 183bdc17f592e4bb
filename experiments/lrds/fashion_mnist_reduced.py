"""LR+DS reduced run on offline Fashion-MNIST (issue 4's CPU run): a deliberately weak teacher.

    python -m launch.main --config=experiments/lrds/fashion_mnist_reduced.py \
        --workdir=runs/lrds_fmnist

The teacher (a 16-unit MLP, 1 epoch) is wrong on a sizeable share of the training set, so label
revision changes many targets. Variants: CE, KD, KD+LR, KD+DS, KD+LR+DS, 3 seeds each; DS scores
come from the exact last-layer influence ||H^-1 g_i|| of a 1-epoch CE student; then KD+LR+DS with
each other scorer (self / validation influence, TracIn, loss, margin) in place of it, and the
direction ablation: the teacher on the LOWEST-influence 80% instead ('_low').
'cpu' (default) is this reduced setting; 'full' uses all 55k training images and 15 epochs.
"""
import ml_collections

from experiments import default
from kdjax.methods.lrds import default_lrds_config


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    arg = arg or "cpu"
    if arg not in ("cpu", "full"):
        raise ValueError(f"arg must be 'cpu' or 'full', got {arg!r}")
    c = default.get_config()
    c.method = "lrds"
    c.method = "kdjax.methods.lrds_train:run"
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
    c.lrds = default_lrds_config()
    c.lrds.variants = ("ce", "kd", "kd_lr", "kd_ds", "kd_lr_ds", "kd_ds_low", "kd_lr_ds_low")
    c.lrds.seeds = (0, 1, 2)
    c.lrds.ds.warmup_epochs = 1
    c.lrds.ds.scorer = "influence"
    c.lrds.ds.fraction = 0.8
    # the paper's open question: cheaper DS scorers behind the same interface
    c.lrds.scorer_sweep = ("self_influence", "val_influence", "tracin", "loss", "margin")
    c.scale_note = ("reduced scale: Fashion-MNIST 12k-image training subset (10k train / 2k val),"
                    " MLP student (128 units, 4 epochs), weak MLP teacher (16 units, 1 epoch),"
                    " 3 seeds" if arg == "cpu" else
                    "full Fashion-MNIST (55k/5k/10k), MLP student 15 epochs, weak MLP teacher")
    return c
