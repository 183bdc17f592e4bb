"""The ALM-KD paper's Sec. 6 training recipe and its declared CPU reduction, shared by the
real-data configs of this folder (fig5, table1-3)."""
import ml_collections

from experiments import default

# Training-set sizes of the paper's datasets, for its 90/10 train/validation split (Sec. 6).
TRAIN_SIZES = {"cifar10": 50000, "cifar100": 50000, "cars196": 8144, "stanford_dogs": 12000,
               "fgvc_aircraft": 6667, "fashion_mnist": 60000}


def paper_recipe(scale: str, dataset: str = "cifar100") -> ml_collections.ConfigDict:
    """A method='alm' config with the Sec. 6 recipe ('full') or its CPU reduction ('cpu').

    full: SGD lr 0.1, momentum 0.9, weight decay 5e-4, lr × 0.2 at epochs 60 / 120 / 160, 200
    epochs (teachers too), 10% of `dataset`'s training set held out for validation, crop+flip
    augmentation, batch 128 (the paper does not give the batch size). cpu: Fashion-MNIST
    5k/500/2k, 2 epochs, L = 2: a smoke run of the same code path. Both clip λ to [0, 1] (open
    in the paper): unclipped, η_λ = 1000 drove λ (hence the KL weight) up until the loss
    overflowed (NaN at step 12 of table3.py:cpu).
    """
    if scale not in ("cpu", "full"):
        raise ValueError(f"scale must be 'cpu' or 'full', got {scale!r}")
    c = default.get_config("alm")
    c.loss.kd_weight = 0.9   # λ of KD / TAKD / DGKD (Sec. 6.2: "we use λ = 0.9")
    if scale == "full":
        if dataset not in TRAIN_SIZES:
            raise ValueError(f"dataset {dataset!r} has no known training-set size; known: "
                             f"{', '.join(TRAIN_SIZES)}")
        c.data.name = dataset
        c.data.num_validation = int(round(0.1 * TRAIN_SIZES[dataset]))
        c.data.augment = True
        c.data.batch_size = 128
        c.train.epochs = c.teacher.epochs = 200
        c.train.learning_rate, c.train.momentum, c.train.weight_decay = 0.1, 0.9, 5e-4
        c.train.schedule, c.train.decay_epochs, c.train.decay_factor = "step", (60, 120, 160), 0.2
        c.train.checkpoint_every_steps = 1000
        c.scale_note = "full setting"
    else:
        c.progress_bar = False
        c.tensorboard = False
        c.data.name = "fashion_mnist"
        c.data.max_train_examples = 5500
        c.data.num_validation = 500
        c.data.max_test_examples = 2000
        c.data.batch_size = 128
        c.train.epochs = c.teacher.epochs = 2
        c.train.learning_rate = 0.05
        c.train.schedule = "cosine"
        c.alm.update_every = 2
    c.alm.clip = "unit"
    return c


def cpu_models(c: ml_collections.ConfigDict, teacher: tuple, student: tuple) -> None:
    """Small CNN stand-ins (widths, hidden) for the paper's teacher and student at 'cpu' scale."""
    c.teacher.name, c.model.name = "cnn_small", "cnn_small"
    c.teacher.kwargs = {"widths": teacher[0], "hidden": teacher[1]}
    c.model.kwargs = {"widths": student[0], "hidden": student[1]}


def parse_arg(arg: str | None, name: str, default_dataset: str,
              extra: tuple = ()) -> tuple[str, str]:
    """'cpu' | 'full' | 'full:<dataset>' (| one of `extra`) -> (scale, dataset)."""
    arg = arg or "cpu"
    scale, _, dataset = arg.partition(":")
    if scale not in ("cpu", "full") + tuple(extra) or (dataset and scale != "full"):
        raise ValueError(f"{name} takes 'cpu', 'full' or 'full:<dataset>'"
                         + (f" or {', '.join(extra)}" if extra else "") + f", got {arg!r}")
    return scale, dataset or default_dataset
