"""CE vs KD students on offline Fashion-MNIST: the harness's own end-to-end check (no paper).

    python -m launch.reproduce --table=kd_fashion_mnist --seeds=3
    python -m launch.main --config=experiments/reproduce/kd_baseline.py --workdir=runs/kd_fm

'cpu': 8k-image training subset, 2k test images, small CNN student (8/16 channels), wider CNN
teacher, 2 epochs each. 'full': all 55k/5k/10k images, 15 epochs (student) / 20 (teacher).
"""
from experiments import default


def get_config(arg: str | None = None):
    arg = arg or "cpu"
    if arg not in ("cpu", "full"):
        raise ValueError(f"arg must be 'cpu' or 'full', got {arg!r}")
    c = default.get_config("kd")
    c.progress_bar = False
    c.tensorboard = False
    c.data.name = "fashion_mnist"
    c.model.name = "cnn_small"
    c.model.kwargs = {"widths": (8, 16), "hidden": 32}
    c.teacher.name = "cnn_small"
    c.teacher.kwargs = {"widths": (32, 64), "hidden": 256}
    c.train.learning_rate = 0.05
    c.train.checkpoint_every_steps = 1000
    if arg == "cpu":
        c.data.max_train_examples = 8000
        c.data.num_validation = 1000
        c.data.max_test_examples = 2000
        c.teacher.epochs = 2
        c.train.epochs = 2
        c.scale_note = ("reduced scale: Fashion-MNIST 8k-image training subset (7k train / 1k "
                        "val), 2k test images, 2 epochs student and teacher")
    else:
        c.teacher.epochs = 20
        c.train.epochs = 15
        c.scale_note = "full setting (all of Fashion-MNIST, 15 / 20 epochs)"
    return c
