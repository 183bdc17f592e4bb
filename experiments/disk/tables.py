"""DiSK (Kag et al.): the entries of the reproduce registry (experiments/tables.py).

One `TableSpec` per table or figure; `python -m launch.reproduce --list` shows them all.
"""
from experiments.disk import table3 as disk_table3
from kdjax.reproduce.spec import Baseline, Metric, TableSpec, Verify
from kdjax.reproduce.sweep import Setting

ENTRIES: list[TableSpec] = []


def _add(**kw) -> None:
    ENTRIES.append(TableSpec(**kw))


_add(id="disk_table1", paper="disk", full_here=True,
     title="DiSK Table 1: runs landing in each minimum, 1D intervals and 2D Gaussians, 10 "
           "(data, teacher) draws x 10 initialisations",
     config="experiments/disk/table1.py", seeds="count:num_runs",
     default_seeds={"cpu": 10, "full": 10},
     notes="--seeds=N sets the student initialisations per (data, teacher) draw (10 draws, "
           "seeds 0..9, `draws` in the config; the paper: 100 runs). KD at the fixed α = 0.1, "
           "τ = 4 and over the paper's α × τ grid chosen on validation per draw; the claim "
           "(DiSK − CE, DiSK − KD on the global-minimum indicator) is judged by the runner on "
           "the t-interval over draws (each draw's runs averaged), the runs pooled beside it.")
_add(id="disk_table1_confirm", paper="disk", full_here=True,
     title="DiSK Table 1 confirmation (pre-registered, docs/prereg/disk_table1.md): CE, KD, "
           "KD grid, official DiSK, penalty_scale=guided, last epoch and best validation, "
           "fresh (data, teacher) draws",
     config="experiments/disk/table1_confirm.py", seeds="count:num_runs",
     default_seeds={"cpu": 10, "full": 10},
     notes="Arms, seeds and decision rule committed before the run (docs/prereg/"
           "disk_table1.md); one Holm family over all 16 comparisons (every DiSK-like arm − CE "
           "/ − KD grid x toy x selection) on the intervals over draws: `family` in "
           "results.json, each claim read off it.")
_add(id="disk_table1_variants", paper="disk", full_here=True,
     title="DiSK Table 1 with issue-20 variants (ours): normalisation term weighted like the "
           "guided term, guide started out of saturation, both; gap-heavy 1D construction "
           "(global minimum strictly best); best-validation selection",
     config="experiments/disk/table1_variants.py", seeds="count:num_runs",
     default_seeds={"cpu": 100, "full": 100},
     notes="Variants are ours, not the paper's (experiments/disk/table1_variants.py); the "
           "claim verdict is the official DiSK's, each variant's is in variant_claims.")
_add(id="disk_table1_cap", paper="disk", full_here=True,
     title="DiSK Table 1 with the guide's logit capped (ours): g = σ(4·tanh(z/4)), alone and "
           "with the normalisation term weighted like the guided term",
     config="experiments/disk/table1_variants.py", seeds="count:num_runs",
     args={"cpu": "cpu:cap", "full": "full:cap"}, default_seeds={"cpu": 100, "full": 100},
     notes="Same toys, teachers and seeds as disk_table1_variants (paired with the same CE / "
           "KD runs); no official-DiSK row, so each variant's claim is in variant_claims.")
_add(id="disk_table2_6", paper="disk", full_here=True,
     title="DiSK Tables 2/5/6: model statistics (parameters, MACs)",
     config="experiments/reproduce/disk_table2_6.py",
     verify=Verify(),
     notes="Parameters from jax.eval_shape; MACs counted as the paper's counter counts them "
           "(convolutions with every kernel tap, zero padding included, and dense layers; "
           "kdjax/reproduce/model_stats.py).")
# One point = one run: a variant (the CE row is method='ce' from the same warm start,
# experiments/disk/recipe.py; the others kdjax.methods.disk's `disk.variant`), a seed, a
# teacher/student pair; the pairs at full scale are the paper's (teacher.name x model.name).
def _variant(name: str) -> Setting:
    return Setting(name, (("method", "ce"),) if name == "ce" else (("disk.variant", name),))


def _disk_grid(variants: tuple, teachers: tuple = (), students: tuple = (),
               cpu_pair: tuple = ()) -> dict:
    grid = {"variant": tuple(map(_variant, variants))}
    if teachers:
        grid["teacher.name"] = {"cpu": (cpu_pair[0],), "full": teachers}
        grid["model.name"] = {"cpu": (cpu_pair[1],), "full": students}
    return grid


def _disk_metrics(table: str, pair=("cifar100", "{teacher_name}:{model_name}")) -> tuple:
    """Test accuracy beside the paper's cell, the teacher, the CE warm start and, for the
    guided variants, the last round's τ_S, budget usage and mean g on misclassified points."""
    return (Metric("student", "test_accuracy", paper=(table, pair, "{variant}")),
            Metric("teacher", "teacher.test_accuracy", paper=(table, pair, "teacher")),
            Metric("CE warm start only", "warm_start.test_accuracy"),
            Metric("final tau_S", "disk.tau_s", scale=1.0),
            Metric("final budget usage", "disk.budget_usage", scale=1.0),
            Metric("final g on misclassified", "disk.guide_on_misclassified", scale=1.0))


_DISK_SEEDS = dict(seeds="grid:seed", default_seeds={"cpu": 3, "full": 3},   # [paper] 3 trials
                   # every variant − KD, and DiSK − CE, paired over the seeds (one teacher)
                   paired=(Baseline("variant", "kd"),
                           Baseline("variant", "ce", values=("disk",))))
_DISK_STANDIN = ("cpu scale: a cnn_small stand-in pair on offline Fashion-MNIST (see the "
                 "config); its paper column is empty (the paper's cell of the pair it stands "
                 "in for is named in the config).")
_add(id="disk_fashion_mnist", paper="disk", **_DISK_SEEDS,
     title="DiSK reduced run: Fashion-MNIST, large capacity mismatch (cnn_small 16/32/64 -> "
           "2/4/8), CE / KD / DiSK from one CE warm start",
     config="experiments/disk/fashion_mnist_reduced.py",
     grid=_disk_grid(("ce", "kd", "disk")),
     metrics=_disk_metrics("table3", ("cifar100", "resnet10_l:resnet10_xxs")),
     notes="Issue 9's reduced run; paper column = the CIFAR-100 row ResNet10-l -> ResNet10-xxs "
           "it stands in for (different data and models: read the ordering).")
_add(id="disk_table3", paper="disk", **_DISK_SEEDS,
     title="DiSK Table 3: large capacity mismatch (ResNet10 family), CIFAR-100 and "
           "Tiny-ImageNet, CE / KD / DiSK",
     config="experiments/disk/table3.py",
     grid=_disk_grid(("ce", "kd", "disk"), disk_table3.TEACHERS, disk_table3.STUDENTS,
                     ("resnet10_l", "resnet10_xxs")),
     metrics=_disk_metrics("table3"),
     notes="cpu scale: the row ResNet10-l -> ResNet10-xxs on Fashion-MNIST (issue 9), paper "
           "column = its CIFAR-100 cells. Tiny-ImageNet is not in TFDS 4.9.10.")
_add(id="disk_table4", paper="disk", **_DISK_SEEDS,
     title="DiSK Table 4: small capacity mismatch, CIFAR-100 pairs, CE / KD / DiSK",
     config="experiments/disk/table4.py",
     grid=_disk_grid(("ce", "kd", "disk"), ("resnet32x4", "wrn_40_2"),
                     ("resnet8x4", "shufflenetv2", "wrn_16_2", "wrn_40_1", "mobilenetv2_x2"),
                     ("cnn_small", "cnn_small")),
     metrics=_disk_metrics("table4"), verify=Verify(seeds=1),
     notes="full: teachers x students, the paper's 8 pairs among them (the other 2 have no "
           "paper cell). " + _DISK_STANDIN)
_add(id="disk_table7_imagenet", paper="disk", **_DISK_SEEDS,
     title="DiSK Table 7: ImageNet-1K, ResNet-50 -> ResNet-18, CE / KD / DiSK / SimKD",
     config="experiments/disk/table7_imagenet.py",
     grid=_disk_grid(("ce", "kd", "disk", "simkd")),
     metrics=_disk_metrics("table7", ("imagenet2012", "resnet50:resnet18")),
     notes="cpu scale: cnn_small pair on offline Fashion-MNIST, no warm start (A.6); paper "
           "column = ImageNet (DISK['table7']; SemCKD listed, not run).")
_add(id="disk_table8", paper="disk", **_DISK_SEEDS,
     title="DiSK Table 8: DiSK inside SimKD (feature matching), CIFAR-100, CE / KD / DiSK / "
           "SimKD / SimKD + DiSK",
     config="experiments/disk/table8_simkd.py",
     grid=_disk_grid(("ce", "kd", "disk", "simkd", "simkd_disk"), ("wrn_40_2",),
                     ("resnet8x4", "wrn_40_1"), ("cnn_small", "cnn_small")),
     metrics=_disk_metrics("table8"),
     notes="SimKD = kdjax.methods.simkd (projector on pooled features, teacher head reused); "
           "SimKD + DiSK = A.7 Eq. 9 (the guide censors the feature loss). FitNet / SemCKD "
           "listed, not run. " + _DISK_STANDIN)
