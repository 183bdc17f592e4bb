"""ALM-KD reduced real-data run on this CPU: Fashion-MNIST, one student of `alm.variant`
(CE, KD λ = 0.9, ALM-KD); the table (experiments/tables.py: alm_fashion_mnist) sweeps the
variants over 3 seeds.

    python -m launch.main --config=experiments/alm/fashion_mnist_reduced.py \
        --config.alm.variant=alm --config.seed=0 --workdir=runs/alm_fmnist_reduced/alm_0
    python -m launch.reproduce --table=alm_fashion_mnist         # 'clean': alm_fashion_mnist_clean
    python -m launch.reproduce --table=alm_fashion_mnist_variants --seeds=5   # issue 20's
    #   variants (experiments/alm/variants.py) beside CE / KD / ALM-KD

Reduced (minutes on 2 CPU cores): 10 000 training / 1 000 validation examples drawn from the
60k training set, the first 5 000 test images, small CNNs (teacher cnn_small widths (32, 64),
hidden 128; student widths (8, 16), hidden 32), 6 epochs, cosine schedule. Default arg 'cpu'
flips 20% of the training labels (teacher and student see the same noisy labels) so that the
learned λ can be compared on flipped vs clean examples; 'clean' keeps the labels and, to fit the
reproduce harness's time budget, uses 5 000 training examples instead of 10 000. λ is updated
every L = 2 steps (paper: 10) so that each example gets a few λ updates in 6 epochs, starts at
the KD baseline's 0.9 and is clipped to [0, 1] (λ > 1 gives clean examples a negative CE weight).
"""
from experiments import default


def get_config(arg: str | None = None):
    arg = arg or "cpu"
    if arg not in ("cpu", "clean"):
        raise ValueError(f"fashion_mnist_reduced takes 'cpu' or 'clean', got {arg!r}")
    c = default.get_config("alm")
    c.progress_bar = False
    c.tensorboard = False
    c.data.name = "fashion_mnist"
    c.data.max_train_examples = 11000
    c.data.num_validation = 1000
    c.data.max_test_examples = 5000
    c.data.batch_size = 128
    c.model.name = "cnn_small"
    c.model.kwargs = {"widths": (8, 16), "hidden": 32}
    c.teacher.name = "cnn_small"
    c.teacher.kwargs = {"widths": (32, 64), "hidden": 128}
    c.teacher.epochs = 6
    c.train.epochs = 6
    c.train.learning_rate = 0.05
    c.train.schedule = "cosine"
    c.train.checkpoint_every_steps = 100
    c.loss.kd_weight = 0.9
    c.alm.variant = "alm"
    c.alm.lambda_init = 0.9
    c.alm.clip = "unit"
    c.alm.update_every = 2
    c.alm.lambda_lr = 1000.0
    c.data.label_noise = 0.2 if arg == "cpu" else 0.0
    if arg == "clean":  # ~6 min instead of ~12 on 2 shared cores
        c.data.max_train_examples = 6000
    n_train = (c.data.max_train_examples - c.data.num_validation) // 1000
    c.scale_note = (f"reduced: Fashion-MNIST {n_train}k/1k/5k, small CNNs, 6 epochs, L=2, "
                    f"{'20% flipped training labels' if arg == 'cpu' else 'clean labels'}")
    return c
