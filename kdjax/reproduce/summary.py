"""The committed summary of docs/reproduction.md: each entry's status, and the numbers
`--verify` checks.

`--write_report` writes it beside the document's figures (`summary_path`), so that a fresh clone,
which has no `runs/`, lists what the document records (`--list`), and `--verify` can compare a
re-run of a cheap entry point by point:

    {"doc": "../reproduction.md",
     "entries": {"<id>": {"status": ..., "detail": ...,
                          "verify": {"<scale>": {"<point>": {"<key>": number or text}}}}}}

"verify" is present for entries with a `TableSpec.verify` whose points were in the workdir: the
numbers each of those points produced (`point_numbers`).
"""
from __future__ import annotations

import math
import os
from typing import Any, Mapping, Sequence

from kdjax import storage
from kdjax.reproduce.aggregate import get_path
from kdjax.reproduce.spec import REPO_ROOT, TableSpec
from kdjax.reproduce.sweep import expand

REPRODUCTION_MD = os.path.join(REPO_ROOT, "docs", "reproduction.md")  # the generated status page
SUMMARY = "summary.json"


def assets_dir(doc_path: str) -> str:
    """The folder of a document's figures and summary: the document's name without `.md`
    beside it (docs/reproduction.md -> docs/reproduction/)."""
    return os.path.splitext(os.path.abspath(doc_path))[0]


def summary_path(doc_path: str | None = None) -> str:
    return os.path.join(assets_dir(doc_path or REPRODUCTION_MD), SUMMARY)


def read(path: str) -> dict:
    """The summary's entries {id: {...}}; {} when there is none."""
    if not storage.exists(path):
        return {}
    return dict(storage.read_json(path).get("entries", {}))


def write(path: str, doc_path: str, entries: Mapping[str, dict]) -> None:
    doc = os.path.relpath(os.path.abspath(doc_path), os.path.dirname(os.path.abspath(path)))
    storage.write_json(path, {"doc": doc, "entries": dict(entries)}, indent=1, sort_keys=True)


def _scalar(v) -> bool:
    return v is None or isinstance(v, (bool, int, float, str))


def _flat(prefix: str, value, out: dict) -> None:
    """Numbers and text under `prefix` ('rows.0.ours.mean'); lists of scalars as lists."""
    if _scalar(value):
        out[prefix] = value
    elif isinstance(value, Mapping):
        for k, v in value.items():
            _flat(f"{prefix}.{k}", v, out)
    elif isinstance(value, (list, tuple)) and all(_scalar(v) for v in value):
        out[prefix] = list(value)
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _flat(f"{prefix}.{i}", v, out)


def point_numbers(spec: TableSpec, record: dict) -> dict[str, Any]:
    """What a point's run produced that its entry reports: each Metric's value (scaled as the
    report prints it) or, for a table of runner rows, every cell of those rows; and the
    runner's claim status where it judged one."""
    out: dict[str, Any] = {}
    result = record["result"]
    for m in spec.metrics:
        try:
            v = get_path(result, m.path)
        except (KeyError, IndexError, ValueError):
            continue
        out[m.name] = None if v is None else float(v) * m.scale
    if not spec.metrics:
        _flat("rows", result.get("rows") or [], out)
    claim = result.get("claim")
    if isinstance(claim, Mapping) and "status" in claim:
        out["claim.status"] = claim["status"]
    return out


def verify_points(spec: TableSpec):
    """The points `--verify` re-runs (spec.verify's scale and seeds)."""
    return expand(spec, spec.verify.scale, spec.verify.seeds)


def entry(spec: TableSpec, status: str, detail: str, records: Sequence[dict] = ()) -> dict:
    """An entry of the summary; `records`: the finished records at spec.verify's scale."""
    out = {"status": status, "detail": detail}
    if spec.verify is None:
        return out
    by_name = {r["point"]: r for r in records}
    numbers = {p.name: point_numbers(spec, by_name[p.name])
               for p in verify_points(spec) if p.name in by_name}
    if numbers:
        out["verify"] = {spec.verify.scale: numbers}
    return out


def same(a, b) -> bool:
    """Equal, floats up to rounding in their last bits (a re-run at the same commit on the same
    platform gives the same bits; the tolerance only absorbs a JSON round trip)."""
    if isinstance(a, float) or isinstance(b, float):
        if not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in (a, b)):
            return False
        return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-9,
                                                                  abs_tol=1e-12)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b
