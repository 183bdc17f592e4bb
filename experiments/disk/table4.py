"""DiSK Table 4: small capacity mismatch on CIFAR-100 (standard KD-literature pairs).

    python -m launch.main --config=experiments/disk/table4.py:full --workdir=runs/disk_table4
    python -m launch.main --config=experiments/disk/table4.py --workdir=runs/disk_table4_cpu

Rows: teacher ResNet32x4 -> ResNet8x4 / ShuffleNetV2 / WRN-16-2 / MobileNetV2x2 and teacher
WRN-40-2 -> ResNet8x4 / ShuffleNetV2 / WRN-40-1 / MobileNetV2x2 (kdjax.models zoo names), CE /
KD / DiSK students, 3 seeds, beside DISK['table4'] in papers/paper_numbers.py (the
feature-matching columns are listed there, not run). 'full' = the Table 3 setting (Sec. 4 /
A.5, see experiments/disk/table3.py: 200 epochs, SGD 0.1, cosine, batch 200, CE warm start,
K = 20, λ in [0.1, 50], λ_T = 50). 'cpu' (default) = declared reduced stand-in: offline
Fashion-MNIST (5k / 1k / 2k), cnn_small 16/32/64 teacher (3 epochs) -> cnn_small 8/16/32
student standing in for WRN-40-2 -> WRN-40-1 (same family, half width; the WRNs train at a few
images/s on the shared CPU), 1 warm-start + 4 epochs, K = 3, λ in [5, 50] (λ_T = 4, as
table3.py cpu), 3 seeds. One run per (variant, seed, pair): experiments/tables.py sweeps them
('full' defaults to the first pair).
"""
import ml_collections

from experiments.disk import table3

PAIRS = ("resnet32x4:resnet8x4", "resnet32x4:shufflenetv2", "resnet32x4:wrn_16_2",
         "resnet32x4:mobilenetv2_x2", "wrn_40_2:resnet8x4", "wrn_40_2:shufflenetv2",
         "wrn_40_2:wrn_40_1", "wrn_40_2:mobilenetv2_x2")


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    arg = arg or "cpu"
    if arg not in ("cpu", "full"):
        raise ValueError(f"arg must be 'cpu' or 'full', got {arg!r}")
    c = table3.get_config(arg)
    if arg == "cpu":
        # WRN-40-2 itself (327M MACs) trains at a few images/s on the shared 2-core CPU, so the
        # pair WRN-40-2 -> WRN-40-1 (same family, half the width) is stood in for by cnn_small
        # 16/32/64 -> cnn_small 8/16/32 (same family, half the width).
        c.data.max_train_examples = 6000            # 5k train / 1k val (table3 cpu: 2.5k)
        c.model.name = c.teacher.name = "cnn_small"
        c.model.kwargs = {"widths": (8, 16), "hidden": 32}
        c.teacher.kwargs = {"widths": (16, 32), "hidden": 64}
        c.teacher.epochs = 3
        c.scale_note = ("reduced scale: Fashion-MNIST (5k train / 1k val / 2k test) for "
                        "CIFAR-100, cnn_small 16/32/64 teacher (3 epochs) -> cnn_small 8/16/32 "
                        "student (half width, as WRN-40-2 -> WRN-40-1), 1 CE warm-start + 4 "
                        "epochs, K = 3, λ in [5, 50], 3 seeds; paper column = CIFAR-100 row "
                        "WRN-40-2 -> WRN-40-1")
    else:
        c.teacher.name, c.model.name = PAIRS[0].split(":")
        c.scale_note = "full setting (Sec. 4 / A.5; no AutoAugment/Cutout)"
    return c
