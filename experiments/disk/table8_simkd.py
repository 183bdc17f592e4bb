"""DiSK Table 8 (App. A.7): DiSK inside SimKD (feature-matching KD), CIFAR-100.

    python -m launch.reproduce --table=disk_table8                 # 'cpu' (default)
    python -m launch.reproduce --table=disk_table8 --scale=full
    python -m launch.main --config=experiments/disk/table8_simkd.py:full --workdir=runs/disk_table8

Rows: teacher WRN-40-2 -> students ResNet8x4 and WRN-40-1, each with CE / KD / DiSK / SimKD /
SimKD + DiSK students (`disk.variant` of kdjax.methods.disk; SimKD = kdjax.methods.simkd: student
penultimate features -> projector -> the teacher's frozen classifier, loss ||Ψ(f_s) − f_t||²;
SimKD + DiSK = A.7 Eq. 9: each point's feature loss weighed by 1 − g(x), the guide trained by
Alg. 1 line 6 with that loss as L_dist and the Eq. 3 budget on the student's logits), beside
DISK['table8'] in papers/paper_numbers.py (FitNet / SemCKD listed, not run).

'full' = "similar setup as in Table 4" (experiments/disk/table3.py cifar_config: 200 epochs, SGD
0.1 cosine, batch 200, CE warm start (the SimKD students' backbones start from it too, the
projector from scratch), K = 20, λ in [0.1, 50], λ_T = 50), 3 seeds. SimKD's own loss has no
CE term (simkd.ce_weight = 0) and its projector bottleneck factor is 2. One run per (variant,
seed, pair): experiments/tables.py sweeps them ('full' defaults to the first pair).
'cpu' (default) = a declared reduced stand-in: offline Fashion-MNIST (5k train / 1k val / 2k
test), cnn_small 16/32/64 teacher (3 epochs) -> cnn_small 4/8/16 student for WRN-40-2 ->
WRN-40-1, 1 CE warm-start epoch + 4 epochs per variant, K = 3, λ in [5, 50] with λ_T = 4 rounds
(as fashion_mnist_reduced.py), 3 seeds. The paper column is the CIFAR-100 WRN-40-2 -> WRN-40-1 row.
"""
import ml_collections

from experiments.disk import table3

PAIRS = ("wrn_40_2:resnet8x4", "wrn_40_2:wrn_40_1")


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    arg = arg or "cpu"
    if arg not in ("cpu", "full"):
        raise ValueError(f"arg must be 'cpu' or 'full', got {arg!r}")
    if arg == "full":
        c = table3.cifar_config("cifar100")
        c.teacher.name, c.model.name = PAIRS[0].split(":")
        c.scale_note = "full setting (Table 4 setup, Sec. 4 / A.5; no AutoAugment/Cutout)"
        return c
    c = table3.cifar_config("fashion_mnist")
    table3.small_cnn_pair(table3.reduced_cpu(c, rounds=4))
    c.disk.warm_start_epochs = 1
    c.disk.delta_period = 2
    c.train.eval_every_epochs = 2
    c.scale_note = ("reduced scale: Fashion-MNIST (5k train / 1k val / 2k test) for CIFAR-100, "
                    "cnn_small 16/32/64 teacher (3 epochs) -> cnn_small 4/8/16 student for "
                    "WRN-40-2 -> WRN-40-1, 1 CE warm-start + 4 epochs, K = 3, λ in [5, 50], 3 "
                    "seeds; paper column = CIFAR-100 WRN-40-2 -> WRN-40-1 row")
    return c
