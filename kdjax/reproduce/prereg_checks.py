"""Pre-registration checks (issue 33, item 5): the file is committed and unmodified
(`file_state`), its seeds are fresh (`check_fresh`, `used_seeds`, `recorded_seeds`), and a
workdir's finished points ran under this version of it (`check_records`). The declaration, the
confirmation entry and the verdict are in kdjax/reproduce/prereg.py."""
from __future__ import annotations

import os
import subprocess
import time
from typing import TYPE_CHECKING, Mapping, Sequence

from kdjax.reproduce.spec import REPO_ROOT, SCALES, TableSpec

if TYPE_CHECKING:
    from kdjax.reproduce.prereg import Prereg


class PreregError(ValueError):
    """A pre-registered run refused (one line naming the file or field)."""



# --- the file's state in git ------------------------------------------------------------------
def _git(root: str, *args: str) -> tuple[int, str]:
    try:
        out = subprocess.run(["git", "-C", root, *args], capture_output=True, text=True,
                             timeout=30)
    except (OSError, subprocess.SubprocessError) as e:
        return 1, str(e)
    return out.returncode, out.stdout.strip()


def file_state(path: str) -> dict:
    """{'file', 'commit' (the last commit that changed it), 'blob', 'head', 'checked'} of a
    committed, unmodified pre-registration file; PreregError (one line) otherwise."""
    full = path if os.path.isabs(path) else os.path.join(REPO_ROOT, path)
    if not os.path.exists(full):
        raise PreregError(f"pre-registration file {path} does not exist")
    code, root = _git(os.path.dirname(full), "rev-parse", "--show-toplevel")
    if code:
        raise PreregError(f"pre-registration file {path} is not in a git checkout")
    rel = os.path.relpath(os.path.realpath(full), os.path.realpath(root))
    code, _ = _git(root, "ls-files", "--error-unmatch", "--", rel)
    commit = _git(root, "log", "-1", "--format=%H", "--", rel)[1] if code == 0 else ""
    if not commit:
        raise PreregError(f"pre-registration file {path} is not committed: commit it before "
                          "its confirmation run")
    if _git(root, "status", "--porcelain", "--", rel)[1]:
        raise PreregError(f"pre-registration file {path} has uncommitted changes: commit them "
                          "(a new pre-registration) or restore the file")
    return {"file": path, "commit": commit, "blob": _git(root, "rev-parse", f"HEAD:{rel}")[1],
            "head": _git(root, "rev-parse", "HEAD")[1], "committed_unmodified": True,
            "checked": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def label(state: Mapping) -> str:
    return f"confirmation (pre-registered: {state['file']} @ {state['commit'][:7]})"


# --- fresh seeds ------------------------------------------------------------------------------
def used_seeds(spec: TableSpec, field: str, recorded: Sequence[int] = ()) -> set[int]:
    """Every value of seed field `field` the entry's points use at either scale with its
    default seeds (a count table: seed0 .. seed0 + N − 1, and any section holding
    seed0/num_seeds, e.g. a selection split), plus `recorded` (seeds its runs recorded)."""
    from kdjax.reproduce.aggregate import get_path
    from kdjax.reproduce.sweep import expand, point_config
    mode, _, sfield = spec.seeds.partition(":")
    primary = field == sfield if mode == "grid" else field in ("seed0", "seed")
    out = set(int(s) for s in recorded) if primary else set()
    for scale in SCALES:
        for point in expand(spec, scale):
            cfg = point_config(spec, point).to_dict()
            if mode == "grid" and field == sfield:
                out.add(int(point.seed))
                continue
            if mode == "count" and field in ("seed0", "seed") and field in cfg:
                n = get_path(cfg, sfield) if sfield else 1
                out.update(range(int(cfg[field]), int(cfg[field]) + int(n)))
                for section in cfg.values():
                    if isinstance(section, dict) and {"seed0", "num_seeds"} <= set(section):
                        out.update(range(int(section["seed0"]),
                                         int(section["seed0"]) + int(section["num_seeds"])))
                continue
            try:
                value = get_path(cfg, field)
            except (KeyError, IndexError, ValueError):
                continue
            if isinstance(value, int) and value < 0:   # -1: follows the run's own seed
                value = point.seed if point.seed is not None else cfg.get("seed")
            if isinstance(value, int):
                out.add(value)
    return out


def check_fresh(p: Prereg, tables: Mapping[str, TableSpec],
                recorded: Mapping[str, Sequence[int]] | None = None) -> None:
    """PreregError (one line) when a declared seed is one an exploratory entry used, or an
    exploratory entry is not registered. recorded: entry -> seeds its documented runs used."""
    for tid in p.exploratory:
        if tid not in tables:
            raise PreregError(f"{p.path}: exploratory entry {tid!r} is not registered")
    for field, values in p.fresh.items():
        fresh = set(values)
        if p.mode == "count":
            fresh = set(range(values[0], values[0] + len(values)))
        for tid in p.exploratory:
            used = used_seeds(tables[tid], field, (recorded or {}).get(tid, ()))
            clash = sorted(fresh & used)
            if clash:
                shown = ", ".join(map(str, clash[:8])) + (" ..." if len(clash) > 8 else "")
                raise PreregError(f"{p.path}: {field} {shown} already used by the "
                                  f"exploratory entry {tid}: declare seeds none of them ran")


def recorded_seeds(doc_text: str, tid: str) -> list[int]:
    """The seeds an entry's section of docs/reproduction.md records in its provenance lines
    ('seeds 0, 1, 2', '50 seeds/runs from 0')."""
    import re
    from kdjax.reproduce.document import doc_entries
    section = doc_entries(doc_text)[1].get(tid, "")
    out: list[int] = []
    for listed in re.findall(r"; seeds (.+?); last finished", section):
        for item in listed.split(", "):
            m = re.fullmatch(r"(\d+) seeds/runs from (\d+)", item.strip())
            if m:
                out += range(int(m.group(2)), int(m.group(2)) + int(m.group(1)))
            else:
                out += [int(x) for x in item.split(",") if x.strip().isdigit()]
    return out


def check_records(p: Prereg, state: Mapping, records: Sequence[dict]) -> None:
    """PreregError when a finished point was not run under this version of the file."""
    other = [r["point"] for r in records
             if (r.get("prereg") or {}).get("blob") != state["blob"]]
    if other:
        raise PreregError(f"{p.path}: {len(other)} finished point(s) of {p.id} (e.g. "
                          f"{other[0]}) were not run under {label(state)}: use a fresh "
                          "--workdir")
