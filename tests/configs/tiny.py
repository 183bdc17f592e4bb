"""A seconds-long run on sklearn digits: MLP student, MLP teacher.

    python -m launch.main --config=tests/configs/tiny.py --workdir=/tmp/tiny
"""
from experiments import default


def get_config(arg: str | None = None):
    c = default.get_config(arg or "kd")   # the base + the method's own section
    c.progress_bar = False
    c.tensorboard = False
    c.data.name = "digits"
    c.data.num_validation = 200
    c.data.batch_size = 64
    c.data.eval_batch_size = 200
    c.model.name = "mlp"
    c.model.kwargs = {"hidden": (32,)}
    c.teacher.name = "mlp"
    c.teacher.kwargs = {"hidden": (128,)}
    c.teacher.epochs = 3
    c.train.epochs = 3
    c.train.learning_rate = 0.1
    c.train.log_every_steps = 5
    c.train.checkpoint_every_steps = 4
    if "disk" in c:
        c.disk.top_k = 5          # of digits' 10 classes (the paper's K = 20 is for CIFAR-100)
    return c


def override(c, **dotted):
    """Set `c` fields by dotted name: override(c, **{"train.epochs": 1})."""
    for key, value in dotted.items():
        node = c
        *path, last = key.split(".")
        for part in path:
            node = node[part]
        node[last] = value
    return c
