"""SimKD as a `Method`: the student wrapped with a projector and the teacher's frozen head
(`Method.model`), trained on the feature loss ||Ψ(f_s) − f_t||² (+ simkd.ce_weight·CE)."""
from __future__ import annotations

from kdjax import experiment
from kdjax.methods.simkd import loss
from kdjax.methods.simkd.model import wrap_student
from kdjax.train import loop
from kdjax.train.method import LossFn, Method


def make_loss(ce_weight: float, guided: bool = False) -> LossFn:
    """Per-example SimKD loss; `features` = Ψ(f_s), the batch carries the teacher's
    `teacher_features` (cached or from the in-step teacher) and, when guided (A.7 Eq. 9), the
    guide's g in `example_state['guide']`."""

    def simkd_loss(logits, features, batch):
        guide = batch["example_state"]["guide"] if guided else None
        return loss.student_loss(logits, features, batch["teacher_features"], batch["label"],
                                 guide, alpha=ce_weight)

    return simkd_loss


def teacher_with_features(config, run) -> loop.Teacher:
    """The run's teacher (trained into `experiment.teacher_dir` or loaded), its summary appended to
    `run.teacher_summaries`, with its penultimate features cached beside its logits when
    inputs are not augmented."""
    teacher, summary = experiment.get_teacher(config, run.workdir, run.splits, run.info,
                                              run.mesh)
    run.teacher_summaries.append(summary)
    if teacher.logits_cache is not None:
        teacher.logits_cache, teacher.features_cache = loop.predict_split(
            teacher.model, teacher.variables, run.splits["train"], run.info,
            config.data.eval_batch_size, run.mesh)
    return teacher


def teachers(config, run) -> list[loop.Teacher]:
    return [teacher_with_features(config, run)]


def wrapped_student(config, run):
    """The student of `config.model` as backbone + projector + the first teacher's head."""
    backbone = experiment.build_model(config.model, run.info.num_classes)
    return wrap_student(backbone, run.teachers[0].variables, factor=config.simkd.factor)


def make_method(config, run) -> Method:
    return Method(loss=make_loss(config.simkd.ce_weight), model=wrapped_student(config, run))
