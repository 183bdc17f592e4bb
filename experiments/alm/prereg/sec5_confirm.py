"""Pre-registration (issue 33, item 5): ALM-KD Sec. 5, confirmation of the two variants
docs/findings.md calls helpful, on 50 fresh seeds. Committed before its run:

    nice -n 10 python -m launch.reproduce --table=alm_sec5_confirm --workdir=runs/confirm

Arms (`ARMS`, experiments/alm/sec5_variants.py's runner papers/alm/variants.py), every setting
fixed here, nothing re-selected: CE, KD λ = 0.9 and the paper's ALM-KD (the baselines); the
threshold rule with CE elsewhere (`alm.variant=threshold`, λ = 1 where p_T(y|x) < 0.05, else
`alm.threshold_else=0`) and the confidence-pooled λ (`alm.lambda_model=confidence`,
g_φ = σ(a·p_T(y|x) + b): pool_hidden 0, η_φ = 30), with the values the exploratory run chose on
its selection split (seeds 1000..1007; docs/reproduction.md `alm_sec5_variants`,
`alm_sec5_variants_combined`).

Seeds: 2000..2049 (`seed0` = 2000, 50 vectorised seeds, the paper's count). The exploratory
Sec. 5 entries used seeds 0..49 and the selection split 1000..1007; the harness refuses the run
if any of these seeds is one of theirs.

Unit: one seed = its own make_classification data set and label flips, its own teacher and
the student initialisation every arm of that seed shares. Metric: test accuracy after the
last (100th) epoch. Decision rule (kdjax/reproduce/prereg.py RULE): the 6 comparisons
{threshold_ce, alm_confidence} − {ce, kd, alm}, paired t over the 50 seeds, Holm across the 6 at
α = 0.05; an arm is helpful when all three of its Holm intervals lie above 0, not helpful when
any lies below 0, inconclusive otherwise.
"""
from kdjax.reproduce.prereg import Comparison, Prereg

ARMS = {
    "ce": {"kind": "ce"},
    "kd": {"kind": "kd"},
    "alm": {"kind": "alm"},
    "threshold_ce": {"kind": "threshold",
                     "alm": {"conf_threshold": 0.05, "threshold_else": 0.0}},
    "alm_confidence": {"kind": "alm",
                       "alm": {"lambda_model": "confidence", "pool_hidden": 0,
                               "pool_lr": 30.0}},
}
VARIANTS = ("threshold_ce", "alm_confidence")
BASELINES = ("ce", "kd", "alm")


def get_prereg() -> Prereg:
    return Prereg(
        id="alm_sec5_confirm", paper="alm", full_here=True,
        title="ALM-KD Sec. 5 confirmation (pre-registered): threshold rule with CE elsewhere and "
              "confidence-pooled λ vs CE / KD λ=0.9 / ALM-KD, 50 fresh seeds",
        config="experiments/alm/sec5_variants.py",
        seeds="count:num_seeds", fresh={"seed0": tuple(range(2000, 2050))},
        exploratory=("alm_sec5_fig3", "alm_sec5_fig4", "alm_sec5_sensitivity",
                     "alm_sec5_settings", "alm_sec5_variants", "alm_sec5_variants_combined"),
        overrides={"arms": ARMS, "arm_order": list(ARMS)},
        unit="one seed: its own data set, label flips and teacher, and the student "
             "initialisation all arms of the seed share",
        metric="test accuracy after the last epoch (the runner's paired rows arm − baseline)",
        comparisons=tuple(Comparison(a, b) for a in VARIANTS for b in BASELINES),
        notes="Pre-registered confirmation (issue 33 item 5) of alm_sec5_variants(_combined)'s "
              "threshold_else and alm_confidence arms; settings fixed in the file, not "
              "re-selected.")
