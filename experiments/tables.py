"""Every table and figure of the four papers, as a sweep the reproduce harness runs.

    python -m launch.reproduce --list
    python -m launch.reproduce --table=disk_table1            # reduced ('cpu') scale
    python -m launch.reproduce --table=rad_fig3_cifar10_resnet --scale=full --parallel=4

Each entry names an experiments/ config file and the argument its get_config receives per scale
('cpu' = the declared reduced version on offline data, 'full' = the paper's setting), the grid
of config overrides to sweep, how --seeds enters, and (for harness-aggregated tables) which
numbers to average and where the paper's number for the same cell lives in
kdjax/reproduce/paper_numbers.py. Entries whose config or runner does not exist yet are listed as
'not yet implemented' by --list; nothing is ever filled in for them.
"""
from experiments.disk import table3 as disk_table3
from kdjax.reproduce.spec import Baseline, Curve, Metric, TableSpec

_CPU_FULL = {"cpu": "cpu", "full": "full"}


def _panel(panel: str) -> dict:
    return {"cpu": f"cpu:{panel}", "full": f"full:{panel}"}


_ENTRIES: list[TableSpec] = []


def _add(**kw) -> None:
    _ENTRIES.append(TableSpec(**kw))


# --- the harness's own end-to-end check (CE vs KD; no paper numbers) -------------------------
_add(id="kd_fashion_mnist", paper="kd", kind="figure",
     title="CE vs KD students on Fashion-MNIST (harness check, no paper)",
     config="experiments/reproduce/kd_baseline.py", grid={"method": ("ce", "kd")},
     seeds="grid:seed", default_seeds={"cpu": 3, "full": 3},
     metrics=(Metric("student", "test_accuracy"),
              Metric("teacher", "teacher.test_accuracy")),
     curves=(Curve("student", "history"),), paired=(Baseline("method", "ce"),),
     notes="Built on kdjax.methods.kd (CE and Hinton KD); shows sweep, resume, mean ± std and "
           "curves end to end. No paper cell to compare with.")

# --- RAD (Baykal et al., ICLR 2023), issue 8: configs in experiments/rad/ -------------------
# The compare runner averages over config.active.num_trials trials (seeds config.seed..):
# --seeds=N sets the number of trials and the report names the seeds they used.
_RAD_TRIALS = "count:active.num_trials"
_add(id="rad_fig2", paper="rad", kind="figure", full_here=True,
     title="RAD Fig. 2: optimal sampling distribution (Cor. 1) for several teacher accuracies",
     config="experiments/rad/fig2.py", args=_CPU_FULL,
     notes="Exact computation; no training.")
for _ds in ("cifar10", "cifar100", "svhn"):
    for _arch in ("resnet", "mobilenet"):
        _add(id=f"rad_fig3_{_ds}_{_arch}", paper="rad", kind="figure",
             title=f"RAD Fig. 3 panel: {_ds}, {_arch} student/teacher pair, accuracy per "
                   "active-distillation round, every strategy",
             config="experiments/rad/fig3.py", args=_panel(f"{_ds}:{_arch}"),
             seeds=_RAD_TRIALS,
             notes="Panel configuration (e, |A|, b, teacher) per the panel titles of Fig. 3; "
                   "'resnet' = ResNetV2-20 student, ResNet-50 teacher. cpu scale: offline "
                   "Fashion-MNIST, several trials.")
_add(id="rad_fig4_imagenet", paper="rad", kind="figure",
     title="RAD Fig. 4: ImageNet, ResNet-50 -> ResNet-18, accuracy and gain per round",
     config="experiments/rad/fig4_imagenet.py", seeds=_RAD_TRIALS)
_add(id="rad_fig5_d3", paper="rad", kind="figure",
     title="RAD Fig. 5 (D.3): final accuracy, accuracy over training, realized gain",
     config="experiments/rad/d3_gains.py", seeds=_RAD_TRIALS)
_add(id="rad_fig6_d4", paper="rad", kind="figure",
     title="RAD Fig. 6 (D.4): standard active learning, m = 0.05n",
     config="experiments/rad/d4_active_learning.py", seeds=_RAD_TRIALS)
_add(id="rad_fig7_d5", paper="rad", kind="figure",
     title="RAD Fig. 7 (D.5): robustness to w in {0, 0.1, ..., 1} vs w = 1 - m/n",
     config="experiments/rad/d5_w_sweep.py", seeds=_RAD_TRIALS)
_add(id="rad_fig8_d6", paper="rad", kind="figure",
     title="RAD Fig. 8 (D.6): margin gain vs entropy gain (RAD ENTROPY)",
     config="experiments/rad/d6_entropy_gain.py", seeds=_RAD_TRIALS)
_add(id="rad_fig9_d7", paper="rad", kind="figure",
     title="RAD Figs. 9-16 (D.7): SVHN configuration grid (ResNetV2-11/20/29 students, "
           "ResNetV2-56/110 teachers, |A|, b, e) vs MARGIN and UNIFORM",
     config="experiments/rad/d7_svhn_grid.py", seeds=_RAD_TRIALS)

_add(id="rad_claim_cpu", paper="rad", kind="figure",
     title="RAD's claim at CPU scale (issue 18): RAD vs MARGIN vs UNIFORM with teacher accuracy "
           "≈ 75 / 80 / 85% (|A|), 20% budget, paired trials, true-m RAD and an oracle bound",
     config="experiments/rad/claim_cpu.py", args={"cpu": "cpu", "full": "cpu"},
     grid={"active.num_labeled": (200, 500, 1500)}, seeds=_RAD_TRIALS,
     default_seeds={"cpu": 8, "full": 8},
     notes="No paper counterpart: the reduced experiment most able to show Fig. 3's claim "
           "(see the config's docstring). oracle_margin reads the teacher's correctness: a "
           "bound, not a method. Plot and per-|A| tables: experiments/rad/results/claim_cpu/ "
           "(`python -m experiments.rad.claim_plot`).")

# --- DiSK (Kag et al.), issue 9: configs in experiments/disk/ -------------------------------
_add(id="disk_table1", paper="disk", full_here=True,
     title="DiSK Table 1: runs (of 100) landing in each minimum, 1D intervals and 2D Gaussians",
     config="experiments/disk/table1.py", seeds="count:num_runs",
     default_seeds={"cpu": 100, "full": 100},
     notes="--seeds=N sets the number of runs per method and toy (paper: 100).")
_add(id="disk_table2_6", paper="disk", full_here=True,
     title="DiSK Tables 2/5/6: model statistics (parameters, MACs)",
     config="experiments/reproduce/disk_table2_6.py",
     notes="Parameters from jax.eval_shape; MACs = XLA cost analysis flops / 2 at batch 1.")
# One point = one run of kdjax.methods.disk (config.method = 'disk'): a `disk.variant`, a seed,
# a teacher/student pair; the pairs at full scale are the paper's (teacher.name x model.name).
def _disk_grid(variants: tuple, teachers: tuple = (), students: tuple = (),
               cpu_pair: tuple = ()) -> dict:
    grid = {"disk.variant": variants}
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
                   paired=(Baseline("disk.variant", "kd"),
                           Baseline("disk.variant", "ce", values=("disk",))))
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
     metrics=_disk_metrics("table4"),
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

# --- ALM-KD (Sarkar et al.), issue 7: configs in experiments/alm/ ---------------------------
_add(id="alm_sec5_fig3", paper="alm", kind="figure", full_here=True,
     title="ALM-KD Fig. 3 (Sec. 5.1): mean λ per teacher-confidence bucket, noisy vs clean",
     config="experiments/alm/sec5_fig3.py", seeds="count:num_seeds",
     default_seeds={"cpu": 50, "full": 50},
     notes="The paper gives no numbers, only the claim in paper_numbers.ALM; --seeds=N sets "
           "the number of vectorised seeds (paper: 50).")
_add(id="alm_sec5_fig4", paper="alm", kind="figure", full_here=True,
     title="ALM-KD Fig. 4 (Sec. 5.2): test accuracy per epoch, CE / KD λ=0.9 / ALM-KD",
     config="experiments/alm/sec5_fig4.py", seeds="count:num_seeds",
     default_seeds={"cpu": 50, "full": 50})
_add(id="alm_sec5_sensitivity", paper="alm", full_here=True,
     title="ALM-KD Sec. 5: sensitivity to the choices the paper leaves open (beyond the paper)",
     config="experiments/alm/sec5_sensitivity.py", seeds="count:num_seeds",
     default_seeds={"cpu": 10, "full": 50})
_add(id="alm_sec5_settings", paper="alm", full_here=True,
     title="ALM-KD Sec. 5: the whole experiment under other data / batch / τ settings "
           "(beyond the paper)",
     config="experiments/alm/sec5_settings.py", seeds="count:num_seeds",
     default_seeds={"cpu": 5, "full": 50})
# The real-data ALM-KD entries: one run per (alm.variant, seed) point; every seed of a cell
# distils the same teachers (teacher.seed). The paper's cells are in paper_numbers.ALM under
# its row names: `paper_rows` maps each alm.variant to its row.
def _alm_metrics(paper: tuple = ()) -> tuple:
    return (Metric("student", "test_accuracy", paper=paper),
            Metric("teacher", "teacher.test_accuracy"))


_ALM_METRICS = _alm_metrics()
_ALM_VS_KD = (Baseline("alm.variant", "kd"),)
for _arg, _what in (("cpu", "20% flipped training labels"), ("clean", "clean labels")):
    _add(id="alm_fashion_mnist" + ("" if _arg == "cpu" else "_clean"), paper="alm",
         title=f"ALM-KD reduced real-data run: Fashion-MNIST, CE / KD λ=0.9 / ALM-KD, {_what}",
         config="experiments/alm/fashion_mnist_reduced.py", args={"cpu": _arg, "full": _arg},
         grid={"alm.variant": ("ce", "kd", "alm")}, paired=_ALM_VS_KD,
         seeds="grid:seed", default_seeds={"cpu": 3, "full": 3},
         metrics=_ALM_METRICS + (
             Metric("λ mean", "lambda.cnn_small@final.mean", scale=1.0),
             Metric("λ on flipped labels", "lambda.cnn_small@final.mean_flipped", scale=1.0),
             Metric("λ on clean labels", "lambda.cnn_small@final.mean_clean", scale=1.0)),
         notes="Issue 7's reduced run; the config has no full scale ('full' runs the same "
               "reduced setting and is reported as reduced).")
_add(id="alm_fig5", paper="alm", kind="figure",
     title="ALM-KD Fig. 5: ALM-KD vs fixed λ ∈ {0.1, 0.9} across architectures and datasets",
     config="experiments/alm/fig5.py", seeds="grid:seed", default_seeds={"cpu": 2, "full": 1},
     grid={"alm.variant": ("kd", "alm"), "loss.kd_weight": (0.1, 0.9),
           "teacher.name": {"cpu": ("cnn_small",),
                            "full": ("wrn_16_3", "wrn_16_4", "wrn_16_6", "wrn_16_8")}},
     metrics=_ALM_METRICS, paired=_ALM_VS_KD,
     notes="ALM-KD does not read loss.kd_weight: its two cells per teacher are the same run. "
           "Stanford Cars / Dogs panels: args 'full:cars196' / 'full:stanford_dogs'; "
           "panel d: 'full_resnet' (see the config).")
_add(id="alm_table1", paper="alm",
     title="ALM-KD Table 1: multi-teacher (WRN-16-3 + WRN-16-4 -> WRN-16-1) vs TAKD / DGKD",
     config="experiments/alm/table1.py", seeds="grid:seed", default_seeds={"cpu": 2, "full": 1},
     grid={"alm.variant": ("takd", "dgkd", "alm")},
     metrics=_alm_metrics(("table1", "{variant}", "cifar100")),
     paper_rows={"alm.variant": {"takd": "TAKD", "dgkd": "DGKD", "alm": "ALM-KD"}},
     paired=(Baseline("alm.variant", "takd", values=("alm",)),
             Baseline("alm.variant", "dgkd", values=("alm",))),
     notes="full: CIFAR-100; the Cars / Dogs columns are args 'full:cars196' / "
           "'full:stanford_dogs' (see the config). Paper column = the CIFAR-100 column, also "
           "beside the cpu smoke run (Fashion-MNIST, CNN chain: read the ordering).")
_add(id="alm_table2", paper="alm",
     title="ALM-KD Table 2: early-stopped teachers (WRN-16-8 at epochs 20/70/130/final)",
     config="experiments/alm/table2.py", seeds="grid:seed", default_seeds={"cpu": 2, "full": 1},
     grid={"alm.variant": ("kd", "alm_final", "alm"),
           "model.name": {"cpu": ("cnn_small",), "full": ("densenet40_12", "wrn_16_1")}},
     metrics=_alm_metrics(("table2", "{variant}", "{model_name}")),
     paper_rows={"alm.variant": {"kd": "vanilla_kd_0.9", "alm_final": "alm_final_teacher",
                                 "alm": "alm_early_stopped"}},
     paired=_ALM_VS_KD,
     notes="Paper column per student (model.name): full scale only (the cpu CNN student has "
           "no paper cell).")
_add(id="alm_table3", paper="alm",
     title="ALM-KD Table 3: self-distillation (WRN-16-8), FGVC-Aircraft and Stanford Dogs",
     config="experiments/alm/table3.py", seeds="grid:seed", default_seeds={"cpu": 2, "full": 1},
     grid={"alm.variant": ("ce", "kd", "alm")},
     metrics=_alm_metrics(("table3", "{variant}", "stanford_dogs")) + (
         Metric("at the best validation epoch", "early_stop.test_accuracy",
                paper=("table3", "early_stopped_{variant}", "stanford_dogs")),),
     paper_rows={"alm.variant": {"kd": "self_distillation", "alm": "self_distillation_alm"}},
     paired=_ALM_VS_KD,
     notes="The early-stopped CE row is the 'ce' cell's 'at the best validation epoch'. Paper "
           "column = Stanford Dogs, also beside the cpu smoke run (Fashion-MNIST CNN: read the "
           "ordering).")

# --- LR+DS (Lan et al.), issue 4: configs in experiments/lrds/ ------------------------------
# One point = one run: a variant (experiments/lrds/variants.py), a teacher/student pair and a
# seed. cpu scale of every entry: offline Fashion-MNIST with MLP (and one small-CNN teacher)
# stand-ins for the paper's pairs, declared in each config's scale_note; full: the paper's data.
# Every seed of a cell distils the same teacher on the same D^t (teacher.seed); each variant −
# KD is reported as a paired difference over the seeds.
from experiments.lrds import ablation_eta as _lrds_eta, ablation_fraction as _lrds_fraction
from experiments.lrds import cifar100 as _lrds_c100, cifar100_cross_family as _lrds_cross
from experiments.lrds import fashion_mnist_reduced as _lrds_fm, variants as _lrds_v

_LRDS_NOTE = ("cpu scale: offline Fashion-MNIST, MLP stand-ins for the paper's CNN pairs (see "
              "the scale note); the paper's per-cell numbers are not in ../shared/papers (only "
              "'+1-2% over vanilla KD'), so reduced rows carry no paper number.")


def _lrds_metrics(paper_table: str = "") -> tuple:
    """Student accuracy (beside the paper's number, where PAPERS['lrds'] has one), the
    teacher's, and the per-run LR/DS counts (`kdjax.methods.lrds.method.summarize`)."""
    paper = (paper_table, "{pair}", "{variant}") if paper_table else ()
    return (Metric("student", "test_accuracy", paper=paper),
            Metric("teacher", "teacher.test_accuracy"),
            Metric("teacher train errors", "lrds.teacher_train_errors", scale=1.0),
            Metric("teacher-supervised |D^t|", "lrds.teacher_supervised", scale=1.0),
            Metric("teacher-wrong in D^t", "lrds.teacher_wrong_supervised", scale=1.0),
            Metric("revised targets", "lrds.revised_targets", scale=1.0))


def _lrds_pairs(full: tuple, cpu: tuple) -> dict:
    return {"pair": {"full": tuple(map(_lrds_c100.pair_setting, full)),
                     "cpu": tuple(map(_lrds_c100.pair_setting, cpu))}}


def _lrds(seeds: dict | None = None, **kw) -> None:
    _add(paper="lrds", seeds="grid:seed", default_seeds=seeds or {"cpu": 3, "full": 3},
         paired=(Baseline("variant", "KD"),), **kw)


_lrds(id="lrds_cifar100",
      title="LR+DS CIFAR-100, same-family pairs: KD, KD+LR, KD+DS, KD+LR+DS",
      config="experiments/lrds/cifar100.py",
      grid={**_lrds_pairs(_lrds_c100.PAIRS, _lrds_c100.CPU_PAIRS),
            "variant": _lrds_v.STANDARD},
      metrics=_lrds_metrics("cifar100_same_family"), notes=_LRDS_NOTE)
_lrds(id="lrds_cifar100_cross_family",
      title="LR+DS CIFAR-100, cross-family pairs: KD, KD+LR, KD+DS, KD+LR+DS",
      config="experiments/lrds/cifar100_cross_family.py",
      grid={**_lrds_pairs(_lrds_cross.PAIRS, _lrds_cross.CPU_PAIRS),
            "variant": _lrds_v.STANDARD},
      metrics=_lrds_metrics(), notes=_LRDS_NOTE)
_lrds(id="lrds_imagenet", seeds={"cpu": 3, "full": 1},
      title="LR+DS ImageNet, ResNet-34 -> ResNet-18: KD, KD+LR, KD+DS, KD+LR+DS",
      config="experiments/lrds/imagenet.py", grid={"variant": _lrds_v.STANDARD},
      metrics=_lrds_metrics(), notes=_LRDS_NOTE)
_lrds(id="lrds_ablation_eta",
      title="LR+DS ablation: label-revision strength η", config="experiments/lrds/ablation_eta.py",
      grid={"variant": (_lrds_v.KD,) + _lrds_v.eta_sweep(_lrds_eta.ETAS)},
      metrics=_lrds_metrics(), notes=_LRDS_NOTE)
_lrds(id="lrds_ablation_fraction",
      title="LR+DS ablation: DS fraction |D^t|/|D|",
      config="experiments/lrds/ablation_fraction.py",
      grid={"variant": (_lrds_v.KD,) + _lrds_v.fraction_sweep(_lrds_fraction.FRACTIONS)},
      metrics=_lrds_metrics(), notes=_LRDS_NOTE)
_lrds(id="lrds_fashion_mnist", full_here=True,
      title="LR+DS reduced run: weak teacher on Fashion-MNIST, CE / KD / +LR / +DS / +LR+DS",
      config="experiments/lrds/fashion_mnist_reduced.py",
      grid={"variant": (_lrds_v.CE,) + _lrds_v.STANDARD + _lrds_v.LOWEST
            + _lrds_v.scorer_sweep(_lrds_fm.SCORER_SWEEP)},
      metrics=_lrds_metrics())

# --- Compositions (issue 21): beyond the papers -------------------------------------------
_add(id="compose_active_cpu", paper="compose", kind="figure",
     title="Beyond the papers: selection (uniform / margin / RAD) × retraining loss (KD / KD+LR / "
           "ALM-KD) in RAD's active loop, with a teacher wrong on ~25% of the pool",
     config="experiments/compose/active_retrain.py", args={"cpu": "cpu", "full": "cpu"},
     seeds="count:active.num_trials", default_seeds={"cpu": 8, "full": 8},
     notes="No paper counterpart (kdjax.compose_active): every arm of a trial shares its split, "
           "teacher and round-0 student; the runner prints the paired all-rounds differences "
           "(95% t-intervals, n).")

TABLES: dict[str, TableSpec] = {t.id: t for t in _ENTRIES}
if len(TABLES) != len(_ENTRIES):
    raise ValueError("experiments/tables.py: duplicate table ids")
