"""`config.disk`: DiSK's own settings, the paper's CIFAR defaults (A.5) or the official code's.

[paper] = stated in the paper, [official] = the authors' PyTorch code
(anilkagak2/DiSK_Distilling_Scaffolded_Knowledge, runner.sh / DiSK.py), [ours] = our choice.
The CE weight α of Eq. 5 is `loss.ce_weight` ([official] l_aux = 0.1; the KD weight is
1 − α, so `loss.kd_weight` must equal it) and τ_T is `loss.temperature` ([paper] A.5: 4).
"""
import ml_collections

VARIANTS = ("disk", "kd", "simkd", "simkd_disk")
TAU_S_MODES = ("fixed", "fit", "fit_round")
DELTA_MODES = ("schedule", "ce_error")
PENALTY_SCALES = ("official", "guided")
GUIDE_STARTS = ("official", "budget")


def section() -> ml_collections.ConfigDict:
    d = ml_collections.ConfigDict()
    d.variant = "disk"           # the student of this run, trained by the same recipe (CE warm
    #                              start, rounds, schedule, batch order): 'disk' (Alg. 1) |
    #                              'kd' (loss.*) | 'simkd' | 'simkd_disk' (A.7 Eq. 9); the CE
    #                              row is method='ce' with ce.warm_start_epochs the same
    d.warm_start_epochs = 0      # A.5 warm start: epochs of CE pre-training (0 = from scratch)
    d.tau_s_mode = "fit"         # Sec. 3.2 'fit' (once, on the starting student) | 'fit_round'
    #                              (every round) | 'fixed' (= tau_s; [official] 3.5)
    d.tau_s = 4.0
    d.tau_s_min = 1.0            # [ours] bounds of the τ_S search (paper silent)
    d.tau_s_max = 8.0
    d.top_k = 20                 # [paper] A.5 default K = 20 ([official] runner.sh: 10)
    d.include_label = True       # [official] top-K mask ∪ {label}
    d.target = "topk"            # [official] use_prob=50; 'full' = Eq. 4 as printed
    d.lam_min = 0.1              # [paper] A.5 defaults λ in [0.1, 50]
    d.lam_max = 50.0
    d.lam_period = 50            # [paper] λ_T = 50 rounds
    d.s_epochs = 1               # student epochs per round; R = train.epochs / s_epochs
    #                              ([official] s_iters = 250 steps x batch 200 = one CIFAR epoch)
    d.g_epochs = 1               # guide epochs per round ([official] g_iters = 250 steps)
    d.guide_init_epochs = 5      # [official] init_epochs = 5 of guide-only training first
    d.guide_hidden = (64, 128)   # [paper] A.4
    d.guide_learning_rate = 0.001  # [ours] SGD. Eq. 4 pushes g up on every point, so at λ < μ*
    #                              (the multiplier at which the budget binds) SGD drives the
    #                              sigmoid's logit up without bound; at lr 0.01 (official g_lr 0.1)
    #                              the 128-wide last layer moves it by ~10 a step and it passes
    #                              float32 saturation (σ = 1.0, σ' = 0) in one epoch, after which
    #                              no λ can pull g back (tests/test_disk_budget.py). At 1e-3 it
    #                              stays finite and follows λ once λ > μ*
    d.guide_momentum = 0.9
    d.guide_weight_decay = 5e-4
    d.delta_mode = "schedule"    # 'schedule' = [official] cosine δ in [delta_min, delta_max];
    #                              'ce_error' = [paper] δ = warm-start CE train error + offset
    d.delta_min = 0.4            # [official] budget_g_min / budget_g_max
    d.delta_max = 0.6
    d.delta_period = 20          # [official] budget_Ti = 20 rounds
    d.delta_gamma = 0.9          # [official] budget_g_gamma
    d.delta_offset = 0.0         # 'ce_error' mode: A.5 scans δ within ±0.2 of the CE error
    d.ce_target = "teacher"      # [official] penalty 24: CE against the teacher's arg-max
    d.max_ce = 5.0               # [official] max_ce = 5 (clamp of the budget's per-point CE)
    d.normalize = "misclassified"  # [official] / number of misclassified points; 'mean' = Eq. 3
    d.penalty = 0.9              # [official] l_nll · mean log(1 + K g); 0 = Eq. 5 exactly
    d.penalty_scale = "official"  # 'official' = weight `penalty` | 'guided' = [ours, not the
    #                              paper's] penalty·τ_T·τ_S, the guided term's own weight (the
    #                              renormalised Eq. 4; loss.penalty_weight). Issue 20: at the
    #                              official weight the term is ~16x weaker and g saturates at 1
    d.guide_start = "official"   # 'official' | 'budget' = [ours, not the paper's] keep g out of
    #                              saturation at the start: the guide's output bias starts at
    #                              logit(guide_start_g), and the init epochs and the first
    #                              guide_start_rounds rounds use λ = lam_max (budget binding)
    #                              instead of lam_min / the rising schedule
    d.guide_start_g = 0.05       # [ours] initial g of 'budget' (output bias = logit of it)
    d.guide_start_rounds = 10    # [ours] rounds at λ = lam_max under 'budget'
    d.guide_logit_cap = 0.0      # [ours, not the paper's] c > 0: g = σ(c·tanh(z/c)), so g stays
    #                              in [σ(−c), σ(c)] (c = 4: [0.018, 0.982]) and never reaches the
    #                              float32 σ = 1 of the official guide; 0 = official σ(z)
    d.guide_zero = False         # force g ≡ 0 (then DiSK is KD with τ_S and the top-K target)
    return d


def _positive(v) -> bool:
    return v > 0


CHECKS = {
    "variant": (lambda v: v in VARIANTS, f"one of {VARIANTS}"),
    "warm_start_epochs": (lambda v: v >= 0, ">= 0"),
    "tau_s_mode": (lambda v: v in TAU_S_MODES, f"one of {TAU_S_MODES}"),
    "tau_s": (_positive, "> 0"),
    "tau_s_min": (_positive, "> 0"),
    "tau_s_max": (_positive, "> 0"),
    "top_k": (lambda v: v >= 1, ">= 1"),
    "target": (lambda v: v in ("full", "topk"), "'full' or 'topk'"),
    "lam_min": (lambda v: v >= 0, ">= 0"),
    "lam_max": (lambda v: v >= 0, ">= 0"),
    "lam_period": (lambda v: v >= 1, ">= 1"),
    "s_epochs": (lambda v: v >= 1, ">= 1"),
    "g_epochs": (lambda v: v >= 0, ">= 0"),
    "guide_init_epochs": (lambda v: v >= 0, ">= 0"),
    "guide_learning_rate": (_positive, "> 0"),
    "guide_momentum": (lambda v: 0.0 <= v < 1.0, "in [0, 1)"),
    "guide_weight_decay": (lambda v: v >= 0, ">= 0"),
    "delta_mode": (lambda v: v in DELTA_MODES, f"one of {DELTA_MODES}"),
    "delta_min": (lambda v: v >= 0, ">= 0"),
    "delta_max": (lambda v: v >= 0, ">= 0"),
    "delta_period": (lambda v: v >= 1, ">= 1"),
    "delta_gamma": (_positive, "> 0"),
    "ce_target": (lambda v: v in ("label", "teacher"), "'label' or 'teacher'"),
    "max_ce": (_positive, "> 0"),
    "normalize": (lambda v: v in ("mean", "misclassified"), "'mean' or 'misclassified'"),
    "penalty": (lambda v: v >= 0, ">= 0"),
    "penalty_scale": (lambda v: v in PENALTY_SCALES, f"one of {PENALTY_SCALES}"),
    "guide_start": (lambda v: v in GUIDE_STARTS, f"one of {GUIDE_STARTS}"),
    "guide_start_g": (lambda v: 0.0 < v < 1.0, "in (0, 1)"),
    "guide_start_rounds": (lambda v: v >= 0, ">= 0"),
    "guide_logit_cap": (lambda v: v >= 0, ">= 0 (0 = no cap)"),
}
