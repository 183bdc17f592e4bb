"""The `alm` config section: ALM-KD's own fields (the KD weight and τ are `loss.kd_weight` and
`loss.temperature`). Fields marked (open) are choices the paper does not fix."""
from __future__ import annotations

import ml_collections

# One run trains one student; `alm.variant` picks which (the ALM-KD paper's rows and baselines).
VARIANTS = ("kd", "alm", "alm_final", "takd", "dgkd", "threshold")   # CE: method='ce'
LAMBDA_MODELS = ("table", "confidence")
OUTER_TRAIN = ("own", "separate", "teacher")


def section() -> ml_collections.ConfigDict:
    a = ml_collections.ConfigDict()
    a.variant = "alm"           # kd (Eq. 5 with λ fixed at loss.kd_weight) | alm (Alg. 1
    #                             over every teacher of the set) | alm_final (the final teacher
    #                             only) | takd (KD hops via alm.assistants) | dgkd (all larger
    #                             models at once, λ = loss.kd_weight per teacher) |
    #                             threshold (OURS, non-meta: λ_i = 1 where the final teacher
    #                             gives the label p_T(y_i|x_i) < alm.conf_threshold, else
    #                             alm.threshold_else; kdjax/methods/alm/pooled.py)
    a.alpha = 0.2               # perturbation of the outer target p'_T, Eq. 6 (paper: 0.2)
    a.beta = 0.1                # weight of the training-batch outer term, Eq. 16 (paper: 0.1)
    a.lambda_lr = 1000.0        # η_λ of Eq. 10 (open); multiplies the raw Eq. 8 gradient (∝ η/n)
    a.update_every = 10         # L of Alg. 1: meta-update every L steps (paper: 10)
    a.lambda_init = 0.5         # initial λ (open)
    a.clip = "none"             # 'none' | 'unit': project λ onto [0, 1] after each update (open;
    #                             'unit' is also issue 20's "λ clipped to [0, 1]" switch)
    # --- OURS (issue 20, beyond the paper; the defaults are the paper's method) ---
    a.lambda_model = "table"    # 'table' (paper: one free λ per example and teacher) |
    #                             'confidence' (OURS: λ_ik = g_φ(p_Tk(y_i|x_i)), φ meta-learned
    #                             by the same look-ahead; kdjax/methods/alm/pooled.py)
    a.pool_hidden = 0           # g_φ: 0 = σ(a·c + b) (2 numbers); H = MLP with H hidden units
    a.pool_lr = 0.0             # η_φ of φ ← φ − η_φ·∇_φ O; 0 = alm.lambda_lr
    a.outer_train = "own"       # the Eq. 16 (β) term: 'own' (paper: the λ-batch itself against
    #                             its own p'_T, noisy labels included) | 'separate' (OURS: another
    #                             training batch, so λ_B do not see their own targets) |
    #                             'teacher' (OURS: the λ-batch against the plain teacher p_T,
    #                             no label mixing, α = 0 in that term only)
    a.conf_threshold = 0.1      # alm.variant='threshold': λ = 1 where p_T(y|x) < this (OURS)
    a.threshold_else = -1.0     # ... and λ = this elsewhere (0 = CE on the trusted labels);
    #                             -1 = loss.kd_weight (OURS)
    a.meta_grad = "exact"       # 'exact' (autodiff through the whole network) | 'last_layer'
    #                             (the paper's Sec. 4.2 approximation: the head only)
    a.lookahead_lr = 0.0        # η of Eq. 7; 0 = the optimizer's learning rate at that step
    a.outer_teacher = "mean"    # multi-teacher outer target: 'mean' of teacher probabilities or
    #                             a teacher index ('0', '1', ...)
    a.teacher_epochs = ()       # early-stopped teachers (Sec. 6.3): epochs of the teacher run
    a.assistants = ()           # smaller teachers, large -> small (Table 1: TAKD / DGKD / ALM)
    a.assistant_kwargs = ()     # model kwargs per assistant ({} = the zoo defaults)
    a.assistant_epochs = 0      # epochs of each assistant; 0 = train.epochs
    a.dgkd_drop_prob = 0.0      # stochastic DGKD: drop each teacher with this probability
    # The teacher and the assistants train with `teacher.seed` (kdjax/config.py); label noise
    # (Sec. 6.4) is `data.label_noise` (λ is then reported on flipped vs clean labels).
    return a


# Fields that change the teacher `experiment.get_teacher` trains (its data, its checkpoints):
# runs that differ in them do not share a teacher folder (experiment.teacher_key).
TEACHER_FIELDS = ("teacher_epochs",)


def _outer_teacher(v) -> bool:
    return v == "mean" or str(v).isdigit()


CHECKS = {
    "variant": (lambda v: v in VARIANTS, f"one of {', '.join(VARIANTS)}"),
    "alpha": (lambda v: 0.0 <= v <= 1.0, "in [0, 1]"),
    "beta": (lambda v: v >= 0, ">= 0"),
    "lambda_lr": (lambda v: v >= 0, ">= 0"),
    "update_every": (lambda v: int(v) >= 1, "an integer >= 1"),
    "clip": (lambda v: v in ("none", "unit"), "'none' or 'unit'"),
    "lambda_model": (lambda v: v in LAMBDA_MODELS, f"one of {', '.join(LAMBDA_MODELS)}"),
    "pool_hidden": (lambda v: int(v) >= 0, "an integer >= 0"),
    "pool_lr": (lambda v: v >= 0, ">= 0 (0 = alm.lambda_lr)"),
    "outer_train": (lambda v: v in OUTER_TRAIN, f"one of {', '.join(OUTER_TRAIN)}"),
    "conf_threshold": (lambda v: 0.0 <= v <= 1.0, "in [0, 1]"),
    "threshold_else": (lambda v: v == -1.0 or 0.0 <= v <= 1.0, "in [0, 1] or -1 (= loss.kd_weight)"),
    "meta_grad": (lambda v: v in ("exact", "last_layer"), "'exact' or 'last_layer'"),
    "lookahead_lr": (lambda v: v >= 0, ">= 0 (0 = the optimizer's learning rate)"),
    "outer_teacher": (_outer_teacher, "'mean' or a teacher index"),
    "assistant_epochs": (lambda v: v >= 0, ">= 0"),
    "dgkd_drop_prob": (lambda v: 0.0 <= v < 1.0, "in [0, 1)"),
}

# The variants with Alg. 1's meta-update (lines 5-8) on a validation minibatch.
META_VARIANTS = ("alm", "alm_final")


def check_config(config: ml_collections.ConfigDict) -> str | None:
    """Fields that are only wrong together. The meta-update draws each validation minibatch
    with the training batch's size (`data.batch_size`, global, so the same on every mesh) from
    the held-out split without repeating an example, so that split must hold one full batch: a
    smaller one is refused, never drawn as a smaller or repeated meta-batch (either would change
    the Eq. 6 / 16 outer objective's estimate without the user choosing it)."""
    d = config.data
    if config.alm.variant in META_VARIANTS and d.num_validation < d.batch_size:
        return (f"config field data.num_validation={d.num_validation} must be >= "
                f"data.batch_size={d.batch_size}: alm.variant={config.alm.variant!r} draws "
                "validation minibatches of data.batch_size held-out examples for its "
                "meta-update")
    return None
