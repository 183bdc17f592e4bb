"""Vanilla knowledge distillation (Hinton et al., 2015) and the CE baseline.

`run` is the teacher → student pipeline: train (or load) a teacher, then train a student with
cross-entropy only and with KD, and report all three test accuracies side by side.
"""
from __future__ import annotations

import os
import time

import ml_collections

from kdjax import experiment, losses
from kdjax.provenance import provenance
from kdjax.train import loop
from kdjax.train import mesh as mesh_lib


def make_kd_loss(temperature: float, alpha: float) -> loop.LossFn:
    """Per-example (1 − α)·CE + α·τ²·KL(t^τ || s^τ) against the batch's teacher logits."""

    def kd(logits, features, batch):
        return losses.kd_loss(logits, batch["label"], batch["teacher_logits"],
                              temperature=temperature, alpha=alpha)

    return kd


def train_student(config, workdir, splits, info, mesh, *, loss_fn, teacher=None) -> dict:
    """Train one student (resuming if `workdir` has a checkpoint) and summarise it."""
    done = loop.read_results(workdir)
    if done is not None:
        return done
    model = experiment.build_model(config.model, info.num_classes)
    evals = {k: v for k, v in splits.items() if k != "train"}
    result = loop.fit(config, workdir, model=model, loss_fn=loss_fn, train=splits["train"],
                      info=info, evals=evals, teacher=teacher, mesh=mesh)
    last = result.history[-1]
    summary = {"test_accuracy": last["test/accuracy"],
               "validation_accuracy": last.get("validation/accuracy"),
               "teacher_queries": result.teacher_queries, "wall_time": result.wall_time,
               "examples_per_sec": result.examples_per_sec, "history": result.history}
    loop.write_results(workdir, summary)
    return summary


def run(config: ml_collections.ConfigDict, workdir: str) -> dict:
    """CE: one student. KD: teacher, optional CE-student baseline, KD student."""
    t0 = time.time()
    mesh = mesh_lib.make_mesh(config.mesh.axes)
    splits, info = experiment.load_splits(config.data)
    results: dict = {"config": config.to_dict(), "provenance": provenance()}
    if config.method == "ce":
        results["student_ce"] = train_student(config, os.path.join(workdir, "student_ce"),
                                              splits, info, mesh, loss_fn=experiment.ce_loss)
    else:
        teacher, results["teacher"] = experiment.get_teacher(config, workdir, splits, info, mesh)
        if config.get("baseline_ce", False):
            results["student_ce"] = train_student(
                config, os.path.join(workdir, "student_ce"), splits, info, mesh,
                loss_fn=experiment.ce_loss)
        kd_fn = make_kd_loss(config.kd.temperature, config.kd.alpha)
        results["student_kd"] = train_student(
            config, os.path.join(workdir, "student_kd"), splits, info, mesh,
            loss_fn=kd_fn, teacher=teacher)
        if teacher.logits_cache is not None:
            results["student_kd"]["teacher_queries"] = len(teacher.logits_cache)
    results["wall_time"] = time.time() - t0
    loop.write_results(workdir, results)
    print(format_summary(results, config))
    return results


def format_summary(results: dict, config) -> str:
    lines = [f"dataset {config.data.name}, student {config.model.name}"
             + (f", teacher {config.teacher.name}" if "teacher" in results else ""),
             "| model | test accuracy | teacher queries |", "|---|---|---|"]
    if "teacher" in results:
        lines.append(f"| teacher ({config.teacher.name}) | "
                     f"{100 * results['teacher']['test_accuracy']:.2f}% | - |")
    for key, label in (("student_ce", "student, CE only"), ("student_kd", "student, KD")):
        if key in results:
            r = results[key]
            lines.append(f"| {label} ({config.model.name}) | {100 * r['test_accuracy']:.2f}% | "
                         f"{r.get('teacher_queries', 0)} |")
    lines.append(f"total wall time {results['wall_time']:.1f} s")
    return "\n".join(lines)
