"""DiSK Tables 2 / 5 / 6: parameters and multiply-adds of every model the paper uses.

    python -m launch.reproduce --table=disk_table2_6
    python -m launch.main --config=experiments/reproduce/disk_table2_6.py --workdir=runs/disk_t26

'cpu' and 'full' are the same (counts need no training). Tiny-ImageNet counts use 64x64 inputs
and a 200-way head, CIFAR-100 32x32 and 100. MACs count every convolution tap (zero padding
included) and dense layer, as the paper's counter does (kdjax/reproduce/model_stats.py).
"""
import ml_collections

LARGE = ("resnet10_l", "resnet10", "resnet18", "resnet34")
TINY = ("resnet10_xxs", "resnet10_xs", "resnet10_s", "resnet10_m")
SMALL_T = ("resnet32x4", "wrn_40_2")
SMALL_S = ("resnet8x4", "shufflenetv2", "wrn_16_2", "wrn_40_1", "mobilenetv2_x2")


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    if (arg or "cpu") not in ("cpu", "full"):
        raise ValueError(f"arg must be 'cpu' or 'full', got {arg!r}")
    c = ml_collections.ConfigDict()
    c.method = "papers.disk.table2_6:run"
    c.seed = 0
    both = ("cifar100", "tiny_imagenet")
    c.rows = ([("5", "teacher", m, both) for m in LARGE] +
              [("5", "student", m, both) for m in TINY] +
              [("6", "teacher", m, ("cifar100",)) for m in SMALL_T] +
              [("6", "student", m, ("cifar100",)) for m in SMALL_S])
    c.scale_note = "full setting (exact counts; no training)"
    return c
