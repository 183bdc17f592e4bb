"""RAD (Baykal et al., ICLR 2023): the entries of the reproduce registry (experiments/tables.py).

One `TableSpec` per table or figure; `python -m launch.reproduce --list` shows them all.
"""
from kdjax.reproduce.spec import TableSpec, Verify

ENTRIES: list[TableSpec] = []


def _add(**kw) -> None:
    ENTRIES.append(TableSpec(**kw))


_CPU_FULL = {"cpu": "cpu", "full": "full"}


def _panel(panel: str) -> dict:
    return {"cpu": f"cpu:{panel}", "full": f"full:{panel}"}


# The compare runner averages over config.active.num_trials trials (seeds config.seed..):
# --seeds=N sets the number of trials and the report names the seeds they used.
_RAD_TRIALS = "count:active.num_trials"
_add(id="rad_fig2", paper="rad", kind="figure", full_here=True,
     title="RAD Fig. 2: optimal sampling distribution (Cor. 1) for several teacher accuracies",
     config="experiments/rad/fig2.py", args=_CPU_FULL, verify=Verify(),
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
