"""CE vs. KD on Fashion-MNIST (full 55k/5k/10k), CNN teacher -> small CNN student.

    python -m launch.main --config=experiments/fashion_mnist_kd.py --workdir=runs/fmnist_kd
    python -m launch.main --config=experiments/fashion_mnist_kd.py --config.method=ce \
        --workdir=runs/fmnist_ce
"""
from experiments import default


def get_config(arg: str | None = None):
    c = default.get_config("kd")
    c.data.name = "fashion_mnist"
    c.data.num_validation = 5000
    c.model.name = "cnn_small"
    c.model.kwargs = {"widths": (8, 16), "hidden": 32}
    c.teacher.name = "cnn_small"
    c.teacher.kwargs = {"widths": (64, 128), "hidden": 512}
    c.teacher.epochs = 15
    c.train.epochs = 15
    c.train.learning_rate = 0.05
    return c
