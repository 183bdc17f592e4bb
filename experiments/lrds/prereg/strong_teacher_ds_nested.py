"""Pre-registration (issue 33, items 3 and 5): LR+DS with the strong teacher, a second
confirmation of data selection (DS) over fresh teacher draws, each with student seeds of its own.
Committed before its run:

    nice -n 10 python -m launch.reproduce --table=lrds_strong_teacher_ds_nested \
        --workdir=runs/confirm

Why a second one: the first confirmation (experiments/lrds/prereg/strong_teacher_ds.py, table
lrds_strong_teacher_ds_confirm) ran one student seed, 100, under all 10 teacher draws. The same
student seed gives the same initialisation and data order under every teacher, so its effect on
a difference is shared by all draws and the interval over the draws leaves it out (its report
now says so: "Seeds crossed with draws"). The exploratory table lrds_strong_teacher, re-run over
teacher seeds 0-9 with 2 student seeds of their own per draw, gave KD+DS − KD +0.18 [+0.09,
+0.27] (T = 2) and +0.29 [+0.17, +0.41] (T = 4), where the first confirmation gave −0.01 and
+0.03. This file re-tests the same four comparisons with the seeds nested in the draws.

Arms: KD, KD+LR, KD+DS, KD+LR+DS (experiments/lrds/variants.py STANDARD) at T = 2 (KD weights
0.9/0.1) and T = 4 (0.5/0.5), the exploratory table's settings (experiments/lrds/
strong_teacher.py: small-CNN teacher of 10 epochs, MLP student, η = 0.8, |D^t| = 80%, the
influence scorer).

Seeds: `TEACHER_SEEDS` = 200..209, ten teacher draws, each its own teacher training, DS warm-up
student and D^t (teacher.seed); `STUDENT_SEEDS` = 200..219 dealt out 2 per draw in order
(`seeds_per_draw`: draw 200 runs students 200, 201; draw 201 runs 202, 203; ...). None of them
was used by the exploratory entries (teacher seeds 0-9, student seeds 0-19) or by the first
confirmation (teacher seeds 100-109, student seed 100); the harness refuses any overlap with the
entries listed in `exploratory`. Size from the measured cost of lrds_strong_teacher at HEAD
(280 runs and 10 teachers in 1422 s beside another run): 160 runs and 10 teachers, ~15-25 min.

Unit: one teacher draw (its two student seeds averaged), each comparison paired over the draws
(n = 10). Metric: the student's test accuracy after its last epoch. Decision rule
(kdjax/reproduce/prereg.py RULE): the 4 comparisons KD+DS − KD and KD+LR+DS − KD+LR at T = 2
and T = 4, Holm across the 4 at α = 0.05; an arm (KD+DS, KD+LR+DS) is helpful when both its
Holm intervals lie above 0, not helpful when either lies below 0, inconclusive otherwise. The
first confirmation's result stands as it was registered; this one is reported beside it.
"""
from experiments.lrds import strong_teacher, variants
from kdjax.reproduce.prereg import Comparison, Prereg
from kdjax.reproduce.spec import Metric

TEACHER_SEEDS = tuple(range(200, 210))
STUDENT_SEEDS = tuple(range(200, 220))


def get_prereg() -> Prereg:
    return Prereg(
        id="lrds_strong_teacher_ds_nested", paper="lrds",
        title="LR+DS strong teacher, second confirmation of DS (pre-registered, student seeds "
              "nested in the teacher draws): KD+DS vs KD and KD+LR+DS vs KD+LR at T = 2 and 4",
        config="experiments/lrds/strong_teacher.py",
        seeds="grid:seed", fresh={"teacher.seed": TEACHER_SEEDS, "seed": STUDENT_SEEDS},
        seeds_per_draw=2,
        exploratory=("lrds_strong_teacher", "lrds_strong_teacher_scorers",
                     "lrds_strong_teacher_epochs", "lrds_strong_teacher_ds_confirm"),
        axis="variant",
        arms={"temperature": strong_teacher.TEMPERATURES, "variant": variants.STANDARD},
        metric="student", metrics=(Metric("student", "test_accuracy"),
                                   Metric("teacher", "teacher.test_accuracy")),
        unit="one teacher draw (its own teacher training, DS warm-up and D^t) with its own two "
             "student seeds, averaged", unit_fields=("teacher.seed",),
        comparisons=(Comparison("KD+DS", "KD"), Comparison("KD+LR+DS", "KD+LR")),
        notes="Second pre-registered confirmation (issue 33 items 3, 5) of DS over fresh "
              "teacher draws, the student seeds nested in the draws (the first, "
              "lrds_strong_teacher_ds_confirm, crossed one student seed with every draw).")
