"""The README demo: teacher, CE student and KD student on offline Fashion-MNIST, CPU-sized.

Reduced scale (stated in the output): 20k training images, a small CNN student (`cnn_small`,
width 8/16) and a larger CNN teacher, 3 epochs each.

    python -m launch.main --config=experiments/quickstart.py --workdir=runs/quickstart
"""
from experiments import default


def get_config(arg: str | None = None):
    c = default.get_config()
    c.method = "kd"
    c.baseline_ce = True
    c.data.name = "fashion_mnist"
    c.data.max_train_examples = 20000
    c.data.num_validation = 2000
    c.data.batch_size = 128
    c.model.name = "cnn_small"
    c.model.kwargs = {"widths": (8, 16), "hidden": 32}
    c.teacher.name = "cnn_small"
    c.teacher.kwargs = {"widths": (32, 64), "hidden": 256}
    c.teacher.epochs = 4
    c.train.epochs = 3
    c.train.learning_rate = 0.05
    c.train.log_every_steps = 20
    c.scale_note = ("reduced scale: Fashion-MNIST 20k-image training subset, small CNNs, "
                    "3-4 epochs on CPU")
    return c
