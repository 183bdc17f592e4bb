"""Pre-registered confirmation runs: arms, fresh seeds, unit, metric and decision rule, committed
before the run (issue 33, item 5).

A pre-registration file is a small Python file (like an experiments/ config) whose
`get_prereg()` returns a `Prereg`; one file per table, e.g. experiments/alm/prereg/
sec5_confirm.py. The registry builds the confirmation entry from it (`table_spec`), so the file
is the single statement of what runs and how it is judged:

    from kdjax.reproduce.prereg import Comparison, Prereg

    def get_prereg():
        return Prereg(id="x_confirm", paper="x", title="...", config="experiments/x/cfg.py",
                      seeds="grid:seed", fresh={"seed": tuple(range(100, 110))},
                      exploratory=("x_variants",), axis="variant",
                      arms={"variant": (BASE, NEW)}, metric="student",
                      metrics=(Metric("student", "test_accuracy"),),
                      comparisons=(Comparison("NEW", "BASE"),),
                      unit="one seed: its own data draw, teacher and initialisation")

`python -m launch.reproduce --table=x_confirm` then refuses to start, in one line, unless the
file is committed and unmodified (`file_state`), its seeds share none with the exploratory
entries it names (`check_fresh`), `--seeds` is not given, and the workdir holds no point run
under another version of the file; every point records the file's commit in its provenance.
The report judges the declared comparisons under the declared rule (`verdict`) and labels the
entry "confirmation (pre-registered: FILE @ commit)".

Decision rule (`RULE`): every comparison a − b of the table is a two-sided paired t-test of
E[a − b] = 0 over the declared unit; the m p-values are Holm-adjusted together (family-wise
α); a comparison is *helpful* when its Holm-matched interval lies above 0, *harmful* when it
lies below 0, *inconclusive* otherwise (kdjax/reproduce/stats.py `judge`). An arm is
*helpful* when every comparison it is the arm of is helpful, *not helpful* when any is
harmful, *inconclusive* otherwise; fewer than 3 units: *untested*.

Units of a grid table: `unit_fields` (config fields, default the seed field) name what one unit
is; records sharing a unit (e.g. several student seeds under one teacher seed) are averaged
first, and the comparison is paired over the units (the interval over teacher draws). A
runner table (no metrics: the runner compares its arms itself, e.g. ALM-KD's Sec. 5 runner) is
judged on the runner's paired rows 'a − b', whose unit is the runner's seed.
"""
from __future__ import annotations

import dataclasses
import importlib.util
import os
from typing import Any, Mapping, Sequence

import numpy as np

from kdjax.reproduce import stats
from kdjax.reproduce.spec import REPO_ROOT, SCALES, Baseline, TableSpec, _label
from kdjax.reproduce.prereg_checks import (  # noqa: F401  (the module's API)
    PreregError, check_fresh, check_records, file_state, label, recorded_seeds, used_seeds)
from kdjax.reproduce.sweep import Setting

RULE = ("two-sided paired t-test of each comparison over the unit, Holm-adjusted over the "
        "table's m comparisons at family-wise α = {alpha:g}; a comparison is helpful when its "
        "Holm-matched interval lies above 0, harmful below 0, inconclusive otherwise; an arm is "
        "helpful when all its comparisons are, not helpful when any is harmful, inconclusive "
        "otherwise; untested with fewer than 3 units")
HELPFUL, NOT_HELPFUL, INCONCLUSIVE, UNTESTED = ("helpful", "not helpful", "inconclusive",
                                                "untested")


@dataclasses.dataclass(frozen=True)
class Comparison:
    """arm − baseline on the arm axis (values are the axis' labels; a runner table: its arm
    names as its paired rows spell them)."""
    arm: Any
    baseline: Any

    @property
    def name(self) -> str:
        return f"{self.arm} − {self.baseline}"


@dataclasses.dataclass(frozen=True)
class Prereg:
    """One table's pre-registration.

    id, paper, title, config, args, metrics, notes, full_here, cpu_offline: as TableSpec.
    seeds: 'grid:<field>' (one point per seed) or 'count:<field>' (the runner vectorises
      `<field>` seeds, starting at the config's `fresh` start field).
    fresh: config field -> the fresh seeds. grid: the seed field's values, and any other seed
      field (e.g. 'teacher.seed'), which becomes a grid axis; count: one start field (e.g.
      'seed0') with contiguous values.
    exploratory: the entries whose seeds these must not share (`used_seeds`).
    unit: what one paired observation is, in words; unit_fields: the config fields whose values
      identify it (grid tables; default: the seed field).
    metric: the primary metric: a Metric name (grid tables) or, for a runner table, what its
      paired rows compare (words).
    axis, arms: the arm axis and the grid axes (values as TableSpec.grid); overrides: fields set
      on every point (a runner's arms, e.g. {'arms': {...}, 'arm_order': [...]}).
    comparisons: the Comparisons judged, one Holm family; alpha: its family-wise error rate.
    """
    id: str
    paper: str
    title: str
    config: str
    seeds: str
    fresh: Mapping[str, tuple]
    exploratory: tuple
    unit: str
    metric: str
    comparisons: tuple
    args: Mapping[str, str] = dataclasses.field(
        default_factory=lambda: {"cpu": "cpu", "full": "full"})
    axis: str = ""
    arms: Mapping[str, tuple] = dataclasses.field(default_factory=dict)
    overrides: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    unit_fields: tuple = ()
    seeds_per_draw: int = 0   # N > 0: draw i runs fresh[seed field][i·N : (i + 1)·N] (nested)
    metrics: tuple = ()
    alpha: float = stats.ALPHA
    full_here: bool = False
    cpu_offline: bool = True
    notes: str = ""
    path: str = ""   # set by `load`: the file, relative to the repo root

    @property
    def mode(self) -> str:
        return self.seeds.partition(":")[0]

    @property
    def seed_field(self) -> str:
        return self.seeds.partition(":")[2]

    def rule(self) -> str:
        return RULE.format(alpha=self.alpha)

    def __post_init__(self):
        where = f"pre-registration {self.path or self.id}"
        if self.mode not in ("grid", "count") or not self.seed_field:
            raise PreregError(f"{where}: seeds must be 'grid:<field>' or 'count:<field>', got "
                              f"{self.seeds!r}")
        if not self.fresh or any(not tuple(v) for v in self.fresh.values()):
            raise PreregError(f"{where}: fresh must give each seed field its seeds")
        for field, values in self.fresh.items():
            v = tuple(values)
            if any(not isinstance(s, int) or s < 0 for s in v) or len(set(v)) != len(v):
                raise PreregError(f"{where}: fresh[{field!r}] must be distinct integers >= 0")
        if self.mode == "grid" and self.seed_field not in self.fresh:
            raise PreregError(f"{where}: fresh must declare the seed field "
                              f"{self.seed_field!r}")
        if self.mode == "count":
            (start, values), = self.fresh.items() if len(self.fresh) == 1 else ((None, ()),)
            if start is None or start == self.seed_field:
                raise PreregError(f"{where}: a count table declares one start field in fresh "
                                  f"(e.g. 'seed0'), not {sorted(self.fresh)}")
            if tuple(values) != tuple(range(values[0], values[0] + len(values))):
                raise PreregError(f"{where}: fresh[{start!r}] must be contiguous seeds")
        if not self.comparisons or not all(isinstance(c, Comparison) for c in self.comparisons):
            raise PreregError(f"{where}: comparisons must be a non-empty tuple of Comparisons")
        if self.metrics and (self.axis not in self.arms or
                             self.metric not in {m.name for m in self.metrics}):
            raise PreregError(f"{where}: a grid table needs axis in arms and metric naming one "
                              "of its metrics")
        if self.metrics:
            labels = {_label(v) for s in SCALES for v in _per_scale(self.arms[self.axis], s)}
            for c in self.comparisons:
                for v in (c.arm, c.baseline):
                    if v not in labels:
                        raise PreregError(f"{where}: comparison value {v!r} is not an arm of "
                                          f"axis {self.axis!r} ({sorted(map(str, labels))})")
        extra = [f for f in self.unit_fields if f not in self.fresh]
        if extra or len([f for f in self.unit_fields if f != self.seed_field]) > 1:
            raise PreregError(f"{where}: unit_fields must name one seed field of fresh (the "
                              f"draw), got {self.unit_fields}")
        draw_fields = [f for f in self.unit_fields if f != self.seed_field]
        if self.seeds_per_draw and (
                self.seeds_per_draw < 0 or self.mode != "grid" or not draw_fields or
                len(self.fresh[self.seed_field]) !=
                self.seeds_per_draw * len(self.fresh[draw_fields[0]])):
            raise PreregError(f"{where}: seeds_per_draw {self.seeds_per_draw} needs a grid table, "
                              "unit_fields naming the draw, and fresh[seed field] holding "
                              "seeds_per_draw x draws seeds")
        if not 0 < self.alpha < 1:
            raise PreregError(f"{where}: alpha must be in (0, 1), got {self.alpha}")


def _per_scale(values, scale):
    return values[scale] if isinstance(values, Mapping) else values


def load(path: str) -> Prereg:
    """`get_prereg()` of a pre-registration file (relative to the repo root or absolute)."""
    full = path if os.path.isabs(path) else os.path.join(REPO_ROOT, path)
    if not os.path.exists(full):
        raise PreregError(f"pre-registration file {path} does not exist")
    name = "kdjax_prereg_" + os.path.basename(full)[:-3]
    module_spec = importlib.util.spec_from_file_location(name, full)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    p = module.get_prereg()
    if not isinstance(p, Prereg):
        raise PreregError(f"{path}: get_prereg() must return a Prereg, got {type(p).__name__}")
    return dataclasses.replace(p, path=os.path.relpath(full, REPO_ROOT)
                               if not os.path.isabs(path) else full)


def axis_of(field: str) -> str:
    """The grid axis of an extra seed field ('teacher.seed' -> 'teacher_seed')."""
    return field.replace(".", "_")


def table_spec(p: Prereg) -> TableSpec:
    """The confirmation entry: the declared arms, exactly the fresh seeds, the overrides."""
    grid = {}
    default = {"cpu": 1, "full": 1}
    seed_values = ()
    if p.mode == "grid":   # extra seed fields outermost: a partial run holds whole draws
        for field, values in p.fresh.items():
            if field != p.seed_field:
                grid[axis_of(field)] = tuple(Setting(str(v), ((field, v),)) for v in values)
        grid.update(p.arms)
        seed_values = tuple(p.fresh[p.seed_field])
    else:
        grid.update(p.arms)
        (start, values), = p.fresh.items()
        grid[start] = (values[0],)
        default = {"cpu": len(values), "full": len(values)}
    paired = ()
    if p.metrics:   # the declared comparisons, in the table's paired rows too
        paired = tuple(Baseline(p.axis, c.baseline, values=(c.arm,), metrics=(p.metric,))
                       for c in p.comparisons)
    return TableSpec(id=p.id, paper=p.paper, title=p.title, config=p.config, args=dict(p.args),
                     grid=grid, seeds=p.seeds, default_seeds=default, metrics=p.metrics,
                     paired=paired, draw=_draw_axis(p),
                     seed_values=seed_values, seeds_per_draw=p.seeds_per_draw,
                     overrides=tuple(p.overrides.items()),
                     full_here=p.full_here, cpu_offline=p.cpu_offline, prereg=p.path,
                     notes=p.notes)


def of(spec: TableSpec) -> Prereg | None:
    return load(spec.prereg) if spec.prereg else None


def run_state(records: Sequence[dict], spec: TableSpec | None = None) -> tuple[dict | None, str]:
    """(the pre-registration state every record ran under, '') or (None, why not): also when
    `spec`'s declared points are not all finished (a partial run confirms nothing)."""
    from kdjax.reproduce.sweep import expand
    if spec is not None and records:
        declared = {p.name for p in expand(spec, records[0]["scale"])}
        done = declared & {r["point"] for r in records}
        if done != declared:
            return None, f"incomplete: {len(done)} of the {len(declared)} declared points ran"
    states = {(r.get("prereg") or {}).get("blob") for r in records}
    if None in states:
        return None, "some points were run without the pre-registration check"
    if len(states) != 1:
        return None, "the points were run under different versions of the pre-registration"
    return records[0]["prereg"], ""


# --- the verdict ------------------------------------------------------------------------------
def unit_diffs(p: Prereg, records: Sequence[dict]) -> dict[str, Any]:
    """{comparison name [cell]: difference} of a grid table over the declared unit: a
    stats.Paired over seeds, or, when the unit is a draw holding several seeds (unit_fields,
    e.g. a teacher seed), a stats.TwoLevel: each draw's differences averaged over its seeds,
    the interval over the draws (judged), every run pooled beside it."""
    from kdjax.reproduce.aggregate import _metric_value
    metric = {m.name: m for m in p.metrics}[p.metric]
    seed_field = p.seed_field
    draw = _draw_axis(p)
    extra = {axis_of(f) for f in p.fresh if f != seed_field}
    by_cell: dict[tuple, dict] = {}
    for r in records:
        params = r["params"]
        value = _metric_value(r, metric)
        if value is None:
            continue
        cell = tuple((k, v) for k, v in params.items()
                     if k not in extra | {p.axis, seed_field})
        run = tuple(params.get(a) for a in sorted(extra) + [seed_field])
        by_cell.setdefault(cell, {}).setdefault(params.get(p.axis), {})[run] = (
            params.get(draw), value)
    out = {}
    for cell, arms in by_cell.items():
        tag = ", ".join(f"{k.split('.')[-1]}={v}" for k, v in cell)
        for c in p.comparisons:
            a, b = arms.get(c.arm, {}), arms.get(c.baseline, {})
            runs = sorted(set(a) & set(b), key=str)
            if not runs:
                continue
            av, bv = [a[k][1] for k in runs], [b[k][1] for k in runs]
            name = c.name + (f" [{tag}]" if tag else "")
            out[name] = (stats.two_level(av, bv, [a[k][0] for k in runs]) if draw
                         else stats.paired(av, bv))
    return out


def _draw_axis(p: Prereg) -> str:
    """The grid axis of the declared unit when it is a draw above the seed ('' otherwise)."""
    fields = [f for f in p.unit_fields if f != p.seed_field]
    return axis_of(fields[0]) if fields else ""


def runner_diffs(p: Prereg, records: Sequence[dict]) -> dict[str, tuple]:
    """{comparison name: Paired} from a runner's paired rows (its last round)."""
    out = {}
    for r in records:
        rows = r["result"].get("paired_rows") or []
        for c in p.comparisons:
            found = [x for x in rows if x.get("comparison") == c.name and "diff" in x]
            if found:
                last = max(found, key=lambda x: (x["round"] != "all", str(x["round"]).zfill(9)))
                out[c.name] = stats.Paired(**last["diff"])
    return out


def verdict(p: Prereg, records: Sequence[dict]) -> dict:
    """{'status', 'detail', 'arms': {arm: verdict}, 'judged': [stats.Judged], 'diffs':
    {name: Paired or TwoLevel}} under the pre-registered rule."""
    diffs = unit_diffs(p, records) if p.metrics else runner_diffs(p, records)
    missing = [c.name for c in p.comparisons
               if not any(k == c.name or k.startswith(c.name + " [") for k in diffs)]
    if missing or any(stats.reported(d).n < stats.MIN_N for d in diffs.values()):
        why = (f"no result for {', '.join(missing)}" if missing else
               f"fewer than {stats.MIN_N} units")
        return {"status": f"confirmation {UNTESTED}", "detail": why, "arms": {}, "judged": [],
                "diffs": diffs}
    judged = stats.judge(diffs, "greater", 0.0, p.alpha)
    arms = {}
    for c in p.comparisons:
        readings = [j.reading for j in judged
                    if j.name == c.name or j.name.startswith(c.name + " [")]
        arms.setdefault(c.arm, []).extend(readings)
    words = {}
    for arm, readings in arms.items():
        words[arm] = (NOT_HELPFUL if stats.CONTRADICTS in readings else
                      HELPFUL if set(readings) == {stats.SUPPORTS} else INCONCLUSIVE)
    n = min(stats.reported(d).n for d in diffs.values())
    unit = " draws" if any(isinstance(d, stats.TwoLevel) for d in diffs.values()) else ""
    status = ("confirmation: " + ", ".join(f"{a} {w}" for a, w in words.items())
              + f" (n={n}{unit})")
    name = f"Holm, m = {len(judged)}, α = {p.alpha:g}"
    detail = f"{name}; " + "; ".join(f"{j.name}: {_reading(stats.fmt_judged(j))}"
                                     for j in judged)
    return {"status": status, "detail": detail, "arms": words, "judged": judged,
            "diffs": diffs}


def _reading(text: str) -> str:
    return (text.replace(stats.SUPPORTS, "helpful").replace(stats.CONTRADICTS, "harmful")
            .replace(stats.SPANS, "inconclusive"))


def claim(spec: TableSpec, records: Sequence[dict]) -> tuple[str, str]:
    """(status, detail) of a confirmation entry, in the form of a claim's verdict."""
    state, why = run_state(records, spec)
    if state is None:
        return "not a confirmation", why
    v = verdict(of(spec), records)
    return v["status"], f"{label(state)}; {v['detail']}"


def report_lines(spec: TableSpec, records: Sequence[dict]) -> list[str]:
    """Markdown: the entry's label, the declaration and the verdict under its rule."""
    p = of(spec)
    state, why = run_state(records, spec)
    if state is None:
        return [f"Pre-registration: {p.path} — **not a confirmation**: {why}.", ""]
    current = _current_blob(p.path)
    changed = (f" The file has changed since (blob {current[:7]} at HEAD, {state['blob'][:7]} "
               "when the run started): the verdict below uses the file as it is now."
               if current and current != state["blob"] else "")
    v = verdict(p, records)
    lines = [f"Entry: **{label(state)}**; committed and unmodified when the run started "
             f"({_started(records)}).{changed}",
             f"Declared: comparisons {', '.join(c.name for c in p.comparisons)}; seeds "
             + "; ".join(f"{f} {_span(v_)}" for f, v_ in p.fresh.items())
             + f" (none used by {', '.join(p.exploratory)}); unit: {p.unit}; metric: {p.metric};"
             f" rule: {p.rule()}.", "",
             f"Pre-registered verdict: **{v['status']}** — {v['detail']}.", ""]
    two = {k: d for k, d in v["diffs"].items() if isinstance(d, stats.TwoLevel)}
    if two:
        lines += ["Each comparison at 95% over the pre-registered unit, with every run pooled "
                  "beside it (within-teacher; not the unit judged): " + "; ".join(
                      f"{k}: {stats.fmt_two_level(d)}" for k, d in two.items()) + ".", ""]
    return lines


def _span(values) -> str:
    v = list(values)
    return (f"{v[0]}..{v[-1]}" if v == list(range(v[0], v[0] + len(v))) and len(v) > 2
            else ", ".join(map(str, v)))


def _started(records: Sequence[dict]) -> str:
    times = sorted(str((r.get("prereg") or {}).get("checked", "")) for r in records)
    return f"first point checked {times[0]}" if times and times[0] else "time not recorded"


def _current_blob(path: str) -> str:
    try:
        return file_state(path)["blob"]
    except PreregError:
        return ""
