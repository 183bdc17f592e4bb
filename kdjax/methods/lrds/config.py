"""The `lrds` config section: Label Revision and Data Selection around a base method's loss.

The loss weights and the temperature are the shared `loss.kd_weight` (the paper's λ1),
`loss.ce_weight` (λ2, also the CE weight of the D^s examples) and `loss.temperature` (the
temperature at which LR revises the teacher). One run is one variant: KD = `lr.enabled` and
`ds.enabled` off, KD+LR, KD+DS, KD+LR+DS; the CE row is `method='ce'`.
"""
from __future__ import annotations

import ml_collections

from kdjax.methods.lrds.influence import HESSIANS, SCORERS

# DS scorers: those of influence.py, plus 'random' (a control: uniform scores, no warm-up).
DS_SCORERS = SCORERS + ("random",)


def section() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.base = "kd"           # the method whose per-example loss LR and DS wrap
    # The teacher, the DS warm-up student and the 'random' scorer use `teacher.seed`
    # (kdjax/config.py), shared by every student seed as in the paper's runs.
    c.lr = ml_collections.ConfigDict()
    c.lr.enabled = True     # Label Revision of the teacher's targets
    c.lr.eta = 0.8          # η: β = η / (p^t_max − p^t_y + 1) (the paper studies η = 0.8)
    c.lr.only_wrong = False  # [ours] revise only the teacher-wrong rows (a control for LR)
    c.ds = ml_collections.ConfigDict()
    c.ds.enabled = True     # Data Selection: only D^t is distilled, D^s gets ce_weight·CE
    c.ds.fraction = 0.8     # |D^t| / |D|
    c.ds.scorer = "influence"   # one of DS_SCORERS ('influence' = ||H^-1 g_i||)
    c.ds.lowest = False     # True: D^t = the LOWEST-scored fraction (direction ablation)
    c.ds.hessian = "auto"   # exact | kfac | auto (exact up to 16384 head parameters)
    c.ds.damping = 1e-3     # added to the last-layer Hessian's diagonal
    c.ds.warmup_epochs = 1  # CE epochs of the student before it is scored
    c.ds.batch_size = 512   # examples per scoring batch
    c.ds.tracin_val = False  # 'tracin': validation-gradient dot products instead of self
    return c


CHECKS = {
    "base": (lambda v: bool(v) and v != "lrds", "a method other than 'lrds' (e.g. 'kd')"),
    "lr.eta": (lambda v: 0.0 < v < 1.0, "in (0, 1)"),
    "ds.fraction": (lambda v: 0.0 <= v <= 1.0, "in [0, 1]"),
    "ds.scorer": (lambda v: v in DS_SCORERS, f"one of {', '.join(DS_SCORERS)}"),
    "ds.hessian": (lambda v: v in HESSIANS, f"one of {', '.join(HESSIANS)}"),
    "ds.damping": (lambda v: v >= 0, ">= 0"),
    "ds.warmup_epochs": (lambda v: v >= 1, "an integer >= 1"),
    "ds.batch_size": (lambda v: v >= 1, ">= 1"),
}
