"""The README demo (`make demo`): robust active distillation at CPU scale on offline Fashion-MNIST.

Per trial (3 trials, seeds 0-2): a CNN teacher is trained on |A| = 500 hard-labeled images; the
student (an MLP) first trains on those alone (round 0: the CE-only student, shared by every
strategy of the trial), then each of 2 rounds queries the teacher's soft labels for b = 500 more
images of a 5,000-image pool, chosen by RAD, MARGIN or UNIFORM, and retrains from scratch with
the KL loss (RAD Alg. 1). RAD spends b_uniform = 100 of its first b on estimating the teacher's
error rate (Sec. 3.3). The strategies of a trial share its split, teacher and round-0 student,
so the output compares them by paired differences over the trials (95% t-intervals), and
prints m̂ against the teacher's true number of mistakes m on the pool, and w.

    python -m launch.main --config=experiments/quickstart.py --workdir=runs/quickstart

Every training has the same batch shape and every student the same architecture, so the
compiled steps are reused across rounds, strategies and trials (the persistent compilation
cache of launch/runtime.py serves the re-traced steps).
"""

from experiments import default


def get_config(arg: str | None = None):
    del arg
    c = default.get_config("kdjax.methods.rad.compare:run")
    c.scale_note = ("reduced scale for a 2-core CPU: Fashion-MNIST, CNN teacher (widths 32/64) "
                    "on |A|=500, MLP student (64 units, 30 epochs), pool 5,000, b=500, 2 rounds "
                    "(20% of the pool), 3 trials; the paper uses CIFAR/SVHN/ImageNet ResNets "
                    "on TPUs and 10 trials")
    c.tensorboard = False
    c.data.name = "fashion_mnist"
    c.data.num_validation = 0
    c.data.max_train_examples = 6000
    c.data.max_test_examples = 5000
    c.data.batch_size = 64
    c.data.eval_batch_size = 1000
    c.model.name = "mlp"
    c.model.kwargs = {"hidden": (64,)}
    c.teacher.name = "cnn_small"
    c.teacher.kwargs = {"widths": (32, 64), "hidden": 128}
    c.teacher.epochs = 30
    c.train.epochs = 30
    c.train.optimizer = "adam"
    c.train.learning_rate = 3e-3
    c.train.weight_decay = 0.0
    c.train.schedule = "cosine"
    c.train.log_every_steps = 1000
    c.train.eval_every_epochs = 1000  # evaluate at the end of each training only
    c.train.checkpoint_every_steps = 10_000
    c.active.num_labeled = 500
    c.active.pool_size = 5000
    c.active.budget = 500
    c.active.rounds = 2
    c.active.strategies = ("rad", "margin", "uniform")
    c.active.num_trials = 3
    c.active.m_estimate = "uniform"
    c.active.b_uniform = 100
    c.active.claim.text = "RAD outperforms MARGIN and UNIFORM (Sec. 4, Fig. 3)"
    c.active.claim.kind, c.active.claim.on = "greater", "all"
    c.active.claim.pairs = (("rad", "margin"), ("rad", "uniform"))
    return c
