"""SimKD as a `Method`: the student wrapped with a projector and the teacher's frozen head
(`Method.model`), trained on the feature loss ||Ψ(f_s) − f_t||² (+ simkd.ce_weight·CE)."""
from __future__ import annotations

import dataclasses

from kdjax.methods.api import Plan, Teacher
from kdjax.methods.simkd import loss
from kdjax.methods.simkd.model import wrap_student
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


def teacher_with_features(run) -> Teacher:
    """The run's teacher with its penultimate features cached beside its logits when inputs
    are not augmented."""
    teacher, _ = run.teacher()
    if teacher.logits_cache is None:
        return teacher
    logits, features = run.predict(teacher.model, teacher.variables, run.splits["train"])
    return dataclasses.replace(teacher, logits_cache=logits, features_cache=features)


def wrapped_student(config, run, teacher):
    """The student of `config.model` as backbone + projector + `teacher`'s head."""
    return wrap_student(run.model(config.model), teacher.variables, factor=config.simkd.factor)


def make_method(config, run) -> Plan:
    teacher = teacher_with_features(run)
    return Plan(Method(loss=make_loss(config.simkd.ce_weight),
                       model=wrapped_student(config, run, teacher)), teachers=[teacher])
