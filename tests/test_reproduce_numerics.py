"""Entries computed before a numerics change are marked stale in docs/reproduction.md, `--list`
and the committed summary; re-running the entry clears the mark (kdjax/reproduce/numerics.py)."""
import json
import subprocess

import pytest

from kdjax.reproduce import document, execute, numerics, spec, sweep
from tests.configs import repro_fake

FAKE = repro_fake.TABLES
UNKNOWN = "0123456789abcdef0123456789abcdef01234567"   # a commit git does not know


def _head() -> str:
    out = subprocess.run(["git", "-C", spec.REPO_ROOT, "rev-parse", "HEAD"], capture_output=True,
                         text=True)
    if out.returncode != 0:
        pytest.skip("not a git checkout")
    return out.stdout.strip()


def _section(commits: str, finished: str) -> str:
    return ("## `fake_missing` — Not written yet\n\nStatus: **reduced-scale run here** — cpu scale "
            "ran.\nConfig: `x.py`.\n\n### cpu scale — reduced\n\n| a | b |\n|---|---|\n\n"
            f"Provenance: 1 point(s); commit {commits}; devices cpu x1; total wall time 1.0 s; "
            f"teacher queries 0; seeds 0; last finished {finished}.")


def test_a_run_predates_a_change_its_commit_lacks_or_that_came_after_it():
    head = _head()
    first = subprocess.run(["git", "-C", spec.REPO_ROOT, "rev-list", "--max-parents=0", "HEAD"],
                           capture_output=True, text=True).stdout.split()[0]
    change = numerics.Change(head[:7], "2026-06-01T00:00:00Z", "test")
    assert not numerics.predates(change, head + "+dirty", "2020-01-01T00:00:00Z")  # git decides
    assert numerics.predates(change, first, "2030-01-01T00:00:00Z")
    # git does not know the commit: its finishing time decides
    assert numerics.predates(change, UNKNOWN, "2026-05-31T23:59:59Z")
    assert not numerics.predates(change, UNKNOWN + "+dirty", "2026-06-01T00:00:01Z")


def test_stale_since_reads_every_run_of_every_scale():
    change = numerics.Change(_head()[:7], "2026-06-01T00:00:00Z", "test")
    old, new = _section(UNKNOWN, "2026-05-01T10:00:00Z"), _section(UNKNOWN, "2026-07-01T10:00:00Z")
    assert numerics.runs_of(old) == [(UNKNOWN, "2026-05-01T10:00:00Z")]
    assert numerics.stale_since(old, [change]) == change
    assert numerics.stale_since(new, [change]) is None
    both = new + "\n\n### full scale — paper\n\n" + old.split("\n\n")[-1]
    assert numerics.stale_since(both, [change]) == change
    two = _section(f"{_head()}, {UNKNOWN}+dirty", "2026-05-01T10:00:00Z")
    assert len(numerics.runs_of(two)) == 2 and numerics.stale_since(two, [change]) == change


def test_a_kept_entry_older_than_a_change_is_marked_until_it_is_rerun(tmp_path, monkeypatch):
    monkeypatch.setenv("REPRO_FAKE_DIR", str(tmp_path))
    change = numerics.Change(_head()[:7], "2026-06-01T00:00:00Z", "the test's change")
    monkeypatch.setattr(numerics, "CHANGES", (change,))
    t = FAKE["fake_table"]
    path = str(tmp_path / "docs/reproduction.md")
    text = document.write_reproduction_md(FAKE, str(tmp_path / "empty"), path)
    old = _section(UNKNOWN, "2026-05-01T10:00:00Z")
    start = text.index("## `fake_missing`")
    end = text.find("\n## `", start + 1)
    open(path, "w").write(text[:start] + old + (text[end:] if end > 0 else "\n"))
    wd = str(tmp_path / "w")
    execute.run_sweep(t, sweep.expand(t, "cpu"), wd, log=lambda s: None)
    text = document.write_reproduction_md(FAKE, wd, path, only=("fake_table",))
    row = next(l for l in text.splitlines() if l.startswith("| `fake_missing` |"))
    assert row.endswith(f"| stale: recorded before {change.commit} |"), row
    fresh = next(l for l in text.splitlines() if l.startswith("| `fake_table` |"))
    assert fresh.endswith("| current |"), fresh
    section = text[text.index("## `fake_missing`"):]
    lines = section.splitlines()
    status = next(i for i, l in enumerate(lines) if l.startswith("Status: "))
    assert lines[status + 1].startswith("Numbers: **stale** — stale: recorded before")
    assert "the test's change" in lines[status + 1] and text.count("Numbers: **stale**") == 1
    assert document.write_reproduction_md(FAKE, wd, path, only=("fake_table",)) == text
    entries = json.load(open(tmp_path / "docs/reproduction/summary.json"))["entries"]
    assert entries["fake_missing"]["stale"] == f"stale: recorded before {change.commit}"
    assert "stale" not in entries["fake_table"]
    listed = document.list_text(FAKE, str(tmp_path / "nothing"), entries)
    assert f"[stale: recorded before {change.commit}]" in next(
        l for l in listed.splitlines() if l.startswith("fake_missing"))
    # the same section recorded after the change is current again, and its line goes
    open(path, "w").write(text.replace("2026-05-01T10:00:00Z", "2026-07-01T10:00:00Z"))
    text = document.write_reproduction_md(FAKE, wd, path, only=("fake_table",))
    assert "Numbers: **stale**" not in text
    assert next(l for l in text.splitlines() if l.startswith("| `fake_missing` |")).endswith(
        "| current |")
