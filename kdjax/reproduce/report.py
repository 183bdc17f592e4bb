"""Markdown / CSV reports of a table and its status (docs/reproduction.md over the whole
registry is kdjax/reproduce/document.py)."""
from __future__ import annotations

import csv
import io
import os
from typing import Sequence

import ml_collections

from kdjax import storage
from kdjax.reproduce import aggregate, plots
from kdjax.reproduce.execute import RESULTS, seeds_used
from kdjax.reproduce.spec import SCALES, TableSpec, implementation
from kdjax.reproduce.sweep import Point, expand

HIDDEN = ("mean", "std")  # kept in the CSV, folded into 'ours' in Markdown


def columns(rows: Sequence[dict], hidden: Sequence[str] = ()) -> list[str]:
    cols: list[str] = []
    for r in rows:
        for k in r:
            if k not in cols and k not in hidden:
                cols.append(k)
    return cols


def _text(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, (list, tuple)):
        return ",".join(_text(x) for x in v)
    if isinstance(v, dict):
        return ", ".join(f"{k}: {_text(x)}" for k, x in v.items())
    return "" if v is None else str(v)


def _cell(text: str) -> str:
    """A Markdown table cell: pipes escaped, newlines folded."""
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_table(rows: Sequence[dict], hidden: Sequence[str] = HIDDEN) -> str:
    if not rows:
        return "_no rows_"
    cols = columns(rows, hidden)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        lines.append("| " + " | ".join(_cell(_text(r.get(c))) for c in cols) + " |")
    return "\n".join(lines)


def csv_text(rows: Sequence[dict]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns(rows), extrasaction="ignore")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: _text(v) for k, v in r.items()})
    return buf.getvalue()


def finished_records(workdir: str, table: str, scale: str) -> list[dict]:
    """Every finished point record of `table` at `scale` under `workdir`, sorted by point."""
    out = []
    for path in storage.glob(os.path.join(workdir, table, scale), f"*/{RESULTS}"):
        try:
            rec = storage.read_json(path)
        except (OSError, ValueError):
            continue
        if isinstance(rec, dict) and rec.get("status") == "finished":
            out.append(rec)
    return out


def is_full_setting(records: Sequence[dict]) -> bool:
    """The runs were the paper's setting: asked for at full scale or stated by the runner,
    and not declared reduced / smoke by the run's own scale note."""
    def full(r):
        note = str(r.get("scale_note", "")).lower()
        if note.startswith("reduced") or "smoke" in note:
            return False
        return r["scale"] == "full" or note.startswith("full setting")
    return bool(records) and all(full(r) for r in records)


def provenance_summary(records: Sequence[dict]) -> dict:
    commits = sorted({r["provenance"].get("git_commit", "?") for r in records})
    devices = sorted({f"{r['provenance'].get('device_kind')} x{r['provenance'].get('num_devices')}"
                      for r in records})
    queries = [r.get("teacher_queries") for r in records if r.get("teacher_queries") is not None]
    return {"points": len(records), "git_commit": ", ".join(commits),
            "devices": ", ".join(devices),
            "wall_time_s": round(sum(float(r.get("wall_time", 0)) for r in records), 1),
            "teacher_queries": sum(queries) if queries else "not reported",
            "seeds": sorted({str(r.get("seeds_used", r.get("seed"))) for r in records},
                            key=lambda s: (not s.isdigit(), int(s) if s.isdigit() else 0, s)),
            "scale_notes": sorted({str(r.get("scale_note")) for r in records}),
            "finished": sorted(r["provenance"].get("time", "") for r in records)[-1]}


def write_table_report(spec: TableSpec, workdir: str, scale: str, papers=None) -> dict | None:
    """report.md, report.csv, paired.csv (tables with Baselines) and curves.png (figure-type
    tables) in `<workdir>/<table>/<scale>`; returns {'rows', 'paired', 'markdown', 'plot',
    'pngs', 'provenance', 'records'} or None if nothing ran."""
    records = finished_records(workdir, spec.id, scale)
    if not records:
        return None
    for r in records:  # records written before `seeds_used` existed: derive it from their config
        if "seeds_used" not in r:
            point = Point(spec.id, scale, r["point"], tuple(r["params"].items()))
            r["seeds_used"] = seeds_used(spec, ml_collections.ConfigDict(r["config"]), point)
    rows = aggregate.table_rows(spec, records, papers)
    base = os.path.join(workdir, spec.id, scale)
    plot = None
    if spec.curves:
        plot = plots.plot_curves(aggregate.curves(spec, records),
                                 os.path.join(base, "curves.png"),
                                 title=f"{spec.id} ({scale}; mean ± std over seeds)")
    pngs = storage.glob(base, "*/run/**/*.png")
    prov = provenance_summary(records)
    md = [f"# {spec.title}", "", f"Scale: {scale} — " + "; ".join(prov["scale_notes"]), "",
          markdown_table(rows), "", *paired_lines(records, spec),
          f"Provenance: {prov['points']} point(s), commit {prov['git_commit']}, "
          f"devices {prov['devices']}, wall time {prov['wall_time_s']} s, teacher queries "
          f"{prov['teacher_queries']}, seeds {', '.join(prov['seeds'])}."]
    if plot:
        md += ["", f"![curves]({os.path.relpath(plot, base)})"]
    for p in pngs:
        md += ["", f"![{os.path.basename(p)}]({os.path.relpath(p, base)})"]
    storage.write_text(os.path.join(base, "report.md"), "\n".join(md) + "\n")
    storage.write_text(os.path.join(base, "report.csv"), csv_text(rows))
    paired = [{k: v for k, v in row.items() if k not in ("diff", "runs pooled")}
              for row in (aggregate.baseline_rows(spec, records) if spec.paired else [])]
    if paired:
        storage.write_text(os.path.join(base, "paired.csv"), csv_text(paired))
    return {"rows": rows, "paired": paired, "markdown": "\n".join(md), "plot": plot,
            "pngs": pngs, "provenance": prov, "records": records}


# Baseline rows: kept in paired.csv, folded into the "paired difference" text in Markdown.
PAIRED_HIDDEN = ("mean", "lo", "hi", "n", "seeds", "diff", "n runs", "runs pooled")


def paired_lines(records: Sequence[dict], spec: TableSpec | None = None) -> list[str]:
    """The paired differences between arms (95% t-interval, n): the table's Baselines
    (`spec.paired`) and those a runner computed itself, and the claim's verdict, as Markdown
    lines ending in a blank one; [] when nothing compares arms."""
    rows = aggregate.paired_rows(records)
    claim = claim_of(records, spec)
    out = []
    base = aggregate.baseline_rows(spec, records) if spec is not None and spec.paired else []
    if base:
        two = ("; two-level (issue 33): each (data, teacher) draw's differences averaged over "
               f"its seeds, the interval over the draws ({spec.draw}; n = draws) is the one "
               "reported, Holm-adjusted and judged, the runs pooled (within-teacher, n = runs) "
               "beside it") if spec.draw else ""
        out += ["Paired differences over the seeds both arms ran (a − b per grid cell, mean "
                "[95% t-interval], n; the paired-t p-value Holm-adjusted over the table's m "
                f"comparisons; kdjax/reproduce/stats.py{two}):", "",
                markdown_table(base, PAIRED_HIDDEN), ""]
        crossed = aggregate.crossed_seeds(spec, records)
        if crossed:
            out += [f"**Seeds crossed with draws**: seed(s) {', '.join(map(str, crossed))} ran "
                    "under every draw, so each draw's difference shares their effect and the "
                    "interval over the draws leaves the seed-to-seed variance out: read it as "
                    "conditional on those seeds (kdjax/reproduce/spec.py `draw`).", ""]
    if rows:
        out += ["Paired differences of test accuracy over the same seeds (a − b, mean [95% "
                "t-interval], n; 'all rounds' = each seed's mean over rounds 1..T):", "",
                markdown_table(rows), ""]
    if spec is not None and spec.prereg and records:
        from kdjax.reproduce import prereg
        out += prereg.report_lines(spec, records)
    elif claim:
        out += [f"Claim status: **{claim[0]}** — {claim[1]}.", ""]
    return out


def claim_of(records: Sequence[dict], spec: TableSpec | None) -> tuple[str, str] | None:
    """The claim's verdict: a confirmation's pre-registered one, the runner's own (RAD, the
    toys) or the table's `spec.claim`."""
    if spec is not None and spec.prereg and records:
        from kdjax.reproduce import prereg
        return prereg.claim(spec, records)
    return aggregate.claim_summary(records) or (
        aggregate.table_claim(spec, records) if spec is not None else None)


def _with_claim(status: str, records: Sequence[dict], spec: TableSpec | None = None) -> str:
    """The status word plus the paper's claim verdict when the runner or the table judged one:
    a run that finished is not a reproduction unless the claim held ('ran in full here; claim
    not reproduced')."""
    claim = claim_of(records, spec)
    if claim is None:
        return status
    if status == "reproduced in full here":
        status = "ran in full here"
    return f"{status}; {claim[0]}"


def table_status(spec: TableSpec, workdir: str) -> tuple[str, str]:
    """(status, detail) with status one of: 'reproduced in full here', 'reduced-scale run
    here', 'not run yet', 'needs an accelerator', 'not yet implemented'."""
    impl = implementation(spec)
    if not impl.ok:
        return "not yet implemented", impl.reason
    ran = {s: finished_records(workdir, spec.id, s) for s in SCALES}
    for scale in SCALES:
        expected = {p.name for p in expand(spec, scale)}
        got = {r["point"] for r in ran[scale]}
        missing = expected - got
        ran[scale + "_partial"] = (f" (partial: {len(expected & got)}/{len(expected)} points)"
                                   if missing and got else "")
    status, detail = _status(spec, ran)
    records = ran["full"] + ran["cpu"]
    if spec.prereg and records:
        from kdjax.reproduce import prereg
        state, why = prereg.run_state(records, spec)
        detail = (prereg.label(state) if state else f"not a confirmation ({why})") + "; " + detail
    return status, detail


def _status(spec: TableSpec, ran: dict) -> tuple[str, str]:
    full = [r for r in ran["full"] + ran["cpu"] if is_full_setting([r])]
    if full:
        dev = provenance_summary(full)["devices"]
        part = ran["full_partial"] if full[0]["scale"] == "full" else ran["cpu_partial"]
        return (_with_claim("reproduced in full here", full, spec),
                f"ran the paper's setting on {dev}{part}")
    if ran["cpu"] or ran["full"]:
        return _with_claim("reduced-scale run here", ran["cpu"] or ran["full"], spec), (
            f"cpu scale ran{ran['cpu_partial']}; full setting "
                                          + ("runs on CPU" if spec.full_here
                                             else "needs an accelerator"))
    if not spec.cpu_offline:
        return "needs an accelerator", ("full setting needs an accelerator; its cpu version "
                                        "needs the TFDS dataset prepared in data_dir")
    return "not run yet", ("full setting runs on this CPU" if spec.full_here else
                           "cpu version runs here; full setting needs an accelerator")
