"""DiSK reduced run on offline Fashion-MNIST (issue 9: one Table 3 row at CPU scale).

    python -m launch.reproduce --table=disk_fashion_mnist            # variants x 3 seeds
    python -m launch.main --config=experiments/disk/fashion_mnist_reduced.py \\
        --workdir=runs/disk_fmnist --config.disk.variant=kd --config.seed=1     # one run

Stands in for the Table 3 row ResNet10-l -> ResNet10-xxs (CIFAR-100): a large capacity
mismatch between a cnn_small teacher (widths 16/32, 64 hidden) and a tiny cnn_small student
(widths 2/4, 8 hidden, ~1.8k parameters). CE, KD and DiSK, 3 seeds each, all from the same
A.5 CE warm start (2 epochs), then 8 student epochs each. DiSK: Alg. 1 with R = 8 rounds of
3 guide epochs + 1 student epoch, λ in [5, 50] (A.5 λ_max; see below), λ_T = 4 rounds, K = 3 of
10 classes, τ_S fitted (Sec. 3.2). The paper's column printed beside ours is that CIFAR-100
row (different data and models: read the ordering, not the values).
'cpu' (default) is this setting; 'full' uses all 55k training images and 40 epochs.

Measured with 'cpu' at 01c337f (`python -m launch.reproduce --table=disk_fashion_mnist`,
seeds 0/1/2, 284 s of point wall time on the 2-core CPU; teacher 86.21%; docs/reproduction.md):
    CE warm start only (2 ep)  70.74 ± 5.93   (77.59, 67.10, 67.54)
    CE                         78.12 ± 3.66   (82.30, 76.58, 75.48)   paper (CIFAR-100) 32.05
    KD                         76.32 ± 3.11   (79.91, 74.50, 74.55)   paper 32.64
    DiSK                       78.63 ± 2.96   (81.87, 76.07, 77.94)   paper 37.56
DiSK > KD on every seed (+2.31 [−0.07, +4.69] pts paired, n = 3); DiSK − CE +0.51 [−3.70,
+4.71]: three seeds do not separate them. The guide follows the budget: usage (Eq. 3, official
normalisation) / δ per round, seed 0: 1.12/0.60 (λ = 5 < μ*), 0.53/0.57, 0.42/0.50, 0.31/0.43,
0.62/0.54 (λ back to 5), 0.56/0.52, 0.27/0.47, 0.28/0.42; mean g on misclassified points
0.09..0.53 over the seeds' rounds. Before the guide fix (λ in [1, 5], guide lr 0.01) the guide
sat at g = 1 on every point (usage 2.0..3.7 against δ ≈ 0.5) for rounds 1-7, so that run did
not test the method.
"""
import ml_collections

from experiments.disk import recipe


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    arg = arg or "cpu"
    if arg not in ("cpu", "full"):
        raise ValueError(f"arg must be 'cpu' or 'full', got {arg!r}")
    cpu = arg == "cpu"
    c = recipe.base()
    c.progress_bar = False
    c.tensorboard = False
    c.data.name = "fashion_mnist"
    c.data.max_train_examples = 12000 if cpu else 0
    c.data.num_validation = 2000 if cpu else 5000
    c.data.batch_size = 128
    c.data.eval_batch_size = 1000
    c.model.name = "cnn_small"
    c.model.kwargs = {"widths": (2, 4), "hidden": 8}
    c.teacher.name = "cnn_small"
    c.teacher.kwargs = {"widths": (16, 32), "hidden": 64}
    c.teacher.epochs = 3 if cpu else 15
    c.train.epochs = 8 if cpu else 40      # student epochs after the warm start (all variants)
    c.train.learning_rate = 0.05
    c.train.schedule = "cosine"
    c.train.weight_decay = 5e-4
    c.train.checkpoint_every_steps = 1000
    c.loss.temperature = 4.0                 # [paper] A.5
    c.loss.ce_weight = 0.1                 # DiSK's α ([official] l_aux); KD weight 1 − α
    c.loss.kd_weight = 0.9
    c.disk.warm_start_epochs = 2           # A.5 warm start (CE) for every variant
    c.disk.top_k = 3                       # [ours] 10 classes (paper: K = 20 of 100)
    c.disk.lam_period = 4 if cpu else 10   # λ_T in rounds (λ_T = 2 would never pass the
    #                                        midpoint of [λ_min, λ_max] on the integer grid)
    c.disk.delta_period = 4 if cpu else 10
    c.disk.g_epochs = 3                    # [paper] A.5 "three SGD steps over the entire dataset"
    c.disk.guide_init_epochs = 2
    # λ must exceed μ*, the multiplier at which the budget binds, or the Lagrangian's argmin over
    # g is g ≈ 1 everywhere: on this student μ* ≈ 8 (usage 0.97 at λ = 5, 0.45 at λ = 10 vs
    # δ = 0.6; tests/test_disk_budget.py shows the optimum sits at usage = δ once λ > μ*), so the
    # official runner.sh range 1..5 never lets the budget bind. λ_max = 50 = [paper] A.5 default;
    # λ_min = 5 from the A.5 scan grid {0.01, 0.1, 1, 5, 10} (with 0.1 every λ_min round censors
    # all points, g = 1, a quarter of these 8 rounds).
    c.disk.lam_min, c.disk.lam_max = 5.0, 50.0
    c.train.eval_every_epochs = 4
    c.scale_note = ("reduced scale: Fashion-MNIST 12k-image training subset (10k train / 2k val),"
                    " full 10k test; cnn_small teacher (16/32/64, 3 epochs) -> cnn_small student"
                    " (2/4/8), 2 CE warm-start + 8 epochs, 3 seeds; paper column = CIFAR-100 "
                    "row ResNet10-l -> ResNet10-xxs" if cpu else
                    "full Fashion-MNIST (55k/5k/10k), 40 epochs; paper column = CIFAR-100 row "
                    "ResNet10-l -> ResNet10-xxs")
    return c
