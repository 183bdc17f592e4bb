"""The method API: what a method's `make_method(config, run)` is handed, and what it returns.

A method module (`config.method`, kdjax/methods/__init__.py) provides

    make_method(config, run: Run) -> Method | Plan        (required)
    section() -> ConfigDict, CHECKS, TEACHER_FIELDS,       (optional: its config section, here
    check_config(config) -> str | None                      or in its package's config.py)
    uses(config) -> [method names]                         (optional: other methods whose
                                                            sections it reads, e.g. LR+DS's base)

It asks `run` for what it needs from the run — its teacher, predictions of a model on a split,
a sub-stage trained once into a folder of the run (DiSK's CE warm start), another method's plan
(LR+DS's base) — and returns what it wants done: a bare `Method` distils from the run's teacher;
a `Plan` names its teachers (none for CE), a warm start, a longer schedule, its results.json
entries. A method imports this module, `kdjax.train.method`, `kdjax.losses`, `kdjax.models`,
the data types and its own files — never the runner (`kdjax.run`, `kdjax.experiment`,
`kdjax.train.loop`), which implements `Run` (kdjax/run.py: `Context`).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Protocol, Sequence

import ml_collections
import numpy as np

from kdjax.train.loop import FitResult, Teacher  # noqa: F401  (the types a method sees)
from kdjax.train.method import EpochContext, LossFn, Method, StepContext  # noqa: F401


@dataclasses.dataclass(frozen=True)
class Plan:
    """What a method asks the run to do besides training its `Method`.

    teachers: the frozen teachers `fit` feeds the loss (`run.teacher()`'s, ALM-KD's sets;
        none for a method without a teacher).
    init_variables: `{'params', 'batch_stats'}` the student starts from (a warm start).
    horizon_epochs: the epochs the learning-rate schedule spans (default `train.epochs`).
    summarize: `FitResult -> dict` of method-specific results.json entries.
    """
    method: Method
    teachers: Sequence[Teacher] = ()
    init_variables: Any = None
    horizon_epochs: int | None = None
    summarize: Callable[[FitResult], dict] | None = None


def teacher_seed(config: ml_collections.ConfigDict) -> int:
    """The seed of the teacher and of a method's other teacher-side stages (ALM-KD's
    assistants, LR+DS's warm-up student): `teacher.seed`, or the run's seed when it is -1."""
    return int(config.seed if config.teacher.seed < 0 else config.teacher.seed)


class Run(Protocol):
    """What a method may ask of the run it is part of (kdjax.run.Context implements it).

    config, workdir (the run's folder: a method's own caches live there), splits ({'train',
    'validation'?, 'test'}), info (DatasetInfo), mesh.
    """
    config: ml_collections.ConfigDict
    workdir: str
    splits: dict
    info: Any
    mesh: Any

    def teacher(self, config: ml_collections.ConfigDict | None = None) -> tuple[Teacher, dict]:
        """The teacher `config.teacher` describes (default: the run's config), trained once
        with `teacher_seed` into its folder or loaded, with its summary (test accuracy,
        source); its logits on the training split cached when inputs are not augmented."""

    def teacher_path(self, config: ml_collections.ConfigDict | None = None) -> str:
        """Where that teacher's checkpoints are (`teacher.checkpoint` or its folder)."""

    def model(self, model_config: ml_collections.ConfigDict):
        """The Flax module of a `model` / `teacher` config section for this data."""

    def predict(self, model, variables, split) -> tuple[np.ndarray, np.ndarray]:
        """(logits, penultimate features) of `model` on every row of `split`."""

    def accuracy(self, model, variables, split) -> float:
        """Top-1 accuracy of `model` on `split`."""

    def load(self, path: str, step: int | None = None) -> dict:
        """Variables of a checkpointed run (its latest step or `step`), on the mesh."""

    def stage(self, name: str, config: ml_collections.ConfigDict, method: Method, *,
              teachers: Sequence[Teacher] = (), evals: Sequence[str] = (),
              record: Callable[[FitResult, dict], dict] | None = None) -> tuple[dict, dict]:
        """Train the student of `config` with `method` once into `<workdir>/<name>` (read
        back when finished) -> (its variables on the mesh, its results): `record(result,
        variables)` entries and the wall time, written when it finishes."""

    def plan(self, name: str) -> Plan:
        """Method `name`'s plan for this run (a bare `Method` distilling the run's teacher
        made a `Plan`): how a method builds on another (LR+DS on its base)."""
