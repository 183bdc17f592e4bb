"""Running a sweep's points: in-process, as K parallel subprocesses, or as Cloud TPU jobs.

Layout: `<workdir>/<table>/<scale>/<point>/` per point. The runner works in `<point>/run/`
(it resumes from there if killed mid-run); when it returns, the harness writes
`<point>/results.json` (the runner's result plus provenance). A point with that file is
finished and is skipped, so re-running a killed sweep continues where it stopped.

The teacher stage is shared: every point of a method-interface run (kdjax.run) that trains its
teacher gets `teacher.workdir = <workdir>/<table>/<scale>/_teachers/<key>`, key =
`kdjax.experiment.teacher_key` (data, teacher model / epochs / lr / seed, train recipe, mesh),
so the points with the same teacher (every variant and, with `teacher.seed` >= 0, every seed
of a cell) train it once; parallel points wait on its claim (`kdjax.stages`, local or
gs://).
"""
from __future__ import annotations

import dataclasses
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
import traceback
from typing import Any, Callable, Sequence

import numpy as np

from kdjax import children
from kdjax import config as config_lib
from kdjax import experiment
from kdjax import run as run_lib
from kdjax import storage
from kdjax.reproduce.spec import REPO_ROOT, TableSpec
from kdjax.reproduce.sweep import Point, point_config

RESULTS = "results.json"
_TPU_NAME_RE = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")


def point_dir(workdir: str, point: Point) -> str:
    return os.path.join(workdir, point.table, point.scale, point.name)


def teachers_dir(workdir: str, point: Point) -> str:
    """The folder of a table's shared teachers at the point's scale."""
    return os.path.join(workdir, point.table, point.scale, "_teachers")


def share_teacher(config, workdir: str, point: Point) -> None:
    """Point `config.teacher.workdir` to the table's shared teacher folder for this teacher
    (`teachers_dir/<experiment.teacher_key>`), unless the config loads its teacher
    (`teacher.checkpoint`), names a folder itself, has no teacher section, its method needs no
    teacher, or it is a driver that owns its teachers (e.g. RAD's per-trial teachers)."""
    if "teacher" not in config or "train" not in config:
        return
    if config.teacher.checkpoint or config.teacher.workdir:
        return
    target = run_lib.resolve(config.method)
    if callable(target) or not hasattr(target, "make_method"):
        return
    if not getattr(target, "NEEDS_TEACHER", True):
        return   # e.g. CE: no teacher
    with config.teacher.unlocked():
        config.teacher.workdir = os.path.join(teachers_dir(workdir, point),
                                              experiment.teacher_key(config))


def read_record(workdir: str, point: Point) -> dict | None:
    """The finished record of a point, or None."""
    path = os.path.join(point_dir(workdir, point), RESULTS)
    try:
        record = storage.read_json(path)
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and record.get("status") == "finished" else None


def jsonable(x: Any) -> Any:
    """numpy/jax scalars and arrays -> Python numbers and lists, recursively."""
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if isinstance(x, (np.generic,)):
        return x.item()
    if hasattr(x, "__array__") and not isinstance(x, (str, bytes)):
        return np.asarray(x).tolist()
    if isinstance(x, float) and not np.isfinite(x):
        return str(x)
    return x


def teacher_queries(result: Any) -> int | None:
    """Sum of every `teacher_queries` number in the result's dicts (not inside lists, where
    per-epoch logs repeat cumulative counts); None if the runner reports none."""
    total, found = 0, False
    stack = [result]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for k, v in node.items():
                if k == "teacher_queries" and isinstance(v, (int, float)):
                    total, found = total + int(v), True
                elif isinstance(v, dict):
                    stack.append(v)
    return total if found else None


def seeds_used(spec: TableSpec, config, point: Point) -> str:
    """What seeds this point's result averages over, in words."""
    from kdjax.reproduce.aggregate import get_path
    mode, _, field = spec.seeds.partition(":")
    if point.seed is not None:
        return str(point.seed)
    cfg = config.to_dict()
    try:
        value = get_path(cfg, field) if field else cfg.get("seeds", cfg.get("seed"))
    except KeyError:
        value = None
    if mode == "count" and isinstance(value, int):
        start = cfg.get("seed0", cfg.get("seed", 0))
        draws = cfg.get("draws", 1)
        if isinstance(draws, int) and draws > 1:   # DiSK Table 1: (data, teacher) draws
            return f"{draws} (data, teacher) draws {start}..{start + draws - 1} x {value} runs"
        return f"{value} seeds/runs from {start}"
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value))
    return "unstated" if value is None else str(value)


def _write_json(path: str, obj: dict) -> None:
    storage.write_json(path, jsonable(obj), indent=1, default=str)


def run_point(spec: TableSpec, point: Point, workdir: str, *, seeds: int | None = None,
              force: bool = False, stages_root: str | None = None) -> dict:
    """Run one point in this process (skipped if finished) and return its record. Its shared
    teacher lives under `stages_root` (default `workdir`; e.g. a bucket that the points of a
    `--tpu_name` sweep share while each runs in a local workdir)."""
    done = None if force else read_record(workdir, point)
    if done is not None:
        return done
    from kdjax.provenance import provenance  # imports jax

    registered = None
    if spec.prereg:   # a confirmation: its pre-registration committed and unmodified, now
        from kdjax.reproduce import prereg
        registered = prereg.file_state(spec.prereg)
    pdir = point_dir(workdir, point)
    storage.makedirs(pdir)
    config = config_lib.selected(point_config(spec, point, seeds))
    config_lib.validate(config)
    share_teacher(config, stages_root or workdir, point)
    _write_json(os.path.join(pdir, "config.json"), config.to_dict())
    t0 = time.time()
    started = provenance()  # at the start: the code and settings this point runs with
    result = run_lib.run(config, os.path.join(pdir, "run"))
    wall = time.time() - t0
    result = result if isinstance(result, dict) else {"value": result}
    record = {
        "status": "finished", "table": spec.id, "point": point.name, "scale": point.scale,
        "params": point.param_dict, "seed": point.seed if point.seed is not None
        else config.get("seed"), "method": config.method,
        "scale_note": result.get("scale_note") or config.get("scale_note") or
        ("full setting" if point.scale == "full" else "reduced scale (see config)"),
        "seeds_used": seeds_used(spec, config, point),
        "wall_time": wall, "teacher_queries": teacher_queries(result),
        "provenance": result.get("provenance") or started, "config": config.to_dict(),
        **({"prereg": registered} if registered else {}),
        "command": point_command(spec, point, workdir, seeds, stages_root=stages_root),
        "result": result}
    if registered:
        record["provenance"] = {**record["provenance"], "prereg": registered}
    _write_json(os.path.join(pdir, RESULTS), record)
    return read_record(workdir, point)


@dataclasses.dataclass
class SweepOutcome:
    finished: list[str]
    skipped: list[str]
    failed: dict[str, str]


def point_command(spec: TableSpec, point: Point, workdir: str, seeds: int | None,
                  python: str = "python", stages_root: str | None = None) -> str:
    args = [python, "-m", "launch.reproduce", f"--table={spec.id}", f"--scale={point.scale}",
            f"--point={point.name}", f"--workdir={workdir}"]
    if seeds is not None:
        args.append(f"--seeds={seeds}")
    if stages_root and stages_root != workdir:
        args.append(f"--stages_root={stages_root}")
    return " ".join(shlex.quote(a) for a in args)


def stage_waves(spec: TableSpec, points: Sequence[Point], workdir: str,
                seeds: int | None = None) -> tuple[list[Point], list[Point]]:
    """(first, rest): the first point of each shared teacher folder (`share_teacher`), which
    trains it, and every other point, which reads a teacher back. A sweep runs the first wave
    before it fans out the rest, so each shared stage is trained once, not waited on by every
    parallel point (`kdjax.stages` keeps concurrent starts correct either way)."""
    first, rest, seen = [], [], set()
    for p in points:
        config = point_config(spec, p, seeds)
        share_teacher(config, workdir, p)
        folder = config.teacher.workdir if "teacher" in config else ""
        if folder and folder not in seen:
            seen.add(folder)
            first.append(p)
        else:
            rest.append(p)
    return first, rest


def run_sweep(spec: TableSpec, points: Sequence[Point], workdir: str, *,
              seeds: int | None = None, parallel: int = 1, registry: str = "",
              log: Callable[[str], None] = print) -> SweepOutcome:
    """Run every unfinished point: one after another in this process (parallel=1) or as
    `parallel` subprocesses of `python -m launch.reproduce --point=...`. A failing point is
    reported and the others still run, except on a job of several processes (`--multihost`),
    where it ends the job (`launch.failures.guarded`: the other processes are in that point's
    collectives); KeyboardInterrupt stops the sweep (re-run to resume)."""
    if parallel < 1:
        raise ValueError(f"--parallel must be >= 1, got {parallel}")
    out = SweepOutcome([], [], {})
    todo = []
    for p in points:
        if read_record(workdir, p) is not None:
            out.skipped.append(p.name)
        else:
            todo.append(p)
    if out.skipped:
        log(f"[{spec.id}] {len(out.skipped)} finished point(s) skipped: "
            f"{', '.join(out.skipped)}")
    if parallel == 1:
        for i, p in enumerate(todo):
            log(f"[{spec.id}] point {i + 1}/{len(todo)}: {p.name}")
            try:
                run_point(spec, p, workdir, seeds=seeds)
                out.finished.append(p.name)
            except Exception as e:  # noqa: BLE001 — report it, run the other points
                out.failed[p.name] = f"{type(e).__name__}: {e}"
                storage.write_text(os.path.join(point_dir(workdir, p), "error.txt"),
                                   traceback.format_exc())
                log(f"[{spec.id}] point {p.name} FAILED: {type(e).__name__}: {e}")
                from kdjax.train import failure
                if failure.multiprocess():
                    raise
        return out
    first, rest = stage_waves(spec, todo, workdir, seeds)
    if first and rest:
        log(f"[{spec.id}] {len(first)} point(s) train the shared teacher(s) first: "
            f"{', '.join(p.name for p in first)}")
    for wave in (first, rest):
        _run_parallel(spec, wave, workdir, out, seeds=seeds, parallel=parallel,
                      registry=registry, log=log)
    return out


def _run_parallel(spec: TableSpec, queue: list[Point], workdir: str, out: SweepOutcome, *,
                  seeds: int | None, parallel: int, registry: str, log) -> None:
    running: list[tuple[Point, subprocess.Popen, Any]] = []
    queue = list(queue)
    try:
        while queue or running:
            while queue and len(running) < parallel:
                p = queue.pop(0)
                logf = _open_log(workdir, p)
                cmd = [sys.executable, "-m", "launch.reproduce", f"--table={spec.id}",
                       f"--scale={p.scale}", f"--point={p.name}", f"--workdir={workdir}"]
                if seeds is not None:
                    cmd.append(f"--seeds={seeds}")
                if registry:
                    cmd.append(f"--registry={registry}")
                log(f"[{spec.id}] started {p.name} (subprocess)")
                running.append((p, subprocess.Popen(cmd, cwd=REPO_ROOT, stdout=logf,
                                                     stderr=subprocess.STDOUT,
                                                     **children.popen_kwargs()), logf))
            time.sleep(0.2)
            for item in list(running):
                p, proc, logf = item
                if proc.poll() is None:
                    continue
                running.remove(item)
                _close_log(workdir, p, logf)
                if proc.returncode == 0 and read_record(workdir, p) is not None:
                    out.finished.append(p.name)
                    log(f"[{spec.id}] finished {p.name}")
                else:
                    out.failed[p.name] = (f"exit code {proc.returncode}; see "
                                          f"{os.path.join(point_dir(workdir, p), 'log.txt')}")
                    log(f"[{spec.id}] point {p.name} FAILED ({out.failed[p.name]})")
    finally:
        for p, proc, logf in running:
            proc.terminate()
            proc.wait()
            _close_log(workdir, p, logf)


def _open_log(workdir: str, point: Point):
    """The point's `log.txt` for a subprocess's output: in place locally; for a bucket, a local
    temporary file that `_close_log` uploads (a subprocess needs a real file)."""
    final = os.path.join(point_dir(workdir, point), "log.txt")
    if not storage.is_remote(final):
        storage.makedirs(os.path.dirname(final))
        return open(final, "w")
    return tempfile.NamedTemporaryFile("w", prefix="kdjax-log-", suffix=".txt", delete=False)


def _close_log(workdir: str, point: Point, logf) -> None:
    logf.close()
    final = os.path.join(point_dir(workdir, point), "log.txt")
    if storage.is_remote(final):
        storage.copy(logf.name, final)
        os.remove(logf.name)


def tpu_commands(spec: TableSpec, points: Sequence[Point], bucket: str, *, name_prefix: str,
                 seeds: int | None = None, extra_flags: str = "",
                 vm_workdir: str = "runs/repro") -> list[str]:
    """One `launch/tpu/tpu_vm.py` job per point (create + install + run on its own TPU VM
    `<prefix>-<i>`), printed, not run. The point runs in `vm_workdir` on the VM and its
    directory is then copied to `<bucket>/<table>/<scale>/<point>` (gsutil rsync), so that
    `gsutil -m rsync -r <bucket> <local workdir>` followed by a local `--table=...` run (which
    skips the finished points) aggregates them. With a bucket the points share their teachers
    there (`--stages_root`): the first point of each teacher (`stage_waves`) comes first and
    runs in the foreground, so the shared teachers are trained before the other points start
    (in the background)."""
    lines = []
    first, rest = stage_waves(spec, points, bucket or vm_workdir, seeds)
    if not bucket:
        first, rest = [], list(points)
    for i, p in enumerate(first + rest):
        name = f"{name_prefix}-{i}"
        if not _TPU_NAME_RE.match(name):  # tpu_vm's own rule (importing it defines its flags)
            raise ValueError(f"TPU VM name {name!r} must be lowercase letters/digits/'-' "
                             "starting with a letter")
        command = point_command(spec, p, vm_workdir, seeds, stages_root=bucket or None)
        if bucket:
            rel = f"{p.table}/{p.scale}/{p.name}"
            command += (f" && gsutil -m rsync -r {shlex.quote(vm_workdir + '/' + rel)} "
                        f"{shlex.quote(bucket.rstrip('/') + '/' + rel)}")
        args = ["python", "-m", "launch.tpu.tpu_vm", "--action=launch", f"--name={name}",
                *([] if p in first else ["--background"]), f"--command={command}"]
        lines.append(" ".join(shlex.quote(a) for a in args)
                     + (f" {extra_flags}" if extra_flags else ""))
    return lines
