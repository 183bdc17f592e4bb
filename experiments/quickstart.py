"""The README demo (`make demo`): robust active distillation at CPU scale on offline Fashion-MNIST.

A CNN teacher is trained on |A| = 2000 hard-labeled images; the student first trains on those
alone (round 0: the CE-only student), then each round queries the teacher's soft labels for
b = 1000 more pool images chosen by RAD, MARGIN or UNIFORM, and retrains from scratch with the
KL loss (RAD Alg. 1). A KD student on every pool image (all queries) is the reference.

    python -m launch.main --config=experiments/quickstart.py --workdir=runs/quickstart
"""
from experiments import default


def get_config(arg: str | None = None):
    c = default.get_config()
    c.method = "rad_compare"
    c.method = "kdjax.active.compare:run"
    c.scale_note = ("reduced scale for a 2-core CPU: Fashion-MNIST, small CNNs "
                    "(teacher widths 32/64, student 8/16), |A|=2000, b=1000, 3 rounds, "
                    "6 student epochs; the paper uses CIFAR/SVHN/ImageNet ResNets on TPUs")
    c.data.name = "fashion_mnist"
    c.data.num_validation = 0
    c.data.batch_size = 128
    c.data.eval_batch_size = 1000
    c.model.name = "cnn_small"
    c.model.kwargs = {"widths": (8, 16), "hidden": 32}
    c.teacher.name = "cnn_small"
    c.teacher.kwargs = {"widths": (32, 64), "hidden": 128}
    c.teacher.epochs = 10
    c.train.epochs = 6
    c.train.optimizer = "adam"
    c.train.learning_rate = 3e-3
    c.train.weight_decay = 0.0
    c.train.schedule = "cosine"
    c.train.log_every_steps = 20
    c.train.eval_every_epochs = 1000  # evaluate at the end of each training only
    c.active.num_labeled = 2000
    c.active.budget = 1000
    c.active.rounds = 3
    c.active.strategies = ("rad", "margin", "uniform")
    c.active.num_trials = 1
    c.active.m_estimate = "uniform"
    c.active.b_uniform = 200
    return c

