"""`launch.reproduce --verify` and the committed summary (kdjax/reproduce/summary.py, verify.py):
a re-run of a cheap entry at HEAD agrees with what docs/reproduction.md and its summary state, and
any number changed there by hand is a difference; `--list` shows the recorded statuses on a
fresh clone (no runs). The fake registry (tests/configs/repro_fake.py) runs in milliseconds."""
import json
import os
import subprocess
import sys

import pytest

from kdjax.reproduce import document, execute, spec, summary, sweep, verify
from tests.configs import repro_fake

FAKE = repro_fake.TABLES
ROOT = spec.REPO_ROOT


@pytest.fixture
def doc(tmp_path, monkeypatch):
    """docs/reproduction.md + summary.json written from a workdir where fake_table (cpu: 2 variants
    x 2 seeds), fake_paired (cpu: 3 x 3) and fake_rows (full) ran."""
    monkeypatch.setenv("REPRO_FAKE_DIR", str(tmp_path))
    monkeypatch.delenv("REPRO_FAKE_INTERRUPT", raising=False)
    wd = str(tmp_path / "w")
    for tid, scale in (("fake_table", "cpu"), ("fake_paired", "cpu"), ("fake_rows", "full")):
        t = FAKE[tid]
        execute.run_sweep(t, sweep.expand(t, scale), wd, log=lambda s: None)
    path = str(tmp_path / "docs/reproduction.md")
    document.write_reproduction_md(FAKE, wd, path)
    return path, summary.summary_path(path)


def _verify(path, ids=("fake_table",)):
    return verify.verify(FAKE, ids, path, summary.summary_path(path), log=lambda s: None)


def _edit(path, old, new):
    text = open(path).read()
    assert old in text
    open(path, "w").write(text.replace(old, new, 1))


def test_summary_records_statuses_and_point_numbers(doc):
    path, sfile = doc
    assert sfile == os.path.join(os.path.dirname(path), "reproduction", "summary.json")
    entries = summary.read(sfile)
    assert set(entries) == set(FAKE)
    assert entries["fake_table"]["status"] == "reduced-scale run here"
    assert entries["fake_missing"]["status"] == "not yet implemented"
    nums = entries["fake_table"]["verify"]["cpu"]
    assert sorted(nums) == ["variant-a_seed-0", "variant-a_seed-1", "variant-b_seed-0",
                            "variant-b_seed-1"]
    assert nums["variant-b_seed-1"] == {"acc": pytest.approx(100 * repro_fake.accuracy("b", 1))}
    # a declared subset: seed 0 of each variant only
    assert sorted(entries["fake_paired"]["verify"]["cpu"]) == [
        "variant-a_seed-0", "variant-b_seed-0", "variant-c_seed-0"]
    # runner rows: every cell
    assert entries["fake_rows"]["verify"]["full"]["all"] == {
        "rows.0.variant": "a", "rows.0.ours.mean": 0.5, "rows.0.ours.std": 0.0}
    assert "verify" not in entries["fake_missing"]


def test_verify_passes_at_head_and_fails_on_a_number_changed_by_hand(doc):
    path, sfile = doc
    assert _verify(path, ("fake_table", "fake_paired", "fake_rows")) == []
    # a number in the summary
    entries = json.load(open(sfile))
    entries["entries"]["fake_table"]["verify"]["cpu"]["variant-a_seed-1"]["acc"] += 0.01
    json.dump(entries, open(sfile, "w"))
    (d,) = _verify(path)
    assert (d.table, d.where) == ("fake_table", "cpu/variant-a_seed-1 acc")
    assert d.head == pytest.approx(51.0) and d.recorded == pytest.approx(51.01)
    assert d.line().startswith("DIFFERS fake_table cpu/variant-a_seed-1 acc: recorded 51.01")


def test_verify_fails_on_the_documents_table_or_status_changed_by_hand(doc):
    path, _ = doc
    _edit(path, "| a | acc | 50.50 ± 0.71 |", "| a | acc | 50.60 ± 0.71 |")
    (d,) = _verify(path)
    assert d.where == "cpu table line 3" and "50.60" in d.recorded and "50.50" in d.head
    _edit(path, "| `fake_rows` | fake | Fake runner rows | reproduced in full here |",
          "| `fake_rows` | fake | Fake runner rows | reduced-scale run here |")
    diffs = _verify(path, ("fake_paired",))
    assert [(d.table, d.where) for d in diffs] == [
        ("fake_rows", "status (docs/reproduction.md vs summary)")]


def test_verify_subset_without_recorded_numbers_and_undeclared_entries(doc):
    path, sfile = doc
    entries = json.load(open(sfile))
    del entries["entries"]["fake_paired"]["verify"]
    json.dump(entries, open(sfile, "w"))
    diffs = _verify(path, ("fake_paired",))
    assert len(diffs) == 3 and all("no numbers recorded" in d.recorded for d in diffs)
    with pytest.raises(ValueError, match="fake_missing.*declares no verify subset"):
        _verify(path, ("fake_missing",))
    with pytest.raises(ValueError, match="verify subset of seeds needs seeds='grid"):
        spec.TableSpec(id="x", paper="p", title="t", config="c.py", seeds="count:n",
                       verify=spec.Verify(seeds=1))


def test_list_shows_the_recorded_status_and_what_the_workdir_says(doc, tmp_path):
    path, sfile = doc
    recorded = summary.read(sfile)
    fresh = document.list_text(FAKE, str(tmp_path / "fresh"), recorded)   # a fresh clone
    assert "fake_rows     reproduced in full here" in fresh
    assert "fake_table    reduced-scale run here" in fresh and "holds" not in fresh
    assert "not run yet" not in fresh
    recorded["fake_table"]["status"] = "not run yet"                     # the workdir differs
    line = [l for l in document.list_text(FAKE, str(tmp_path / "w"), recorded).splitlines()
            if l.startswith("fake_table ")][0]
    assert "not run yet" in line and line.endswith(f"[{tmp_path / 'w'} holds: reduced-scale "
                                                   "run here]")


def test_cli_verify_exit_code_and_list(doc, tmp_path):
    path, _ = doc
    cmd = [sys.executable, "-m", "launch.reproduce", "--registry=tests.configs.repro_fake:TABLES",
           f"--report_path={path}", f"--workdir={tmp_path / 'fresh'}", "--list", "--verify"]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "fake_rows     reproduced in full here" in out.stdout
    assert "--verify fake_table,fake_paired,fake_rows: every number as recorded" in out.stdout
    _edit(path, "| b | acc | 80.50 ± 0.71 |", "| b | acc | 80.50 ± 0.72 |")
    out = subprocess.run(cmd[:-2] + ["--verify=fake_table"], cwd=ROOT, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "DIFFERS fake_table cpu table line 4: recorded '| b | acc | 80.50 ± 0.72 |" in out.stdout
    assert "--verify fake_table: 1 difference(s)" in out.stdout


@pytest.mark.slow
def test_verify_the_cheap_real_entries_at_head():
    """Every real entry declaring TableSpec.verify (kd_fashion_mnist and disk_table4 on seed 0,
    rad_fig2, disk_table2_6, alm_sec5_fig3), re-run at HEAD, gives what docs/reproduction.md
    and its summary state: ~10 min on the shared 2-core machine (ALM-KD Fig. 3's 50 seeds
    5-8 of them)."""
    out = subprocess.run([sys.executable, "-m", "launch.reproduce", "--verify"],
                         cwd=ROOT, capture_output=True, text=True, timeout=3000)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    assert "every number as recorded" in out.stdout
