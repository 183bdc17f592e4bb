"""The changes that altered what the entries of docs/reproduction.md compute, and which recorded
entries predate them.

A published number is what HEAD computes. When a commit changes numerics for runs already
recorded (a platform flag, a kernel, an initialiser), it is listed in `CHANGES`; every section
of docs/reproduction.md whose `Provenance:` line names a run that predates one of them is marked
*stale* (its numbers were computed by other code; re-run it at HEAD to clear the mark). A run
predates a change when its commit does not contain the change's commit (git ancestry), or, when
git does not know its commit (a rebased or foreign commit), when it finished before the change
was committed.
"""
from __future__ import annotations

import dataclasses
import functools
import re
import subprocess
from typing import Optional, Sequence

from kdjax.reproduce.spec import REPO_ROOT


@dataclasses.dataclass(frozen=True)
class Change:
    commit: str   # the commit that changed the numbers (short hash)
    date: str     # its commit time, UTC, ISO 8601 ('2026-12-02T10:16:29Z')
    what: str     # what changed and what it is known to move


CHANGES = (
    Change("da484c1", "2026-12-02T10:16:29Z",
           "XLA:CPU runs with YNNPACK convolutions off (kdjax/platform/xla_cpu.py); e.g. DiSK "
           "Table 1's 2D teacher became another of its 16 restarts"),
)

_PROVENANCE = re.compile(r"^Provenance: .*?; commit (?P<commits>[^;]+); .*?"
                         r"last finished (?P<finished>[0-9T:\-]+Z?)", re.M)


@functools.lru_cache(maxsize=None)
def _contains(commit: str, change: str, root: str) -> Optional[bool]:
    """Whether `commit` has `change` in its history; None when git cannot tell."""
    try:
        out = subprocess.run(["git", "-C", root, "merge-base", "--is-ancestor", change, commit],
                             capture_output=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return {0: True, 1: False}.get(out.returncode)


def predates(change: Change, commit: str, finished: str, root: str = REPO_ROOT) -> bool:
    """Whether a run at `commit` ('<sha>[+dirty]') that finished at `finished` (ISO, UTC) ran
    without `change`."""
    contains = _contains(commit.split("+")[0].strip(), change.commit, root)
    if contains is not None:
        return not contains
    return finished.rstrip("Z") < change.date.rstrip("Z")


def runs_of(section: str) -> list[tuple[str, str]]:
    """(commit, last finished) of every run a docs/reproduction.md section's Provenance lines
    name."""
    return [(c.strip(), m.group("finished"))
            for m in _PROVENANCE.finditer(section) for c in m.group("commits").split(",")]


def stale_since(section: str, changes: Optional[Sequence[Change]] = None,
                root: str = REPO_ROOT) -> Optional[Change]:
    """The first change in `changes` (default `CHANGES`) that some run of the section
    predates; None if none."""
    runs = runs_of(section)
    for change in CHANGES if changes is None else changes:
        if any(predates(change, commit, finished, root) for commit, finished in runs):
            return change
    return None


def mark(change: Optional[Change]) -> str:
    """The words docs/reproduction.md and `--list` give a stale entry ('' when current)."""
    return "" if change is None else f"stale: recorded before {change.commit}"
