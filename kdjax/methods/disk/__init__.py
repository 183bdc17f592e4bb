"""DiSK: Distilling Selective Knowledge (Kag et al.; ../shared/papers/disk_*.txt).

A student learns from a teacher only where a guide g(x) ∈ [0, 1] says it can: Eq. 4 adds g
to the student's softened probabilities on the teacher's top-K classes, so g = 1 censors a
point's distillation term; Eq. 3 bounds the budget Σ g·CE; Alg. 1 alternates guide and student
updates under the Lagrangian of Eq. 5 with λ rising on a cosine (line 8).

Files: `loss.py` (Eqs. 3-5, the λ / δ schedules, the τ_S fit of Sec. 3.2), `guide.py` (the
guide network of A.4 and its per-round trainer, Alg. 1 line 6), `config.py` (`config.disk`),
`method.py` (one run of the DiSK recipe: teacher -> CE warm start (A.5) -> R rounds of
`disk.s_epochs` student epochs on `loop.fit`, the guide phase and τ_S fit at each round's
start; `disk.variant` picks DiSK or a baseline trained the same way).
"""
from kdjax.methods.disk.loss import (budget_loss, budget_schedule, budget_usage,  # noqa: F401
                                     fit_student_temperature, guide_loss, guide_penalty,
                                     guided_distillation_loss, lagrangian, lambda_schedule,
                                     mean_kl_at_temperature, misclassified_guide_mean,
                                     student_loss, topk_mask)
