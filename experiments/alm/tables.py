"""ALM-KD (Sarkar et al.): the entries of the reproduce registry (experiments/tables.py).

One `TableSpec` per table or figure; `python -m launch.reproduce --list` shows them all.
"""
from experiments.alm import variants as alm_variants
from kdjax.reproduce import prereg
from kdjax.reproduce.spec import Baseline, Metric, TableSpec, Verify

ENTRIES: list[TableSpec] = []


def _add(**kw) -> None:
    ENTRIES.append(TableSpec(**kw))


_add(id="alm_sec5_fig3", paper="alm", kind="figure", full_here=True,
     title="ALM-KD Fig. 3 (Sec. 5.1): mean λ per teacher-confidence bucket, noisy vs clean",
     config="experiments/alm/sec5_fig3.py", seeds="count:num_seeds",
     default_seeds={"cpu": 50, "full": 50}, verify=Verify(),
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
_add(id="alm_sec5_variants", paper="alm", full_here=True,
     title="ALM-KD Sec. 5 with issue 20's variants (beyond the paper): confidence-pooled λ, "
           "Eq. 16 on a separate batch / against p_T, λ in [0, 1], confidence threshold",
     config="experiments/alm/sec5_variants.py", seeds="count:num_seeds",
     default_seeds={"cpu": 50, "full": 50},
     notes="Paired over the 50 shared seeds (arm − CE / − KD / − paper ALM-KD, 95% "
           "t-intervals); hyper-parameters of alm_confidence and threshold chosen on a "
           "selection split of seeds 1000..1007 (see the config); the oracle arm reads the "
           "true flip mask (a reference, not a method).")
_add(id="alm_sec5_variants_combined", paper="alm", full_here=True,
     title="ALM-KD Sec. 5, issue 20: confidence-pooled λ with the Eq. 16 term against p_T / "
           "on a separate batch (beyond the paper)",
     config="experiments/alm/sec5_variants.py", args={"cpu": "cpu:combined",
                                                     "full": "full:combined"},
     seeds="count:num_seeds", default_seeds={"cpu": 50, "full": 50},
     notes="As alm_sec5_variants (same seeds, selection split and baselines).")
# The real-data ALM-KD entries: one run per (alm.variant, seed) point; every seed of a cell
# distils the same teachers (teacher.seed). The paper's cells are in paper_numbers.ALM under
# its row names: `paper_rows` maps each alm.variant to its row.
def _alm_metrics(paper: tuple = ()) -> tuple:
    return (Metric("student", "test_accuracy", paper=paper),
            Metric("teacher", "teacher.test_accuracy"))


_ALM_METRICS = _alm_metrics()
_ALM_VS_KD = (Baseline("alm.variant", "kd"),)
# Tables with a CE row sweep `variant`: CE is method='ce', the others alm.variant (variants.py).
_WITH_CE = (alm_variants.CE, alm_variants.KD, alm_variants.ALM)
_ALM_VS_KD_CE = (Baseline("variant", "kd"),)
for _arg, _what in (("cpu", "20% flipped training labels"), ("clean", "clean labels")):
    _add(id="alm_fashion_mnist" + ("" if _arg == "cpu" else "_clean"), paper="alm",
         title=f"ALM-KD reduced real-data run: Fashion-MNIST, CE / KD λ=0.9 / ALM-KD, {_what}",
         config="experiments/alm/fashion_mnist_reduced.py", args={"cpu": _arg, "full": _arg},
         grid={"variant": _WITH_CE}, paired=_ALM_VS_KD_CE,
         seeds="grid:seed", default_seeds={"cpu": 3, "full": 3},
         metrics=_ALM_METRICS + (
             Metric("λ mean", "lambda.cnn_small@final.mean", scale=1.0),
             Metric("λ on flipped labels", "lambda.cnn_small@final.mean_flipped", scale=1.0),
             Metric("λ on clean labels", "lambda.cnn_small@final.mean_clean", scale=1.0)),
         notes="Issue 7's reduced run; the config has no full scale ('full' runs the same "
               "reduced setting and is reported as reduced).")
_add(id="alm_fashion_mnist_variants", paper="alm",
     title="ALM-KD reduced Fashion-MNIST, 20% flipped labels, with issue 20's variants "
           "(beyond the paper)",
     config="experiments/alm/fashion_mnist_reduced.py", args={"cpu": "cpu", "full": "cpu"},
     grid={"arm": alm_variants.FASHION_MNIST},
     paired=(Baseline("arm", "ce"), Baseline("arm", "alm")),
     seeds="grid:seed", default_seeds={"cpu": 5, "full": 5},
     metrics=_ALM_METRICS + (
         Metric("λ mean", "lambda.cnn_small@final.mean", scale=1.0),
         Metric("λ on flipped labels", "lambda.cnn_small@final.mean_flipped", scale=1.0),
         Metric("λ on clean labels", "lambda.cnn_small@final.mean_clean", scale=1.0)),
     notes="Variants' hyper-parameters from the Sec. 5 selection split (experiments/alm/"
           "variants.py), not re-chosen here. This config already clips λ to [0, 1].")
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
     grid={"variant": _WITH_CE},
     metrics=_alm_metrics(("table3", "{variant}", "stanford_dogs")) + (
         Metric("at the best validation epoch", "early_stop.test_accuracy",
                paper=("table3", "early_stopped_{variant}", "stanford_dogs")),),
     paper_rows={"variant": {"kd": "self_distillation", "alm": "self_distillation_alm"}},
     paired=_ALM_VS_KD_CE,
     notes="The early-stopped CE row is the 'ce' cell's 'at the best validation epoch'. Paper "
           "column = Stanford Dogs, also beside the cpu smoke run (Fashion-MNIST CNN: read the "
           "ordering).")

# issue 33 item 5: the pre-registered confirmation of the variants the findings call helpful
# (the file declares arms, fresh seeds, unit, metric and decision rule; committed before its run)
ENTRIES.append(prereg.table_spec(prereg.load("experiments/alm/prereg/sec5_confirm.py")))
