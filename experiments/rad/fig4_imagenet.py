"""RAD Fig. 4 (Sec. 4.2, App. D.2): ImageNet, ResNet-50 teacher -> ResNet-18 student.

Paper's setting (accelerator; ImageNet prepared for TFDS as imagenet2012):

    python -m launch.main --config=experiments/rad/fig4_imagenet.py:full \
        --workdir=runs/rad_fig4_imagenet

Reduced CPU version (offline Fashion-MNIST; same strategies, SGD + the D.2 schedule shape):

    python -m launch.main --config=experiments/rad/fig4_imagenet.py:cpu \
        --workdir=runs/rad_fig4_cpu

Full: |A| = 10% of the train set, the teacher trained on A; budgets b ∈ {3, 5, 7, 9, 11}% of
|I| (the figure's x-axis; 3 trials each). Alg. 1's rounds give cumulative queries, so the
per-round budget is 2% of |I| after a first round of 3% -- here b = 2%|I| per round with a
first-round offset is not expressible, so we use b = 1%|I| per round for 11 rounds, which
passes through every plotted budget (3, 5, 7, 9, 11%) [ours]. CORESET and UNIXKD are excluded
(Sec. 4.2); CLUSTER MARGIN uses D.2's bucketed HAC (buckets of 10,000, 500 clusters each).
Student: 100 epochs, SGD momentum 0.9, batch 256, 5 warm-up epochs to 0.1 then ×0.1 at epochs
35, 65, 85 ('imagenet_piecewise'), random horizontal flips; validation set 10,000 (D.1).
"""
from __future__ import annotations

from experiments.rad import _base

IMAGENET_TRAIN = 1_281_167
STRATEGIES = ("rad", "margin", "entropy", "cluster_margin", "uniform")  # Sec. 4.2


def get_config(arg: str | None = None):
    scale, rest = _base.parse_arg(arg)
    if rest:
        raise ValueError(f"fig4_imagenet takes 'cpu' or 'full', got {arg!r}")
    if scale == "cpu":
        c = _base.cpu_base("Fig. 4, ImageNet ResNet-50 -> ResNet-18", strategies=STRATEGIES)
        c.train.optimizer = "sgd"
        c.train.learning_rate = 0.1
        c.train.momentum = 0.9
        c.train.schedule = "cosine"  # D.2's 100-epoch piecewise schedule needs >= 85 epochs
        c.scale_note = (c.scale_note.replace(" (Adam, cosine)", "") +
                        "; SGD momentum 0.9 (D.2) with a cosine schedule over 4 epochs")
        _base.own_seeds(c, "rad_fig4")
        return _claim(c)
    c = _base.full_base("cifar10", "resnet", epochs=100, num_labeled=IMAGENET_TRAIN // 10,
                        budget=IMAGENET_TRAIN // 100, rounds=11, trials=3)
    c.data.name = "imagenet2012"
    c.data.num_validation = 10_000      # D.1
    # D.2: random horizontal flips only; kdjax's augment adds the CIFAR random crop (pad 4),
    # a deviation stated in scale_note until the pipeline has a flip-only mode.
    c.data.augment = True
    c.data.batch_size = 256             # D.2
    c.data.eval_batch_size = 1000
    c.model.name, c.teacher.name = "resnet18", "resnet50"
    c.train.optimizer = "sgd"           # D.2
    c.train.momentum = 0.9
    c.train.learning_rate = 0.1
    c.train.weight_decay = 0.0          # not stated in D.2 [ours: 0]
    c.train.schedule = "imagenet_piecewise"
    c.train.warmup_epochs = 5
    c.active.strategies = STRATEGIES
    # D.2: HAC in buckets of 10,000 until 500 clusters each, 56,000 in all; our
    # cluster_embeddings takes the total and gives each bucket its share.
    c.active.num_clusters = 56_000
    c.active.cluster_bucket_size = 10_000
    c.scale_note = ("full setting, except: augmentation is crop (pad 4) + flip where D.2 "
                    "uses flips only; b = 1%|I| per round over 11 rounds covers the plotted "
                    "budgets 3..11%|I|")
    return _claim(c)


def _claim(c):
    return _base.set_claim(c, "RAD consistently improves upon the compared strategies on "
                           "ImageNet (Sec. 4.2, Fig. 4)", "greater",
                           [s for s in STRATEGIES if s != "rad"])
