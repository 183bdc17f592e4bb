"""Pre-registration (issue 33, items 3 and 5): LR+DS with the strong teacher, confirmation of data
selection (DS), the step docs/findings.md calls resolved at both temperatures, over fresh
teacher draws. Committed before its run:

    nice -n 10 python -m launch.reproduce --table=lrds_strong_teacher_ds_confirm \
        --workdir=runs/confirm --parallel=2

Arms: KD, KD+LR, KD+DS, KD+LR+DS (experiments/lrds/variants.py STANDARD) at T = 2 (KD weights
0.9/0.1) and T = 4 (0.5/0.5), the exploratory table's settings (experiments/lrds/
strong_teacher.py: small-CNN teacher, its epochs chosen on validation by
`choose_teacher_epochs`, MLP student, η = 0.8, |D^t| = 80%, the influence scorer).

Seeds: `TEACHER_SEEDS` = 100..109, ten teacher seeds, each its own teacher training, DS warm-up
student and D^t (teacher.seed), × `STUDENT_SEEDS` = (100,), one student seed under each teacher
(seed); the exploratory entries (lrds_strong_teacher, lrds_strong_teacher_scorers,
lrds_strong_teacher_epochs) used teacher seed 0 and student seeds 0..9, and the harness refuses
any overlap. Sizes, fixed from measured costs so that the run ends by ~21:00 UTC on the shared
2-core machine: one teacher (10 epochs) took 302 s (lrds_strong_teacher_epochs, 2026-12-07,
load ~15), a student run ~16 s (lrds_strong_teacher: 2645 s for 140 runs and its 2 teachers);
one draw with 8 students is ~430 s, with 16 students ~560 s; 10 draws × 2 student seeds would
end after the deadline even on 2 processes, so student seeds per teacher were reduced to 1
(the issue asks for >= 10 teacher seeds). With one student seed per teacher the runs-pooled
(within-teacher) interval equals the draw-level one; the exploratory lrds_strong_teacher
(1 teacher x 10 student seeds) is the within-teacher measurement.

Unit: one teacher draw (its student seeds averaged first: here one), each comparison paired
over the draws (n = 10). Metric: the student's test accuracy after its last epoch. Decision rule (kdjax/reproduce/prereg.py RULE): the 4 comparisons KD+DS − KD and
KD+LR+DS − KD+LR at T = 2 and T = 4, Holm across the 4 at α = 0.05; DS (arm KD+DS, and arm
KD+LR+DS) is helpful when both its Holm intervals lie above 0, not helpful when either lies
below 0, inconclusive otherwise.
"""
from experiments.lrds import strong_teacher, variants
from kdjax.reproduce.prereg import Comparison, Prereg
from kdjax.reproduce.spec import Metric

TEACHER_SEEDS = tuple(range(100, 110))
STUDENT_SEEDS = (100,)


def get_prereg() -> Prereg:
    return Prereg(
        id="lrds_strong_teacher_ds_confirm", paper="lrds",
        title="LR+DS strong teacher, confirmation of DS (pre-registered): KD+DS vs KD and "
              "KD+LR+DS vs KD+LR at T = 2 and 4 over fresh teacher draws",
        config="experiments/lrds/strong_teacher.py",
        seeds="grid:seed", fresh={"teacher.seed": TEACHER_SEEDS, "seed": STUDENT_SEEDS},
        exploratory=("lrds_strong_teacher", "lrds_strong_teacher_scorers",
                     "lrds_strong_teacher_epochs"),
        axis="variant",
        arms={"temperature": strong_teacher.TEMPERATURES, "variant": variants.STANDARD},
        metric="student", metrics=(Metric("student", "test_accuracy"),
                                   Metric("teacher", "teacher.test_accuracy")),
        unit="one teacher draw (its own teacher training, DS warm-up and D^t); its student "
             "seeds averaged", unit_fields=("teacher.seed",),
        comparisons=(Comparison("KD+DS", "KD"), Comparison("KD+LR+DS", "KD+LR")),
        notes="Pre-registered confirmation (issue 33 items 3, 5) of lrds_strong_teacher's DS "
              "rows over fresh teacher draws; the comparisons are paired over teacher draws.")
