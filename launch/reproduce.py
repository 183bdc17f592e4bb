"""Reproduce a paper table or figure: run its sweep (resumably), aggregate, report.

    python -m launch.reproduce --list
    python -m launch.reproduce --table=disk_table1                      # reduced ('cpu') scale
    python -m launch.reproduce --table=kd_fashion_mnist --seeds=3 --parallel=2
    python -m launch.reproduce --table=rad_fig3_cifar10_resnet --scale=full --dry_run
    python -m launch.reproduce --table=lrds_cifar100 --scale=full --workdir=gs://b/repro \
        --tpu_name=repro --tpu_flags="--project=p --repo_url=..."      # one TPU job per point
    python -m launch.reproduce --table=all                             # every cpu-runnable entry
    python -m launch.reproduce --table=lrds_imagenet --scale=full --workdir=gs://b/repro \
        --multihost            # on every host of a pod slice (launch/tpu --command=...)
    python -m launch.reproduce --write_report              # regenerate docs/reproduction.md
    python -m launch.reproduce --table=disk_table1 --write_report      # ... only that entry
    python -m launch.reproduce --verify                # re-run the cheap entries, compare with it
    python -m launch.reproduce --verify=disk_table2_6,rad_fig2         # ... only these

Points run in `<workdir>/<table>/<scale>/<point>/`; a point with a finished results.json is
skipped, so re-running a killed sweep continues. The table's report (report.md, report.csv,
curves.png) lands in `<workdir>/<table>/<scale>/`. The registry is experiments/tables.py.
`--list` shows the status docs/reproduction.md records (its committed summary,
docs/reproduction/summary.json), and what the workdir's runs say where they differ. `--verify`
exits 1 and prints every differing row when a re-run at HEAD (kdjax/reproduce/verify.py) does
not give what the document and its summary state.

A confirmation entry (`TableSpec.prereg`, built from a pre-registration file by
kdjax/reproduce/prereg.py) runs only as its committed file declares: exactly its fresh seeds
(none an exploratory entry's; no `--seeds`), the file committed and unmodified (its commit is
recorded in every point's provenance); otherwise the run is refused in one line. Its report
states the verdict under the declared rule.

Failures end as in `launch.main` (`launch.failures.guarded`): on a `--multihost` job a point
failing on one process ends every process within seconds with that process's line, and SIGTERM
checkpoints the point in training and exits 143 (the same command resumes).
"""
from __future__ import annotations

import sys

from absl import app, flags, logging

from launch import failures
from launch import runtime

_TABLE = flags.DEFINE_string("table", None, "Table id (see --list); comma-separated for several; "
                             "'all' = every implemented table whose version at --scale runs "
                             "on the data here.")
_SCALE = flags.DEFINE_enum("scale", "cpu", ["cpu", "full"],
                           "cpu: the declared reduced version; full: the paper's setting.")
_SEEDS = flags.DEFINE_integer("seeds", None, "Seeds (or runs) per cell; default: the table's.")
_WORKDIR = flags.DEFINE_string("workdir", "runs/repro", "Root of every point's workdir.")
_LIST = flags.DEFINE_bool("list", False, "List every registered table with its status.")
_PARALLEL = flags.DEFINE_integer("parallel", 1, "Run this many points at once (subprocesses).")
_DRY_RUN = flags.DEFINE_bool("dry_run", False, "Print the points and commands; run nothing.")
_POINT = flags.DEFINE_string("point", None, "Run only this point of the table (in-process).")
_WRITE_REPORT = flags.DEFINE_bool("write_report", False,
                                  "Regenerate docs/reproduction.md from the workdir's results.")
_REPORT_PATH = flags.DEFINE_string("report_path", None, "docs/reproduction.md to write, list or "
                                   "verify (default: kdjax/reproduce/summary.py "
                                   "REPRODUCTION_MD); its summary is docs/reproduction/"
                                   "summary.json beside it.")
_VERIFY = flags.DEFINE_string("verify", None, "Re-run these entries (comma-separated; bare "
                              "--verify: every entry declaring TableSpec.verify) at HEAD and "
                              "compare with docs/reproduction.md and its summary; exit 1 on any "
                              "difference.")
_VERIFY_WORKDIR = flags.DEFINE_string("verify_workdir", None, "Where --verify re-runs "
                                      "(default: a fresh temporary folder); finished points "
                                      "there are reused.")
_REGISTRY = flags.DEFINE_string("registry", "experiments.tables:TABLES",
                                "'module:attribute' holding the {id: TableSpec} registry.")
_PAPER_NUMBERS = flags.DEFINE_string("paper_numbers", "papers.paper_numbers:PAPERS",
                                     "'module:attribute' holding the papers' numbers the "
                                     "reports print beside ours ({paper: {key: number}}).")
_TPU_NAME = flags.DEFINE_string("tpu_name", None, "Print one launch/tpu/tpu_vm.py job per "
                                "unfinished point (VMs <tpu_name>-<i>) instead of running.")
_TPU_FLAGS = flags.DEFINE_string("tpu_flags", "", "Extra flags for each tpu_vm.py job, e.g. "
                                 "'--project=p --accelerator_type=v4-8 --repo_url=...'.")
_STAGES_ROOT = flags.DEFINE_string(
    "stages_root", None, "Root of the shared teacher folders (<root>/<table>/<scale>/_teachers/"
    "<key>); default --workdir. --tpu_name points share a bucket's this way.")
_MULTIHOST = flags.DEFINE_bool("multihost", False,
                               "Call jax.distributed.initialize() first: every host of a "
                               "multi-host TPU slice or SLURM job runs this same command "
                               "(launch/tpu, launch/slurm); points run in-process, one by one.")


def _registry():
    from kdjax.reproduce.spec import check_registry, load_registry
    tables = load_registry(_REGISTRY.value)
    check_registry(tables)
    return tables


def _papers():
    from kdjax.reproduce.spec import load_registry
    return load_registry(_PAPER_NUMBERS.value, "--paper_numbers")


def _run_table(spec, tables) -> bool:
    from kdjax.reproduce import execute, report, sweep
    from kdjax.reproduce.spec import implementation
    scale, seeds, workdir = _SCALE.value, _SEEDS.value, _WORKDIR.value
    impl = implementation(spec)
    if not impl.ok:
        print(f"== {spec.id}: not yet implemented ({impl.reason}); nothing to run.",
              file=sys.stderr, flush=True)
        return False
    if spec.prereg:
        _check_prereg(spec, tables, workdir, scale, seeds)
    points = sweep.expand(spec, scale, seeds)
    if _POINT.value:
        chosen = [p for p in points if p.name == _POINT.value]
        if not chosen:
            raise app.UsageError(f"table {spec.id} has no point {_POINT.value!r} at scale "
                                 f"{scale}; points: {', '.join(p.name for p in points)}")
        execute.run_point(spec, chosen[0], workdir, seeds=seeds,
                          stages_root=_STAGES_ROOT.value)
        return True
    note = (sweep.point_config(spec, points[0], seeds).get("scale_note", "")
            or "(the runner states its scale note in its result)")
    print(f"== {spec.id}: {spec.title}\n   scale {scale}: {note}\n"
          f"   {len(points)} point(s) in {workdir}/{spec.id}/{scale}/", flush=True)
    todo = [p for p in points if execute.read_record(workdir, p) is None]
    if _TPU_NAME.value:
        bucket = workdir if workdir.startswith("gs://") else ""
        if not bucket:
            print("# --workdir is not a gs:// bucket: results stay on each TPU VM", flush=True)
        if bucket:
            print("# the jobs without --background train the shared teachers into the bucket; "
                  "they run first, in order, before the others start", flush=True)
        for line in execute.tpu_commands(spec, todo, bucket, name_prefix=_TPU_NAME.value,
                                         seeds=seeds, extra_flags=_TPU_FLAGS.value):
            print(line)
        print(f"# when they finish: gsutil -m rsync -r {bucket or '<bucket>'} runs/repro && "
              f"python -m launch.reproduce --table={spec.id} --scale={scale} "
              "--workdir=runs/repro   (skips the finished points, aggregates)")
        return True
    if _DRY_RUN.value:
        for p in points:
            state = "finished" if p not in todo else "to run"
            print(f"   [{state}] {execute.point_command(spec, p, workdir, seeds)}")
        return True
    out = execute.run_sweep(spec, points, workdir, seeds=seeds, parallel=_PARALLEL.value,
                            registry="" if _REGISTRY.value == _REGISTRY.default
                            else _REGISTRY.value)
    rep = report.write_table_report(spec, workdir, scale, _papers())
    if rep is not None:
        print("\n" + rep["markdown"] + f"\n\n(report: {workdir}/{spec.id}/{scale}/report.md, "
              "report.csv)", flush=True)
    if out.failed:
        print(f"{len(out.failed)} point(s) failed: " +
              "; ".join(f"{k}: {v}" for k, v in out.failed.items()), file=sys.stderr)
    return not out.failed


def _check_prereg(spec, tables, workdir: str, scale: str, seeds) -> None:
    """A pre-registered entry runs only as declared (kdjax/reproduce/prereg.py): exactly its
    seeds, none of them an exploratory entry's, its file committed and unmodified, and no
    point in the workdir run under another version of it. Refuses in one line."""
    from kdjax import storage
    from kdjax.reproduce import prereg, report, summary
    try:
        p = prereg.load(spec.prereg)
        if seeds is not None:
            raise prereg.PreregError(f"{spec.id} runs exactly the seeds {p.path} declares: "
                                     "drop --seeds")
        state = prereg.file_state(spec.prereg)
        doc = _REPORT_PATH.value or summary.REPRODUCTION_MD
        text = storage.read_text(doc) if storage.exists(doc) else ""
        prereg.check_fresh(p, tables, {t: prereg.recorded_seeds(text, t)
                                       for t in p.exploratory})
        prereg.check_records(p, state, report.finished_records(workdir, spec.id, scale))
    except prereg.PreregError as e:
        if _DRY_RUN.value:
            print(f"== {spec.id}: a run would be refused: {e}", flush=True)
            return
        sys.exit(f"launch.reproduce: refused: {e}")
    if not _POINT.value:
        print(f"== {spec.id}: {prereg.label(state)}, checked {state['checked']}", flush=True)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    verbose = flags.FLAGS["verbosity"].present
    if not verbose:
        logging.set_verbosity(logging.WARNING)
    if _MULTIHOST.value and _PARALLEL.value != 1:
        raise app.UsageError("--multihost runs the points in-process: use --parallel=1")
    # As launch.main: a failing (or Ctrl-C'd) process ends every process of a --multihost job
    # with its line; SIGTERM checkpoints the point in training and exits 143.
    failures.guarded(_main, _WORKDIR.value, show_traceback=verbose,
                     passthrough=(app.UsageError,))


def _main() -> None:
    runtime.apply()
    runtime.start(_MULTIHOST.value)
    tables = _registry()
    from kdjax.reproduce import document, summary
    doc_path = _REPORT_PATH.value or summary.REPRODUCTION_MD
    if _LIST.value:
        print(document.list_text(tables, _WORKDIR.value,
                                 summary.read(summary.summary_path(doc_path))))
    ok = True
    if _TABLE.value:
        ids = _TABLE.value.split(",")
        if ids == ["all"]:
            from kdjax.reproduce.spec import implementation
            ids = [t for t, sp in tables.items() if implementation(sp).ok
                   and (_SCALE.value == "full" or sp.cpu_offline)]
            print(f"--table=all: {', '.join(ids)}", flush=True)
        for tid in ids:
            if tid not in tables:
                raise app.UsageError(f"unknown table {tid!r}; --list shows the {len(tables)} "
                                     "registered ids")
            ok = _run_table(tables[tid], tables) and ok
    if _WRITE_REPORT.value:  # with --table: only those entries; the others are kept
        only = _TABLE.value.split(",") if _TABLE.value and _TABLE.value != "all" else ()
        document.write_reproduction_md(tables, _WORKDIR.value, doc_path, _papers(), only=only)
        print(f"wrote {doc_path} and {summary.summary_path(doc_path)}")
    if _VERIFY.value is not None:
        ok = _verify(tables, doc_path) and ok
    if not (_LIST.value or _TABLE.value or _WRITE_REPORT.value or _VERIFY.value is not None):
        raise app.UsageError("give --table=<id>, --list, --write_report or --verify")
    if not ok:
        sys.exit(1)


def _verify(tables, doc_path: str) -> bool:
    from kdjax.reproduce import summary, verify
    ids = ([t for t, sp in tables.items() if sp.verify is not None]
           if _VERIFY.value in ("", "all") else _VERIFY.value.split(","))
    try:
        diffs = verify.verify(tables, ids, doc_path, summary.summary_path(doc_path),
                              workdir=_VERIFY_WORKDIR.value, parallel=_PARALLEL.value,
                              registry="" if _REGISTRY.value == _REGISTRY.default
                              else _REGISTRY.value, papers=_papers())
    except ValueError as e:
        raise app.UsageError(str(e)) from None
    for d in diffs:
        print(d.line())
    print(f"--verify {','.join(ids)}: " + (f"{len(diffs)} difference(s) from "
                                           f"{doc_path} and its summary" if diffs else
                                           "every number as recorded"), flush=True)
    return not diffs


def _parse_flags(argv):
    """absl flags, with a bare `--verify` meaning every entry that declares a verify subset."""
    return app.parse_flags_with_usage([("--verify=all" if a == "--verify" else a)
                                       for a in argv])


if __name__ == "__main__":
    app.run(main, flags_parser=_parse_flags)
