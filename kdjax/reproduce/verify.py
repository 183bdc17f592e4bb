"""`launch.reproduce --verify`: re-run the cheap entries and compare with what the docs state.

Three checks, each a list of `Difference`s (none = the docs are current):

1. every entry's status in docs/reproduction.md's summary table is the committed summary's;
2. each verified entry (`TableSpec.verify`) is re-run at HEAD in a fresh workdir, and every
   number its points produced is compared with the summary's record for that point
   (`summary.point_numbers`; a point the summary holds no numbers for is a difference too);
3. where the re-run covers every point of its scale, the table it renders is compared line by
   line with the one in the entry's section of docs/reproduction.md, and the claim verdict it
   reaches with the one the document records.
"""
from __future__ import annotations

import dataclasses
import re
import tempfile
from typing import Any, Callable, Mapping, Sequence

from kdjax import storage
from kdjax.reproduce import aggregate, document, execute, report, summary
from kdjax.reproduce.spec import TableSpec
from kdjax.reproduce.sweep import expand


@dataclasses.dataclass(frozen=True)
class Difference:
    table: str
    where: str
    recorded: Any
    head: Any

    def line(self) -> str:
        return (f"DIFFERS {self.table} {self.where}: recorded {self.recorded!r}, "
                f"HEAD {self.head!r}")


def doc_status_differences(doc_text: str, recorded: Mapping[str, dict]) -> list[Difference]:
    """docs/reproduction.md's summary rows against the committed summary, entry by entry."""
    rows, _ = document.doc_entries(doc_text)
    out = []
    for tid in sorted(set(rows) | set(recorded)):
        doc = document.row_status(rows[tid])[0] if tid in rows else None
        rec = recorded.get(tid, {}).get("status")
        if doc != rec:
            out.append(Difference(tid, "status (docs/reproduction.md vs summary)", rec, doc))
    return out


def section_table(section: str, scale: str) -> list[str]:
    """The first Markdown table under the section's '### <scale> scale' heading."""
    m = re.search(rf"^### {re.escape(scale)} scale\b.*$", section, re.M)
    if not m:
        return []
    lines, started = [], False
    for line in section[m.end():].splitlines():
        if line.startswith("|"):
            started = True
            lines.append(line)
        elif started or line.startswith("#"):
            break
    return lines


def _claim_part(status: str) -> str | None:
    """'reduced-scale run here; claim untested (n=2)' -> 'claim untested (n=2)'."""
    _, sep, claim = status.partition("; claim ")
    return "claim " + claim if sep else None


def compare_points(spec: TableSpec, records: Sequence[dict],
                   recorded: Mapping[str, dict]) -> list[Difference]:
    """Each re-run point's numbers against the summary's numbers for that point."""
    scale = spec.verify.scale
    want = recorded.get("verify", {}).get(scale, {})
    out = []
    for r in sorted(records, key=lambda r: r["point"]):
        where = f"{scale}/{r['point']}"
        if r["point"] not in want:
            out.append(Difference(spec.id, where, "no numbers recorded (regenerate: "
                                  f"{spec.command(scale)} --write_report)", "ran"))
            continue
        got, rec = summary.point_numbers(spec, r), want[r["point"]]
        for key in sorted(set(got) | set(rec)):
            if key not in got or key not in rec or not summary.same(rec[key], got[key]):
                out.append(Difference(spec.id, f"{where} {key}", rec.get(key, "absent"),
                                      got.get(key, "absent")))
    return out


def compare_document(spec: TableSpec, records: Sequence[dict], section: str,
                     recorded_status: str, papers=None) -> list[Difference]:
    """The table and claim verdict a complete re-run renders against the document's."""
    scale = spec.verify.scale
    out = []
    doc = section_table(section, scale)
    head = report.markdown_table(aggregate.table_rows(spec, records, papers)).splitlines()
    for i in range(max(len(doc), len(head))):
        a = doc[i] if i < len(doc) else "absent"
        b = head[i] if i < len(head) else "absent"
        if a != b:
            out.append(Difference(spec.id, f"{scale} table line {i + 1}", a, b))
    want = _claim_part(recorded_status or "")
    got = report.claim_of(records, spec)
    got = got[0] if got else None
    if want != got:
        out.append(Difference(spec.id, "claim verdict", want, got))
    return out


def verify_table(spec: TableSpec, recorded: Mapping[str, dict], section: str, workdir: str,
                 *, parallel: int = 1, registry: str = "", papers=None,
                 log: Callable[[str], None] = print) -> list[Difference]:
    """Re-run spec.verify's points in `workdir` and compare (checks 2 and 3)."""
    if spec.verify is None:
        raise ValueError(f"table {spec.id!r} declares no verify subset (TableSpec.verify)")
    points = summary.verify_points(spec)
    out = execute.run_sweep(spec, points, workdir, parallel=parallel, registry=registry,
                            log=log)
    if out.failed:
        return [Difference(spec.id, f"{spec.verify.scale}/{name}", "finished", f"FAILED: {why}")
                for name, why in out.failed.items()]
    records = report.finished_records(workdir, spec.id, spec.verify.scale)
    diffs = compare_points(spec, records, recorded)
    everything = {p.name for p in expand(spec, spec.verify.scale)}
    if {p.name for p in points} == everything:
        diffs += compare_document(spec, records, section, recorded.get("status", ""), papers)
    return diffs


def verify(tables: Mapping[str, TableSpec], ids: Sequence[str], doc_path: str,
           summary_file: str, *, workdir: str | None = None, parallel: int = 1,
           registry: str = "", papers=None,
           log: Callable[[str], None] = print) -> list[Difference]:
    """Checks 1-3 for the entries `ids` (each must declare TableSpec.verify); the re-runs go
    to `workdir` (default: a fresh temporary folder, removed afterwards)."""
    for tid in ids:
        if tid not in tables:
            raise ValueError(f"unknown table {tid!r}")
        if tables[tid].verify is None:
            raise ValueError(f"table {tid!r} declares no verify subset (TableSpec.verify): "
                             "it does not fit a CPU in minutes")
    text = storage.read_text(doc_path) if storage.exists(doc_path) else ""
    recorded = summary.read(summary_file)
    diffs = doc_status_differences(text, recorded)
    _, sections = document.doc_entries(text)
    with tempfile.TemporaryDirectory(prefix="kdjax-verify-") as tmp:
        for tid in ids:
            log(f"[verify] {tid}: re-running {len(summary.verify_points(tables[tid]))} point(s)")
            diffs += verify_table(tables[tid], recorded.get(tid, {}), sections.get(tid, ""),
                                  workdir or tmp, parallel=parallel, registry=registry,
                                  papers=papers, log=log)
    return diffs
