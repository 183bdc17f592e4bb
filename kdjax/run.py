"""One run: one method, one seed, one teacher/student pair, from a config to `results.json`.

`config.method` names the method: a package under `kdjax/methods/` (`'kd'`, `'disk'`, ...), any
importable module (`'tests.toy_method'`), or `'module:function'` for an experiment that drives
its own runs (the toys, RAD's active loop). A method module provides

    make_method(config, run: RunInputs) -> kdjax.train.method.Method   (required)
    NEEDS_TEACHER = False                   (optional; default True: one teacher, config.teacher)
    teachers(config, run) -> [Teacher]      (optional; several or special teachers)
    summarize(config, run, result) -> dict  (optional; method-specific entries of results.json)

or a `run(config, workdir) -> dict` of its own. Grids, seeds and tables live in
`kdjax/reproduce`, never here.
"""
from __future__ import annotations

import dataclasses
import time
from typing import Any

import ml_collections

from kdjax import config as config_lib
from kdjax import experiment, methods, placement
from kdjax import provenance as provenance_lib
from kdjax.train import loop
from kdjax.train import mesh as mesh_lib


@dataclasses.dataclass
class RunInputs:
    """What a method builds on: the data splits, the mesh, the frozen teachers. `make_method`
    may set `init_variables` (a warm start, e.g. DiSK's CE stage) and `horizon_epochs` (a
    schedule longer than the run), which `fit` receives."""
    config: ml_collections.ConfigDict
    workdir: str
    splits: dict
    info: Any
    mesh: Any
    teachers: list = dataclasses.field(default_factory=list)
    teacher_summaries: list = dataclasses.field(default_factory=list)
    init_variables: dict | None = None
    horizon_epochs: int | None = None


resolve = methods.resolve


def run(config: ml_collections.ConfigDict, workdir: str) -> dict:
    """Run `config.method` in `workdir` (resuming; read back when finished)."""
    config = config_lib.selected(config)
    target = resolve(config.method)
    if callable(target):
        return target(config, workdir)
    if not hasattr(target, "make_method"):
        return target.run(config, workdir)
    done = loop.read_results(workdir)
    if done is not None:
        print(f"{workdir} holds a finished run: {format_summary(done, config)}", flush=True)
        return done
    t0 = time.time()
    started = provenance_lib.record_start(workdir)
    mesh = mesh_lib.make_mesh(config.mesh.axes)
    splits, info = experiment.load_splits(config.data)
    inputs = RunInputs(config, workdir, splits, info, mesh)
    if hasattr(target, "teachers"):
        inputs.teachers = list(target.teachers(config, inputs))
    elif getattr(target, "NEEDS_TEACHER", True):
        teacher, summary = experiment.get_teacher(config, workdir, splits, info, mesh)
        inputs.teachers, inputs.teacher_summaries = [teacher], [summary]
    method = target.make_method(config, inputs)
    model = experiment.build_model(config.model, info.num_classes)
    result = loop.fit(config, workdir, model=model, method=method, train=splits["train"],
                      info=info, evals={k: v for k, v in splits.items() if k != "train"},
                      teachers=inputs.teachers, init_variables=inputs.init_variables,
                      horizon_epochs=inputs.horizon_epochs, mesh=mesh)
    last = result.history[-1] if result.history else {}
    results = {"method": config.method, "seed": config.seed,
               "test_accuracy": last.get("test/accuracy"),
               "validation_accuracy": last.get("validation/accuracy"),
               "teacher_queries": result.teacher_queries,
               "history": result.history,
               "config": config.to_dict(), "provenance": started,
               "placement": placement.describe(config),
               "wall_time": time.time() - t0, "examples_per_sec": result.examples_per_sec}
    if inputs.teacher_summaries:
        results["teacher"] = inputs.teacher_summaries[0]
    if hasattr(target, "summarize"):
        results.update(target.summarize(config, inputs, result))
    loop.write_results(workdir, results)
    print(format_summary(results, config), flush=True)
    return results


def format_summary(results: dict, config) -> str:
    """The run's one-table summary: teacher and student test accuracy, teacher queries."""
    lines = [f"{config.method}: dataset {config.data.name}, student {config.model.name}, "
             f"seed {config.seed}", "| model | test accuracy | teacher queries |", "|---|---|---|"]
    if "teacher" in results:
        lines.append(f"| teacher ({config.teacher.name}) | "
                     f"{100 * results['teacher']['test_accuracy']:.2f}% | - |")
    acc = results.get("test_accuracy")
    lines.append(f"| student ({config.model.name}) | "
                 f"{'-' if acc is None else f'{100 * acc:.2f}%'} | "
                 f"{results.get('teacher_queries', 0)} |")
    if config.get("scale_note"):
        lines.append(f"NOTE: {config.scale_note}")
    lines.append(f"total wall time {results['wall_time']:.1f} s")
    return "\n".join(lines)
