"""A table's sweep: the cartesian product of its grid (and seeds), one named point each."""
from __future__ import annotations

import dataclasses
import itertools
import re
from typing import Any, Mapping

import ml_collections

from kdjax.reproduce.spec import SCALES, TableSpec, load_config


@dataclasses.dataclass(frozen=True)
class Setting:
    """A grid value that sets several config fields together (a method variant, a
    teacher/student pair); its axis is a name, not a field, and `label` stands for it in
    point names, records and tables. fields: ((dotted field, value), ...)."""
    label: str
    fields: tuple

    def __hash__(self):
        return hash(self.label)


@dataclasses.dataclass(frozen=True)
class Point:
    """One run of a sweep: `params` are dotted config field -> value overrides (or axis name
    -> Setting)."""
    table: str
    scale: str
    name: str
    params: tuple  # ((field, value), ...) in grid order

    @property
    def param_dict(self) -> dict[str, Any]:
        return {k: v.label if isinstance(v, Setting) else v for k, v in self.params}

    @property
    def seed(self):
        return self.param_dict.get("seed")


def _fmt(value: Any) -> str:
    if isinstance(value, Setting):
        return value.label
    if isinstance(value, (tuple, list)):
        return "-".join(_fmt(v) for v in value)
    return str(value)


def point_name(params: tuple) -> str:
    """'method=kd,seed=0' -> 'method-kd_seed-0' (filesystem safe); 'all' for no params."""
    if not params:
        return "all"
    parts = [f"{field.split('.')[-1]}-{_fmt(value)}" for field, value in params]
    return re.sub(r"[^A-Za-z0-9._=-]+", "", "_".join(parts).replace("/", "-").replace(":", "-"))


def seeds_of(spec: TableSpec, scale: str, seeds: int | None) -> int:
    n = spec.default_seeds.get(scale, 1) if seeds is None else seeds
    if n < 1:
        raise ValueError(f"--seeds must be >= 1, got {n}")
    return n


def _nested_seeds(spec: TableSpec, axes: list):
    """Where the seeds are nested in the draws (TableSpec.draw): the seed axis (last of `axes`)
    becomes the index within a draw and the returned (draw, index) -> seed gives draw i its
    own seeds i·N .. i·N + N − 1 (or the declared seed_values dealt out N per draw). None
    where they are not (no draw, or declared seeds run under every draw)."""
    if not spec.draw or (spec.seed_values and not spec.seeds_per_draw):
        return None
    field, values = axes[-1]
    draws = dict(axes)[spec.draw]
    n = spec.seeds_per_draw or len(values)
    pool = spec.seed_values or tuple(range(n * len(draws)))
    if len(pool) != n * len(draws):
        raise ValueError(f"table {spec.id!r}: {len(pool)} seed_values for {len(draws)} draws "
                         f"x seeds_per_draw {n}")
    axes[-1] = (field, tuple(range(n)))
    return lambda draw, j: pool[draws.index(draw) * n + j]


def expand(spec: TableSpec, scale: str = "cpu", seeds: int | None = None) -> list[Point]:
    """Every point of the table's sweep at `scale` with `seeds` seeds (None = the default)."""
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")
    axes = [(k, v[scale] if isinstance(v, Mapping) else v) for k, v in spec.grid.items()]
    mode, _, field = spec.seeds.partition(":")
    if mode == "grid" and spec.seed_values:
        if seeds is not None and seeds != len(spec.seed_values):
            raise ValueError(f"table {spec.id!r} runs exactly its declared seeds "
                             f"{list(spec.seed_values)}: --seeds={seeds} cannot change them")
        axes.append((field, tuple(spec.seed_values)))
    elif mode == "grid":
        axes.append((field, tuple(range(seeds_of(spec, scale, seeds)))))
    names = [k for k, _ in axes]
    seed_of = _nested_seeds(spec, axes) if mode == "grid" else None
    points, seen = [], set()
    for values in itertools.product(*(v for _, v in axes)):
        if seed_of:   # draw i runs its own seeds i·N .. i·N + N − 1 (see TableSpec.draw)
            values = values[:-1] + (seed_of(values[names.index(spec.draw)], values[-1]),)
        params = tuple(zip(names, values))
        name = point_name(params)
        if name in seen:
            raise ValueError(f"table {spec.id!r}: two grid points share the name {name!r}")
        seen.add(name)
        points.append(Point(spec.id, scale, name, params))
    return points


def set_field(config: ml_collections.ConfigDict, dotted: str, value: Any) -> None:
    """config.a.b = value for dotted = 'a.b' (the field must exist, except the last level)."""
    *parents, leaf = dotted.split(".")
    node = config
    for p in parents:
        if p not in node:
            raise ValueError(f"config has no field {dotted!r} (missing {p!r})")
        node = node[p]
    with node.unlocked() if hasattr(node, "unlocked") else _null():
        node[leaf] = value


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def point_config(spec: TableSpec, point: Point,
                 seeds: int | None = None) -> ml_collections.ConfigDict:
    """The base config at the point's scale with the point's overrides applied."""
    config = load_config(spec.config, spec.args[point.scale])
    for field, value in spec.overrides:
        set_field(config, field, value)
    for field, value in point.params:
        for f, v in value.fields if isinstance(value, Setting) else ((field, value),):
            set_field(config, f, v)
    mode, _, field = spec.seeds.partition(":")
    if seeds is not None and mode == "count":
        set_field(config, field, seeds)
    elif seeds is not None and mode == "tuple":
        set_field(config, field, tuple(range(seeds)))
    return config
