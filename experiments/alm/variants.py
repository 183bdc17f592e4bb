"""OURS (issue 20): the ALM-KD variants a real-data table sweeps, each one run's config fields
(`kdjax.reproduce.sweep.Setting`), beside the paper's rows (CE, KD λ = loss.kd_weight, ALM-KD).

The switches are documented in kdjax/methods/alm/config.py. Their hyper-parameters are the ones
chosen on the Sec. 5 selection split (experiments/alm/sec5_variants.py; runs/s4
alm_sec5_variants*), not re-chosen per data set: g_φ = σ(a·c + b) with η_φ = η_λ / 333
(Sec. 5: η_φ = 30 at η_λ = 1e4), the threshold rule at p_T(y|x) < 0.05 with λ = 0 elsewhere.
"""
from kdjax.reproduce.sweep import Setting


def arm(label: str, variant: str = "alm", **fields) -> Setting:
    return Setting(label, (("alm.variant", variant),) + tuple(
        (f"alm.{k}", v) for k, v in fields.items()))


CE = Setting("ce", (("method", "ce"),))   # the CE row: method='ce' (no alm section)
KD, ALM = arm("kd", "kd"), arm("alm")
CONFIDENCE = arm("alm_confidence", lambda_model="confidence", pool_lr=3.0)
OUTER_TEACHER = arm("alm_outer_teacher", outer_train="teacher")
OUTER_SEPARATE = arm("alm_outer_separate", outer_train="separate")
THRESHOLD = arm("threshold_ce", "threshold", conf_threshold=0.05, threshold_else=0.0)
# run order: the baselines the paired rows need first, then the variants
FASHION_MNIST = (CE, ALM, THRESHOLD, CONFIDENCE, OUTER_TEACHER, KD, OUTER_SEPARATE)
