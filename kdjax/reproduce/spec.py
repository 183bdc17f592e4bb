"""What a reproducible table or figure is: a base config, a grid, and how to read its results."""
from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import os
from typing import Any, Callable, Mapping, Optional

import ml_collections

from kdjax import run as run_lib

SCALES = ("cpu", "full")
KINDS = ("table", "figure")
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@dataclasses.dataclass(frozen=True)
class Metric:
    """One number per point, read from the runner's result at a dotted `path`.

    `paper` is a key path into the paper numbers of `spec.paper` (papers/paper_numbers.py); its
    strings may hold `{param}` placeholders filled from the point's grid values ('{method}').
    """
    name: str
    path: str
    scale: float = 100.0
    paper: tuple = ()


@dataclasses.dataclass(frozen=True)
class Baseline:
    """Paired differences against one value of a method/variant axis (issue 18).

    For every other value v of grid axis `axis` (or only those in `values`), per cell of the
    other axes: v − `value` over the seeds both ran, as the mean difference with its 95%
    t-interval and n (kdjax/reproduce/stats.py `paired`). `value` is the grid value (a
    Setting's label). metrics: names of the table's Metrics compared (() = the first one).
    """
    axis: str
    value: Any
    values: tuple = ()
    metrics: tuple = ()


@dataclasses.dataclass(frozen=True)
class Claim:
    """A paper's claim about a harness-aggregated table, judged on paired differences.

    `arm` − each value of `over` along grid axis `axis`, per cell of the other axes, over the
    seeds both ran (as a Baseline), on `metric` (a Metric name; '' = the table's first); the
    verdict is kdjax/reproduce/stats.py `claim_status(diffs, kind, margin)` over every such
    difference, Holm-corrected across all of them (kind 'greater': "arm outperforms each of
    over"). margin: δ of kinds 'not_worse' / 'equal', in the metric's raw units (fractions for
    accuracies). text: the claim in the paper's words.
    """
    text: str
    axis: str
    arm: Any
    over: tuple
    kind: str = "greater"
    metric: str = ""
    margin: float = 0.0


@dataclasses.dataclass(frozen=True)
class Verify:
    """What `launch.reproduce --verify` re-runs of an entry that fits a CPU in minutes: its
    points at `scale`, with `seeds` seeds (None = the table's default; a smaller number is a
    declared subset, only for seeds='grid:...' tables, whose points are then compared one by
    one with the numbers the committed summary recorded for them)."""
    seeds: Optional[int] = None
    scale: str = "cpu"


@dataclasses.dataclass(frozen=True)
class Curve:
    """A per-epoch curve: `path` leads to a list of dicts; `y` is plotted against `x`."""
    name: str
    path: str
    x: str = "epoch"
    y: str = "test/accuracy"
    scale: float = 100.0


@dataclasses.dataclass(frozen=True)
class TableSpec:
    """One paper table/figure.

    config: an experiments/ config file (relative to the repo root); `args[scale]` is the
      argument its get_config receives (may carry a panel, e.g. 'cpu:cifar10:resnet').
    grid: dotted config field -> values (or {scale: values}); the sweep is their cartesian
      product.
    seeds: how `--seeds=N` enters the config: '' (the runner handles seeds itself, --seeds is
      ignored), 'grid:<field>' (one point per seed 0..N-1, e.g. 'grid:seed'),
      'count:<field>' (field = N, e.g. 'count:num_runs'), 'tuple:<field>' (field = (0..N-1)).
    metrics: numbers aggregated over seeds (mean ± std) per grid cell; empty = the runner's own
      `rows` (which already carry mean ± std and the paper's numbers) form the table.
    paired: Baselines; the report adds their paired differences over shared seeds (needs
      seeds='grid:<field>').
    claim: the paper's claim judged on paired differences (a Claim; needs seeds='grid:...'),
      so the status says 'claim not reproduced' where a finished run does not show it.
    draw: the grid field naming a point's (data, teacher) draw (e.g. 'teacher.seed'; '' = one
      draw). Set, the paired differences (and the claim) are two-level (issue 33,
      kdjax/reproduce/stats.py `two_level`): each draw's differences averaged over its seeds,
      the t-interval over the draws (n = draws) reported and judged, the runs pooled beside it.
      With seeds 'grid:<field>' the seeds are nested in the draws: draw i (in grid order) runs
      seeds i·N .. i·N + N − 1. A seed shared by every draw would shift every draw's
      difference alike (same initialisation and data order under each teacher), and the
      interval over the draws would not show that variance. (`seed_values`, a pre-registered
      table's declared seeds, are used as declared: under every draw, or, with
      `seeds_per_draw` = N, draw i runs seed_values[i·N : (i + 1)·N].)
    paper_rows: grid field -> {our value (a Setting's label) -> the paper's name for it}, used
      only to fill the `{param}` placeholders of Metric.paper (e.g. alm.variant 'takd' ->
      the paper's row 'TAKD').
    verify: a Verify: the entry is cheap enough for `--verify` (None: it is not re-run there).
    full_here: the paper's full setting runs on this 2-core CPU (the toys).
    seed_values: the exact seeds of a 'grid:<field>' table, in place of 0..N-1 (a pre-registered
      table's fresh seeds; `--seeds` cannot change them).
    overrides: ((dotted field, value), ...) set on every point's config before its grid values.
    prereg: the pre-registration file a confirmation entry is built from (kdjax/reproduce/
      prereg.py): its run checks the file is committed and unmodified and records its commit,
      and its report judges the declared comparisons under the declared rule.
    cpu_offline: the cpu-scale version reads only offline data (fashion_mnist / digits /
      synthetic); False = it needs a prepared TFDS dataset.
    """
    id: str
    paper: str
    title: str
    config: str
    kind: str = "table"
    args: Mapping[str, str] = dataclasses.field(
        default_factory=lambda: {"cpu": "cpu", "full": "full"})
    grid: Mapping[str, tuple] = dataclasses.field(default_factory=dict)
    seeds: str = ""
    default_seeds: Mapping[str, int] = dataclasses.field(
        default_factory=lambda: {"cpu": 1, "full": 3})
    metrics: tuple = ()
    curves: tuple = ()
    paired: tuple = ()
    claim: Optional[Claim] = None
    draw: str = ""
    paper_rows: Mapping[str, Mapping] = dataclasses.field(default_factory=dict)
    verify: Optional[Verify] = None
    full_here: bool = False
    cpu_offline: bool = True
    notes: str = ""
    seed_values: tuple = ()
    seeds_per_draw: int = 0
    overrides: tuple = ()
    prereg: str = ""

    def claim_baselines(self) -> tuple:
        """The Baselines whose paired differences judge `claim` (empty without one)."""
        c = self.claim
        if c is None:
            return ()
        return tuple(Baseline(c.axis, v, values=(c.arm,), metrics=(c.metric,) if c.metric else ())
                     for v in c.over)

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"table {self.id!r}: kind must be one of {KINDS}, got {self.kind!r}")
        for scale in SCALES:
            if scale not in self.args:
                raise ValueError(f"table {self.id!r}: args needs an entry for scale {scale!r}")
        mode = self.seeds.partition(":")[0]
        if self.seeds and (mode not in ("grid", "count", "tuple") or ":" not in self.seeds):
            raise ValueError(f"table {self.id!r}: seeds must be '', 'grid:<field>', "
                             f"'count:<field>' or 'tuple:<field>', got {self.seeds!r}")
        for key, values in self.grid.items():
            per_scale = values if isinstance(values, Mapping) else {s: values for s in SCALES}
            for scale in SCALES:
                v = per_scale.get(scale)
                if not isinstance(v, (tuple, list)) or not v:
                    raise ValueError(f"table {self.id!r}: grid[{key!r}] must be a non-empty "
                                     f"tuple (or a {{scale: tuple}} dict), got {values!r}")

        names = {m.name for m in self.metrics}
        if self.draw and self.draw not in self.grid:
            raise ValueError(f"table {self.id!r}: draw {self.draw!r} is not a grid axis")
        if self.draw and self.draw == self.seeds.partition(":")[2]:
            raise ValueError(f"table {self.id!r}: draw {self.draw!r} must differ from the "
                             "seed field (the student initialisation)")
        if self.claim is not None and self.claim.kind not in ("greater", "not_worse", "equal"):
            raise ValueError(f"table {self.id!r}: claim kind {self.claim.kind!r} is not one of "
                             "greater / not_worse / equal")
        for b in tuple(self.paired) + self.claim_baselines():
            if not isinstance(b, Baseline):
                raise ValueError(f"table {self.id!r}: paired entries must be Baselines, got {b!r}")
            if not self.seeds.startswith("grid:"):
                raise ValueError(f"table {self.id!r}: paired differences need seeds='grid:...'")
            if b.axis not in self.grid:
                raise ValueError(f"table {self.id!r}: paired axis {b.axis!r} is not a grid axis")
            labels = {_label(v) for s in SCALES for v in _values(self.grid[b.axis], s)}
            for v in (b.value,) + tuple(b.values):
                if v not in labels:
                    raise ValueError(f"table {self.id!r}: {v!r} is not a value of grid axis "
                                     f"{b.axis!r} ({sorted(map(str, labels))})")
            if not self.metrics or any(m not in names for m in b.metrics):
                raise ValueError(f"table {self.id!r}: paired metrics {b.metrics!r} must name "
                                 f"metrics of the table ({sorted(names)})")
        if self.seed_values and not self.seeds.startswith("grid:"):
            raise ValueError(f"table {self.id!r}: seed_values need seeds='grid:<field>'")
        if self.seeds_per_draw < 0:
            raise ValueError(f"table {self.id!r}: seeds_per_draw must be >= 0, got "
                             f"{self.seeds_per_draw}")
        if self.seeds_per_draw and (not self.draw or not self.seed_values):
            raise ValueError(f"table {self.id!r}: seeds_per_draw needs a draw and seed_values")
        if len(set(self.seed_values)) != len(self.seed_values):
            raise ValueError(f"table {self.id!r}: seed_values repeat a seed: {self.seed_values}")
        if self.verify is not None:
            if self.verify.scale not in SCALES:
                raise ValueError(f"table {self.id!r}: verify scale must be one of {SCALES}, "
                                 f"got {self.verify.scale!r}")
            if self.verify.seeds is not None and (
                    not self.seeds.startswith("grid:") or self.verify.seeds < 1):
                raise ValueError(f"table {self.id!r}: a verify subset of seeds needs "
                                 "seeds='grid:...' and at least one seed")
        for key in self.paper_rows:
            if key not in self.grid:
                raise ValueError(f"table {self.id!r}: paper_rows key {key!r} is not a grid axis")

    def command(self, scale: str) -> str:
        flag = "" if scale == "cpu" else f" --scale={scale}"
        return f"python -m launch.reproduce --table={self.id}{flag}"


def _values(values, scale: str) -> tuple:
    return values[scale] if isinstance(values, Mapping) else values


def _label(value):
    """A grid value as records and tables name it (a Setting's label)."""
    return getattr(value, "label", value)


def config_path(spec: TableSpec) -> str:
    return os.path.join(REPO_ROOT, spec.config)


def load_config(path: str, arg: str | None = None) -> ml_collections.ConfigDict:
    """`get_config(arg)` of a config file (like ml_collections' config_flags does)."""
    full = path if os.path.isabs(path) else os.path.join(REPO_ROOT, path)
    if not os.path.exists(full):
        raise FileNotFoundError(f"config file {path} does not exist")
    name = "kdjax_repro_cfg_" + os.path.relpath(full, REPO_ROOT).replace(os.sep, "_")[:-3]
    module_spec = importlib.util.spec_from_file_location(name, full)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module.get_config(arg)


@dataclasses.dataclass(frozen=True)
class Implementation:
    ok: bool
    reason: str = ""


def implementation(spec: TableSpec) -> Implementation:
    """Whether the table's config file exists, loads, and names an importable runner."""
    if not os.path.exists(config_path(spec)):
        return Implementation(False, f"{spec.config} does not exist yet")
    try:
        config = load_config(spec.config, spec.args["cpu"])
        run_lib.resolve(config.method)
    except (ImportError, AttributeError) as e:
        return Implementation(False, f"runner not importable: {e}")
    except Exception as e:  # noqa: BLE001 — a config that cannot be built is not implemented
        return Implementation(False, f"config does not load: {type(e).__name__}: {e}")
    return Implementation(True)


def load_registry(target: str, flag: str = "--registry") -> Mapping[str, Any]:
    """'package.module:ATTRIBUTE' -> what it holds (the {id: TableSpec} registry, or the papers'
    numbers for `flag='--paper_numbers'`)."""
    module, _, name = target.partition(":")
    if not module or not name:
        raise ValueError(f"{flag} must look like 'package.module:ATTRIBUTE', got {target!r}")
    return getattr(importlib.import_module(module), name)


def check_registry(tables: Mapping[str, TableSpec]) -> None:
    for key, spec in tables.items():
        if key != spec.id:
            raise ValueError(f"registry key {key!r} differs from its spec id {spec.id!r}")
