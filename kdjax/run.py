"""One run: one method, one seed, one teacher/student pair, from a config to `results.json`.

`config.method` names the method (kdjax/methods/__init__.py): a module with
`make_method(config, run) -> Method | Plan` (the method API, kdjax/methods/api.py), or a driver
that runs itself (`'module:function'`, or a module with `run(config, workdir)`). The runner
hands the method a `Context` — the run's data, mesh and folder, and the teacher, predictions,
sub-stages and other methods' plans it asks for — and trains what the method returns with
`loop.fit`. Grids, seeds and tables live in `kdjax/reproduce`, never here.
"""
from __future__ import annotations

import dataclasses
import os
import time
from typing import Any, Callable, Sequence

import jax
import ml_collections

from kdjax import config as config_lib
from kdjax import experiment, methods, placement, stages
from kdjax import provenance as provenance_lib
from kdjax.methods.api import Plan
from kdjax.train import checkpoint as ckpt_lib
from kdjax.train import loop
from kdjax.train import mesh as mesh_lib
from kdjax.train.method import Method

resolve = methods.resolve


@dataclasses.dataclass
class Context:
    """The run a method is part of (`kdjax.methods.api.Run`): what `make_method` may ask for.

    `given_teacher` (teacher, summary) replaces the teacher the config describes (RAD's
    retraining rounds hand in the loop's teacher with its targets as logits). The runner reads
    back which teacher the run asked for (`teacher_summary`, results.json's 'teacher').
    """
    config: ml_collections.ConfigDict
    workdir: str
    splits: dict
    info: Any
    mesh: Any
    given_teacher: tuple | None = None
    teacher_summary: dict | None = dataclasses.field(default=None, init=False)
    _teacher: tuple | None = dataclasses.field(default=None, init=False, repr=False)

    def teacher(self, config: ml_collections.ConfigDict | None = None) -> tuple:
        if self.given_teacher is not None:
            return self.given_teacher
        if config is not None:
            return experiment.get_teacher(config, self.workdir, self.splits, self.info,
                                          self.mesh)
        if self._teacher is None:
            self._teacher = experiment.get_teacher(self.config, self.workdir, self.splits,
                                                   self.info, self.mesh)
            self.teacher_summary = self._teacher[1]
        return self._teacher

    def teacher_path(self, config: ml_collections.ConfigDict | None = None) -> str:
        config = config or self.config
        return config.teacher.checkpoint or experiment.teacher_dir(config, self.workdir)

    def model(self, model_config: ml_collections.ConfigDict):
        return experiment.build_model(model_config, self.info.num_classes)

    def predict(self, model, variables, split):
        return loop.predict_split(model, variables, split, self.info,
                                  self.config.data.eval_batch_size, self.mesh)

    def accuracy(self, model, variables, split) -> float:
        return loop.evaluate_split(model, variables, split, self.info,
                                   self.config.data.eval_batch_size, self.mesh)["eval/accuracy"]

    def load(self, path: str, step: int | None = None) -> dict:
        return mesh_lib.replicate(ckpt_lib.load_variables(path, step=step), self.mesh)

    def stage(self, name: str, config: ml_collections.ConfigDict, method: Method, *,
              teachers: Sequence[loop.Teacher] = (), evals: Sequence[str] = (),
              record: Callable | None = None) -> tuple[dict, dict]:
        folder = os.path.join(self.workdir, name)
        with stages.claim(folder, name.replace("/", "_"), experiment.stage_view(config)) as train:
            if not train:
                return self.load(folder), loop.read_results(folder)
            model = self.model(config.model)
            result = loop.fit(config, folder, model=model, method=method,
                              train=self.splits["train"], info=self.info, teachers=teachers,
                              evals={k: v for k, v in self.splits.items() if k in evals},
                              mesh=self.mesh)
            variables = mesh_lib.replicate(jax.device_get(loop.variables_of(result.state)),
                                           self.mesh)
            summary = {**(record(result, variables) if record else {}),
                       "wall_time": result.wall_time}
            loop.write_results(folder, summary)
        return variables, summary

    def plan(self, name: str) -> Plan:
        return make_plan(resolve(name), self.config, self)


def make_plan(module, config: ml_collections.ConfigDict, run: Context) -> Plan:
    """`module.make_method(config, run)` as a `Plan`: a bare `Method` distils the run's
    teacher."""
    out = module.make_method(config, run)
    if isinstance(out, Method):
        return Plan(out, teachers=[run.teacher()[0]])
    return out


def run(config: ml_collections.ConfigDict, workdir: str) -> dict:
    """Run `config.method` in `workdir` (resuming; read back when finished)."""
    config = config_lib.selected(config)
    target = resolve(config.method)
    done = loop.read_results(workdir)
    if done is not None:   # read back, never run again (a read-only folder works too)
        summary = (format_summary(done, config) if hasattr(target, "make_method") else
                   os.path.join(workdir, "results.json"))
        print(f"{workdir} holds a finished run: {summary}", flush=True)
        return done
    if callable(target):
        return target(config, workdir)
    if not hasattr(target, "make_method"):
        return target.run(config, workdir)
    t0 = time.time()
    started = provenance_lib.record_start(workdir)
    mesh = mesh_lib.make_mesh(config.mesh.axes)
    splits, info = experiment.load_splits(config.data)
    context = Context(config, workdir, splits, info, mesh)
    plan = make_plan(target, config, context)
    model = context.model(config.model)
    result = loop.fit(config, workdir, model=model, method=plan.method, train=splits["train"],
                      info=info, evals={k: v for k, v in splits.items() if k != "train"},
                      teachers=plan.teachers, init_variables=plan.init_variables,
                      horizon_epochs=plan.horizon_epochs, mesh=mesh)
    last = result.history[-1] if result.history else {}
    results = {"method": config.method, "seed": config.seed,
               "test_accuracy": last.get("test/accuracy"),
               "validation_accuracy": last.get("validation/accuracy"),
               "teacher_queries": result.teacher_queries,
               "history": result.history,
               "config": config.to_dict(), "provenance": started,
               "placement": placement.describe(config),
               "wall_time": time.time() - t0, "examples_per_sec": result.examples_per_sec}
    evaluated = [h for h in result.history if "validation/accuracy" in h]
    if evaluated:   # the early-stopped student (e.g. ALM-KD Table 3's early-stopped rows)
        best = max(evaluated, key=lambda h: h["validation/accuracy"])
        results["early_stop"] = {"epoch": best["epoch"], "test_accuracy": best["test/accuracy"],
                                 "validation_accuracy": best["validation/accuracy"]}
    if context.teacher_summary is not None:
        results["teacher"] = context.teacher_summary
    if plan.summarize is not None:
        results.update(plan.summarize(result))
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
