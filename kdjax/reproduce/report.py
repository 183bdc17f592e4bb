"""Markdown / CSV reports of a table, and docs/reproduction.md over the whole registry."""
from __future__ import annotations

import csv
import io
import os
import re
from typing import Mapping, Sequence

import ml_collections

from kdjax import storage
from kdjax.reproduce import aggregate, numerics, plots, summary
from kdjax.reproduce.execute import RESULTS, seeds_used
from kdjax.reproduce.spec import REPO_ROOT, SCALES, TableSpec, implementation
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
            "seeds": sorted({str(r.get("seeds_used", r.get("seed"))) for r in records}),
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


def _point_of(png: str) -> str:
    """The point directory of a runner PNG (`<scale>/<point>/run/.../x.png`)."""
    parts = png.split(os.sep)
    return parts[parts.index("run") - 1] if "run" in parts else "point"


def _copy_assets(paths: Sequence[str], table: str, scale: str, out_dir: str) -> list[str]:
    copied = []
    for p in paths:
        name = (f"{table}_{scale}_curves.png" if os.path.basename(p) == "curves.png" else
                f"{table}_{scale}_{_point_of(p)}_{os.path.basename(p)}")
        dst = os.path.join(out_dir, name)
        storage.copy(p, dst)
        copied.append(dst)
    return copied


def write_reproduction_md(tables: Mapping[str, TableSpec], workdir: str,
                          path: str | None = None, papers=None,
                          assets_dir: str | None = None, only: Sequence[str] = ()) -> str:
    """Regenerate docs/reproduction.md from the finished results under `workdir`; with `only`, just
    those tables' row and section (and any table the file lacks) are regenerated and every
    other entry is kept as the file has it (runs kept in several workdirs; each section names
    its own). The committed summary (kdjax/reproduce/summary.py) is written beside it."""
    path = path or summary.REPRODUCTION_MD
    assets_dir = assets_dir or summary.assets_dir(path)
    root = os.path.dirname(os.path.abspath(path))
    kept_rows, kept_sections = ({}, {}) if not only else doc_entries(
        storage.read_text(path) if storage.exists(path) else "")
    summary_file = os.path.join(assets_dir, summary.SUMMARY)
    kept_summary = summary.read(summary_file) if only else {}
    wd = os.path.relpath(workdir, REPO_ROOT) if os.path.isabs(workdir) else workdir
    rows, sections, entries = {}, {}, {}
    for tid, spec in tables.items():
        if only and tid not in only and tid in kept_sections:
            section = kept_sections[tid]
            status, detail = (row_status(kept_rows[tid]) if tid in kept_rows
                              else _status_of_section(section))
            entries[tid] = {**kept_summary.get(tid, {}), "status": status, "detail": detail}
        else:
            status, detail = table_status(spec, workdir)
            section = "\n".join(_section(tid, spec, status, detail, workdir, wd, papers,
                                         assets_dir, root))
            records = (finished_records(workdir, tid, spec.verify.scale) if spec.verify else [])
            entries[tid] = summary.entry(spec, status, detail, records)
        stale = numerics.stale_since(section)
        sections[tid] = _with_numbers_line(section, stale)
        entries[tid].pop("stale", None)
        if stale:
            entries[tid]["stale"] = numerics.mark(stale)
        rows[tid] = (f"| `{tid}` | {spec.paper} | {_cell(spec.title)} | {status} | "
                     f"{_cell(detail)} | `{spec.command('cpu')}` | "
                     f"{_numbers_cell(section, stale)} |")
    counts: dict[str, int] = {}
    for row in rows.values():
        status = row_status(row)[0]
        counts[status] = counts.get(status, 0) + 1
    lines = ["# Reproduction status", "",
             "Generated by `python -m launch.reproduce --write_report --workdir=W` from the "
             "finished runs in W (`--table=ID,... --write_report` regenerates only those "
             "entries); each section names the workdir its runs are in; do not edit by hand. "
             "Every entry that runs on this machine: `python -m launch.reproduce --table=all` "
             "(resumable), then the command above.",
             "Status words: *reproduced in full here* = the paper's setting ran on this machine; "
             "*reduced-scale run here* = only the declared reduced version ran (its note says "
             "what was reduced); *not run yet* = implemented, no finished run in the workdir; "
             "*needs an accelerator* = even the reduced version needs data or compute this "
             "machine lacks; *not yet implemented* = the config or its runner does not exist. "
             "Where a runner or the table (`TableSpec.claim`) compares arms over shared seeds, "
             "the status adds the paper's claim judged by paired t-tests, Holm-corrected "
             "across the claim's comparisons (kdjax/reproduce/stats.py claim_status; the "
             "detail names m): *claim untested* = fewer than 3 paired seeds; *claim "
             "reproduced* = every comparison's Holm interval supports the claim; *claim not "
             "reproduced* = some interval excludes the claimed effect; *claim inconclusive* "
             "= otherwise (an interval spans the boundary). *ran in full here* replaces "
             "*reproduced in full here* when the claim did not hold.",
             "Our numbers are never filled in by hand: every cell below comes from a "
             "results.json written by a run, with its provenance.",
             "*stale* (column `numbers`) = a run of the entry predates a change that altered "
             "what the entries compute (kdjax/reproduce/numerics.py): its numbers and verdict "
             "are as that older code computed them and may differ at HEAD; re-running the "
             "entry clears the mark. Changes listed: " + "; ".join(
                 f"{c.commit} ({c.date[:10]}): {c.what}" for c in numerics.CHANGES) + ".", "",
             "Summary: " + ", ".join(f"{v} {k}" for k, v in sorted(counts.items())), "",
             *claims_overview(sections), "## Every entry", "",
             "| id | paper | table / figure | status | detail | command (cpu) | numbers |",
             "|---|---|---|---|---|---|---|", *rows.values()]
    text = "\n".join(lines) + "\n" + "".join("\n" + sections[t] + "\n" for t in tables)
    storage.write_text(path, text)
    summary.write(summary_file, path, entries)
    return text


_CLAIM_LINE = re.compile(r"^Claim status: \*\*(?P<verdict>.+?)\*\* — claim: (?P<claim>.+?), "
                         r"judged on (?P<on>[^;(]+)", re.M)


def claims_overview(sections: Mapping[str, str]) -> list[str]:
    """The paper's claims at a glance: one line per `Claim status` line of the entries'
    sections (entry, scale, the claim as the paper states it, the verdict, n = the paired
    seeds or runs its comparisons had), read from the sections themselves, so entries kept
    verbatim by a partial regeneration are summarised as written."""
    lines = []
    for tid, text in sections.items():
        stale = "stale" if _NUMBERS_LINE in text else "current"
        scale = "—"
        for line in text.splitlines():
            head = re.match(r"^### (\w+) scale", line)
            if head:
                scale = head.group(1)
            m = _CLAIM_LINE.match(line)
            if not m:
                continue
            ns = sorted({int(n) for n in re.findall(r"(?:\(|, )n=(\d+)", line)})
            n = "—" if not ns else (str(ns[0]) if len(ns) == 1 else f"{ns[0]}–{ns[-1]}")
            verdict = re.sub(r"^claim | \(n=\d+\)$", "", m.group("verdict"))
            lines.append(f"| {tid} | {scale} | {_cell(m.group('claim'))} "
                         f"({m.group('on').strip()}) | {verdict} | {n} | {stale} |")
    if not lines:
        return []
    return ["## The papers' claims at a glance", "",
            f"{len(lines)} claim verdicts, one line each, as the entries' sections below state "
            "them (n: paired seeds or runs per comparison; the section gives every "
            "comparison's interval; *stale*: computed by code older than a numerics change, "
            "see below). The other entries judge no claim; their status is in the next table.",
            "", "| entry | scale | the paper's claim (judged on) | verdict | n | numbers |",
            "|---|---|---|---|---|---|", *lines, ""]


def row_status(row: str) -> tuple[str, str]:
    """(status, detail) of a summary row of docs/reproduction.md (cells as `_cell` escaped them)."""
    cells = row.split(" | ")
    return cells[3], cells[4].replace("\\|", "|")


def doc_entries(text: str) -> tuple[dict, dict]:
    """({id: summary row}, {id: section text}) of an existing docs/reproduction.md."""
    rows, sections = {}, {}
    for line in text.splitlines():
        m = re.match(r"\| `([^`]+)` \|", line)
        if m:
            rows[m.group(1)] = line
    parts = re.split(r"\n(?=## `)", text)
    for part in parts[1:]:
        m = re.match(r"## `([^`]+)`", part)
        if m:
            sections[m.group(1)] = part.rstrip("\n")
    return rows, sections


def _status_of_section(section: str) -> tuple[str, str]:
    """(status, detail) of a kept section that has no summary row (its status line is the
    truth)."""
    m = re.search(r"^Status: \*\*(.+?)\*\* — (.*)\.$", section, re.M)
    return m.groups() if m else ("not run yet", "")


_NUMBERS_LINE = "Numbers: **stale**"


def _numbers_cell(section: str, stale) -> str:
    """The `numbers` cell of an entry: stale (numerics.mark), current (every run it names
    postdates every listed change), '—' (nothing ran) or 'provenance not recorded'."""
    if stale is not None:
        return numerics.mark(stale)
    if numerics.runs_of(section):
        return "current"
    ran = not re.search(r"^Status: \*\*(not run yet|needs an accelerator|not yet implemented)",
                        section, re.M)
    return "provenance not recorded" if ran else "—"


def _with_numbers_line(section: str, stale) -> str:
    """The section with its `Numbers: **stale** ...` line (after the status line) rewritten
    for `stale` (a numerics.Change, or None: no such line)."""
    lines = [l for l in section.split("\n") if not l.startswith(_NUMBERS_LINE)]
    if stale is not None:
        at = next((i + 1 for i, l in enumerate(lines) if l.startswith("Status: ")), 1)
        lines.insert(at, f"{_NUMBERS_LINE} — {numerics.mark(stale)} ({stale.date[:10]}): "
                         f"{stale.what}. Re-run the entry to regenerate it at HEAD.")
    return "\n".join(lines)


def _section(tid: str, spec: TableSpec, status: str, detail: str, workdir: str, wd: str,
             papers, assets_dir: str, root: str) -> list[str]:
    lines = [f"## `{tid}` — {spec.title}", "", f"Status: **{status}** — {detail}.",
             f"Config: `{spec.config}` (args {dict(spec.args)}).",
             f"Commands: `{spec.command('cpu')}` (reduced) · `{spec.command('full')}` "
             "(paper's setting).", f"Runs: `{wd}`."]
    if spec.notes:
        lines.append(f"Notes: {spec.notes}")
    for scale in SCALES:
        rep = write_table_report(spec, workdir, scale, papers)
        if rep is None:
            continue
        prov = rep["provenance"]
        lines += ["", f"### {scale} scale — {'; '.join(prov['scale_notes'])}", "",
                  markdown_table(rep["rows"]), "", *paired_lines(rep["records"], spec),
                  f"Provenance: {prov['points']} point(s); commit {prov['git_commit']}; "
                  f"devices {prov['devices']}; total wall time {prov['wall_time_s']} s; "
                  f"teacher queries {prov['teacher_queries']}; seeds "
                  f"{', '.join(prov['seeds'])}; last finished {prov['finished']}."]
        assets = ([rep["plot"]] if rep["plot"] else []) + rep["pngs"]
        for a in _copy_assets(assets, tid, scale, assets_dir):
            lines += ["", f"![{os.path.basename(a)}]({os.path.relpath(a, root)})"]
    return lines


def list_text(tables: Mapping[str, TableSpec], workdir: str,
              recorded: Mapping[str, dict] | None = None) -> str:
    """`--list`: every registered table with the status docs/reproduction.md records (`recorded`:
    the committed summary's entries), or, for an entry it does not record, the workdir's; where
    the workdir holds runs that say otherwise, that is added."""
    recorded = recorded or {}
    rows = []
    for tid, spec in tables.items():
        rec = recorded.get(tid)
        live = table_status(spec, workdir) if rec is None or any(
            finished_records(workdir, tid, s) for s in SCALES) else None
        s, detail = (rec["status"], rec["detail"]) if rec else live
        if rec and rec.get("stale"):
            detail += f" [{rec['stale']}]"
        if rec and live and live[0] != s:
            detail += f" [{workdir} holds: {live[0]}]"
        rows.append({"id": tid, "paper": spec.paper, "kind": spec.kind, "status": s,
                     "detail": detail, "config": spec.config})
    width = max(len(r["id"]) for r in rows)
    swidth = max(len(r["status"]) for r in rows)
    return "\n".join(f"{r['id']:<{width}}  {r['status']:<{swidth}}  {r['paper']:<5} "
                     f"{r['config']}  — {r['detail']}" for r in rows)
