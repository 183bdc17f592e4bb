"""The reproduce harness: sweeps, resumability, aggregation, reports, --list, one real point."""
import csv
import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from kdjax.reproduce import aggregate, document, execute, report, spec, sweep
from kdjax.reproduce.spec import Metric, TableSpec
from tests.configs import repro_fake

FAKE = repro_fake.TABLES
ROOT = spec.REPO_ROOT


@pytest.fixture
def fake_env(tmp_path, monkeypatch):
    monkeypatch.setenv("REPRO_FAKE_DIR", str(tmp_path))
    monkeypatch.delenv("REPRO_FAKE_INTERRUPT", raising=False)
    return tmp_path


def calls(base) -> list[str]:
    path = os.path.join(base, "calls.txt")
    return open(path).read().split() if os.path.exists(path) else []


# --- sweep expansion ---------------------------------------------------------------------------
def test_expand_grid_times_seeds():
    points = sweep.expand(FAKE["fake_table"], "cpu")
    assert [p.name for p in points] == ["variant-a_seed-0", "variant-a_seed-1",
                                        "variant-b_seed-0", "variant-b_seed-1"]
    assert len(sweep.expand(FAKE["fake_table"], "full")) == 6       # default 3 seeds
    assert len(sweep.expand(FAKE["fake_table"], "cpu", seeds=5)) == 10
    assert points[3].param_dict == {"variant": "b", "seed": 1} and points[3].seed == 1
    cfg = sweep.point_config(FAKE["fake_table"], points[3])
    assert (cfg.variant, cfg.seed, cfg.scale_note) == ("b", 1, "reduced: fake")


def test_expand_count_mode_and_single_point():
    (p,) = sweep.expand(FAKE["fake_rows"], "full", seeds=7)
    assert p.name == "all"
    assert sweep.point_config(FAKE["fake_rows"], p, seeds=7).num_runs == 7
    assert sweep.point_config(FAKE["fake_rows"], p).num_runs == 1   # no --seeds: the config's


def test_per_scale_grid():
    t = TableSpec(id="x", paper="p", title="t", config="tests/configs/repro_fake.py",
                  grid={"variant": {"cpu": ("a",), "full": ("a", "b")}, "pairs": (("r:s",),)})
    assert [p.name for p in sweep.expand(t, "cpu")] == ["variant-a_pairs-r-s"]
    assert len(sweep.expand(t, "full")) == 2
    with pytest.raises(ValueError, match="non-empty"):
        TableSpec(id="x", paper="p", title="t", config="c.py", grid={"a": {"cpu": (1,)}})


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="scale"):
        sweep.expand(FAKE["fake_table"], "huge")
    with pytest.raises(ValueError, match="seeds"):
        sweep.expand(FAKE["fake_table"], "cpu", seeds=0)
    with pytest.raises(ValueError, match="seeds must be"):
        TableSpec(id="x", paper="p", title="t", config="c.py", seeds="bogus")
    with pytest.raises(ValueError, match="kind"):
        TableSpec(id="x", paper="p", title="t", config="c.py", kind="poster")
    with pytest.raises(ValueError, match="non-empty"):
        TableSpec(id="x", paper="p", title="t", config="c.py", grid={"a": ()})
    cfg = sweep.point_config(FAKE["fake_rows"], sweep.expand(FAKE["fake_rows"])[0])
    with pytest.raises(ValueError, match="no field"):
        sweep.set_field(cfg, "nope.deeper", 1)


# --- resumability ------------------------------------------------------------------------------
def test_finished_points_are_skipped(fake_env):
    t = FAKE["fake_table"]
    points = sweep.expand(t, "cpu")
    out = execute.run_sweep(t, points, str(fake_env / "w"), log=lambda s: None)
    assert sorted(out.finished) == sorted(p.name for p in points) and not out.failed
    assert calls(fake_env) == ["a0", "a1", "b0", "b1"]
    out = execute.run_sweep(t, points, str(fake_env / "w"), log=lambda s: None)
    assert out.finished == [] and len(out.skipped) == 4
    assert calls(fake_env) == ["a0", "a1", "b0", "b1"]                # nothing re-ran


def test_killed_sweep_continues(fake_env, monkeypatch):
    t = FAKE["fake_table"]
    points = sweep.expand(t, "cpu")
    wd = str(fake_env / "w")
    monkeypatch.setenv("REPRO_FAKE_INTERRUPT", "b0")
    with pytest.raises(KeyboardInterrupt):
        execute.run_sweep(t, points, wd, log=lambda s: None)
    assert calls(fake_env) == ["a0", "a1"]
    assert execute.read_record(wd, points[2]) is None                  # b0 unfinished
    out = execute.run_sweep(t, points, wd, log=lambda s: None)
    assert out.skipped == ["variant-a_seed-0", "variant-a_seed-1"]
    assert calls(fake_env) == ["a0", "a1", "b0", "b1"]


def test_parallel_subprocesses(fake_env):
    t = FAKE["fake_table"]
    points = sweep.expand(t, "cpu", seeds=1)
    out = execute.run_sweep(t, points, str(fake_env / "w"), seeds=1, parallel=2,
                            registry="tests.configs.repro_fake:TABLES", log=lambda s: None)
    assert sorted(out.finished) == ["variant-a_seed-0", "variant-b_seed-0"], out.failed
    assert sorted(calls(fake_env)) == ["a0", "b0"]


def test_record_provenance(fake_env):
    t = FAKE["fake_table"]
    p = sweep.expand(t, "cpu")[1]
    rec = execute.run_point(t, p, str(fake_env / "w"))
    assert rec["seed"] == 1 and rec["params"] == {"variant": "a", "seed": 1}
    assert rec["teacher_queries"] == 10 and rec["wall_time"] >= 0
    assert rec["config"]["variant"] == "a" and rec["scale_note"] == "reduced: fake"
    for key in ("git_commit", "device_kind", "time", "jax_version"):
        assert key in rec["provenance"]
    assert "--point=variant-a_seed-1" in rec["command"]
    assert os.path.exists(os.path.join(execute.point_dir(str(fake_env / "w"), p), "run",
                                       "results.json"))


# --- aggregation -------------------------------------------------------------------------------
def test_mean_std_and_format():
    m, s = aggregate.mean_std([1.0, 2.0, 4.0])
    assert m == pytest.approx(7 / 3)
    assert s == pytest.approx(np.sqrt(((1 - 7 / 3) ** 2 + (2 - 7 / 3) ** 2 + (4 - 7 / 3) ** 2) / 2))
    assert aggregate.mean_std([3.0]) == (3.0, 0.0)
    assert aggregate.fmt_mean_std(81.234, 0.5, 3) == "81.23 ± 0.50"
    assert aggregate.fmt_mean_std(81.234, 0.0, 1) == "81.23"
    with pytest.raises(ValueError):
        aggregate.mean_std([])


def test_paper_lookup():
    papers = {"fake": {"t1": {"a": 55.0}, ("t2", "b"): 1.5}}
    assert aggregate.lookup_paper("fake", ("t1", "{variant}"), {"variant": "a"}, papers) == 55.0
    assert aggregate.lookup_paper("fake", ("t2", "{variant}"), {"x.variant": "b"}, papers) == 1.5
    assert aggregate.lookup_paper("fake", ("t1", "zzz"), {}, papers) is None
    assert aggregate.lookup_paper("nopaper", ("t1",), {}, papers) is None
    # the real file: nested (DiSK) and flat tuple keys (ALM)
    from papers.paper_numbers import PAPERS
    assert aggregate.lookup_paper("disk", ("table1", "counts", "gaussians_2d", "DiSK", "D"),
                                  papers=PAPERS) == 97
    assert aggregate.lookup_paper("alm", ("table1", "{m}", "cifar100"), {"m": "DGKD"},
                                  PAPERS) == 68.61
    assert aggregate.lookup_paper("alm", ("table1", "{m}", "cifar100"), {"m": "DGKD"}) is None


def test_metric_rows_by_hand(fake_env):
    t = FAKE["fake_table"]
    wd = str(fake_env / "w")
    execute.run_sweep(t, sweep.expand(t, "cpu", seeds=3), wd, seeds=3, log=lambda s: None)
    recs = report.finished_records(wd, t.id, "cpu")
    rows = aggregate.metric_rows(t, recs, papers={"fake": {"t1": {"b": 79.0}}})
    by = {r["variant"]: r for r in rows}
    for variant in ("a", "b"):
        vals = [100 * repro_fake.accuracy(variant, s) for s in range(3)]
        assert by[variant]["mean"] == pytest.approx(np.mean(vals))
        assert by[variant]["std"] == pytest.approx(np.std(vals, ddof=1))
        assert by[variant]["n"] == 3 and by[variant]["seeds"] == [0, 1, 2]
    assert by["b"]["paper"] == 79.0 and by["a"]["paper"] == "—"
    assert by["b"]["ours"] == "81.00 ± 1.00"
    cur = aggregate.curves(t, recs)
    assert cur["acc curve (variant=a)"]["x"] == [1, 2]
    assert cur["acc curve (variant=a)"]["mean"][1] == pytest.approx(51.0)


# --- reports, CSV, --list, docs/reproduction.md -------------------------------------------
def test_reports_and_csv(fake_env):
    t = FAKE["fake_table"]
    wd = str(fake_env / "w")
    execute.run_sweep(t, sweep.expand(t, "cpu"), wd, log=lambda s: None)
    rep = report.write_table_report(t, wd, "cpu", papers={"fake": {"t1": {"a": 49.5}}})
    base = os.path.join(wd, t.id, "cpu")
    md = open(os.path.join(base, "report.md")).read()
    assert "| variant | metric | ours | paper | n | seeds |" in md
    assert "| a | acc | 50.50 ± 0.71 | 49.5 | 2 | 0,1 |" in md
    assert "reduced: fake" in md and "teacher queries 40" in md
    rows = list(csv.DictReader(io.StringIO(open(os.path.join(base, "report.csv")).read())))
    assert [r["variant"] for r in rows] == ["a", "b"]
    assert float(rows[1]["mean"]) == pytest.approx(80.5) and rows[1]["paper"] == "—"
    assert rep["plot"] and os.path.getsize(rep["plot"]) > 1000
    with open(rep["plot"], "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_runner_rows_table(fake_env):
    t = FAKE["fake_rows"]
    wd = str(fake_env / "w")
    execute.run_sweep(t, sweep.expand(t, "full"), wd, log=lambda s: None)
    rep = report.write_table_report(t, wd, "full")
    assert rep["rows"] == [{"variant": "a", "ours": "0.5 ± 0"}]


def test_list_and_status(fake_env):
    wd = str(fake_env / "w")
    text = document.list_text(FAKE, wd)
    assert "fake_missing" in text and "not yet implemented" in text
    assert report.table_status(FAKE["fake_table"], wd)[0] == "not run yet"
    t = FAKE["fake_table"]
    points = sweep.expand(t, "cpu")
    execute.run_point(t, points[0], wd)
    status, detail = report.table_status(t, wd)
    assert status == "reduced-scale run here" and "partial: 1/4" in detail
    execute.run_sweep(t, sweep.expand(t, "full"), wd, log=lambda s: None)
    assert report.table_status(t, wd)[0] == "reproduced in full here"
    assert not report.is_full_setting([{"scale": "full", "scale_note": "reduced: 2 epochs"}])
    assert report.is_full_setting([{"scale": "cpu", "scale_note": "full setting (toys)"}])


def test_reproduction_md(fake_env):
    wd = str(fake_env / "w")
    t = FAKE["fake_table"]
    execute.run_sweep(t, sweep.expand(t, "cpu"), wd, log=lambda s: None)
    path = str(fake_env / "docs/reproduction.md")
    text = document.write_reproduction_md(FAKE, wd, path)
    assert open(path).read() == text
    assert "| `fake_missing` | fake | Not written yet | not yet implemented |" in text
    assert "| `fake_table` | fake | Fake table | reduced-scale run here |" in text
    assert "`python -m launch.reproduce --table=fake_table`" in text
    assert "| a | acc | 50.50 ± 0.71 |" in text
    assert os.path.exists(fake_env / "docs" / "reproduction" / "fake_table_cpu_curves.png")



def test_reproduction_md_regenerates_only_the_named_entries(fake_env):
    """--table=ID --write_report: that entry from this workdir; the others kept verbatim."""
    t = FAKE["fake_table"]
    path = str(fake_env / "docs/reproduction.md")
    first = document.write_reproduction_md(FAKE, str(fake_env / "empty"), path)
    assert "| `fake_table` | fake | Fake table | not run yet |" in first
    wd = str(fake_env / "w2")
    execute.run_sweep(t, sweep.expand(t, "cpu"), wd, log=lambda s: None)
    kept = open(path).read().replace("Not written yet", "Not written yet (kept)")
    open(path, "w").write(kept)           # a mark: entries not named must survive as written
    text = document.write_reproduction_md(FAKE, wd, path, only=("fake_table",))
    assert "| `fake_table` | fake | Fake table | reduced-scale run here |" in text
    assert "| a | acc | 50.50 ± 0.71 |" in text and "Runs: `" in text
    assert "Not written yet (kept)" in text
    assert text.count("## `fake_table`") == 1 and text.count("| `fake_table` |") == 1
    assert "reduced-scale run here" in text.split("Summary: ")[1].split("\n")[0]
    again = document.write_reproduction_md(FAKE, wd, path, only=("fake_table",))
    assert again == text                  # idempotent
    # a kept section whose summary row is missing: the row is rebuilt from its status line
    no_row = "\n".join(l for l in text.splitlines() if not l.startswith("| `fake_missing` |"))
    open(path, "w").write(no_row + "\n")
    rebuilt = document.write_reproduction_md(FAKE, wd, path, only=("fake_table",))
    assert rebuilt == text.replace("| Not written yet (kept) |", "| Not written yet |", 1)

def test_claims_overview_reads_each_claim_status_line():
    """One line per `Claim status` line of a section: entry, scale, claim, verdict, n."""
    sections = {
        "t1": "## `t1` — T\n\n### cpu scale — reduced\n\nClaim status: **claim not reproduced "
              "(n=8)** — claim: X beats Y (Sec. 4, Fig. 3), judged on all rounds (greater); "
              "x − y: -0.29 [-0.53, -0.05] pts (n=8, paired) (not held).",
        "t2": "## `t2` — no claim\n\nStatus: **reduced-scale run here** — cpu scale ran.",
        "t3": "### full scale — paper\n\nClaim status: **claim inconclusive** — claim: A | B, "
              "judged on paired seeds (greater); a − b: +1.0 [-1, 3] pts (n=3, paired); "
              "a − c: +2.0 [1, 3] pts (n=10, paired).",
        "t4": "Claim status: **claim inconclusive** — claim: D beats E, judged on the last round "
              "(greater); Holm, m = 2; d − e: +9.00 pts, 97.5% interval [+0.4, +17.6] (Holm "
              "p = 0.04 vs +0, n=10): supports."}
    lines = document.claims_overview(sections)
    rows = [l for l in lines if l.startswith("| t")]
    assert rows == [
        "| t1 | cpu | X beats Y (Sec. 4, Fig. 3) (all rounds) | not reproduced | 8 | current |",
        "| t3 | full | A \\| B (paired seeds) | inconclusive | 3–10 | current |",
        "| t4 | — | D beats E (the last round) | inconclusive | 10 | current |"]
    assert lines[0] == "## The papers' claims at a glance" and "3 claim verdicts" in lines[2]
    assert document.claims_overview({"t2": sections["t2"]}) == []


def test_tpu_commands(fake_env):
    t = FAKE["fake_table"]
    lines = execute.tpu_commands(t, sweep.expand(t, "full"), "gs://b/repro", name_prefix="rp",
                                 extra_flags="--project=p")
    assert len(lines) == 6
    assert lines[0].startswith("python -m launch.tpu.tpu_vm --action=launch --name=rp-0 ")
    assert "--point=variant-a_seed-0" in lines[0] and "--scale=full" in lines[0]
    assert lines[0].endswith("--project=p")
    assert "gsutil -m rsync -r runs/repro/fake_table/full/variant-a_seed-0 " \
           "gs://b/repro/fake_table/full/variant-a_seed-0" in lines[0]
    with pytest.raises(ValueError):
        execute.tpu_commands(t, sweep.expand(t, "full"), "w", name_prefix="Bad_Name")


def test_registry_covers_every_table():
    from experiments.tables import TABLES
    spec.check_registry(TABLES)
    want = (["rad_fig2", "rad_fig4_imagenet", "rad_fig5_d3", "rad_fig6_d4", "rad_fig7_d5",
             "rad_fig8_d6", "rad_fig9_d7"] +
            [f"rad_fig3_{d}_{a}" for d in ("cifar10", "cifar100", "svhn")
             for a in ("resnet", "mobilenet")] +
            ["disk_table1", "disk_table2_6", "disk_table3", "disk_table4",
             "disk_table7_imagenet", "disk_table8", "alm_sec5_fig3", "alm_sec5_fig4",
             "alm_fig5", "alm_table1", "alm_table2", "alm_table3", "lrds_cifar100",
             "lrds_cifar100_cross_family", "lrds_imagenet", "lrds_ablation_eta",
             "lrds_ablation_fraction", "lrds_fashion_mnist"])
    assert not set(want) - set(TABLES)
    for t in TABLES.values():
        assert sweep.expand(t, "cpu") and sweep.expand(t, "full")


def test_cli_list_and_dry_run(fake_env):
    out = subprocess.run(
        [sys.executable, "-m", "launch.reproduce", "--registry=tests.configs.repro_fake:TABLES",
         "--list", "--table=fake_table", "--dry_run", f"--workdir={fake_env / 'w'}"],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "fake_missing" in out.stdout and "not yet implemented" in out.stdout
    assert "scale cpu: reduced: fake" in out.stdout
    assert out.stdout.count("[to run]") == 4
    assert calls(fake_env) == []


# --- one real point, end to end (tests/configs/tiny.py: digits, seconds) ------------------------
def _tiny_spec(method: str, metrics) -> TableSpec:
    return TableSpec(id=f"tiny_{method}", paper="none", title=f"tiny {method}",
                     config="tests/configs/tiny.py", args={"cpu": method, "full": method},
                     seeds="grid:seed", default_seeds={"cpu": 1, "full": 1},
                     grid={"teacher.epochs": (1,), "train.epochs": (1,),
                           "train.checkpoint_every_steps": (10_000,)}, metrics=metrics)


def _run_tiny(t, wd):
    out = execute.run_sweep(t, sweep.expand(t, "cpu"), wd, log=lambda s: None)
    assert not out.failed and len(out.finished) == 1, out.failed
    (rec,) = report.finished_records(wd, t.id, "cpu")
    assert rec["provenance"]["platform"] == "cpu" and rec["config"]["data"]["name"] == "digits"
    rows = aggregate.metric_rows(t, [rec])
    assert [r["metric"] for r in rows] == [m.name for m in t.metrics]
    assert all(10.0 < r["mean"] <= 100.0 and r["n"] == 1 for r in rows)
    return out, rec, rows


def test_end_to_end_tiny_ce(tmp_path):
    t = _tiny_spec("ce", (Metric("CE student", "test_accuracy"),))
    out, rec, rows = _run_tiny(t, str(tmp_path))
    saved = json.load(open(os.path.join(str(tmp_path), t.id, "cpu", out.finished[0], "run",
                                        "results.json")))
    assert saved["test_accuracy"] == pytest.approx(rows[0]["mean"] / 100)
    assert rec["teacher_queries"] == 0 and rec["result"]["history"]


@pytest.mark.slow
def test_end_to_end_tiny_kd(tmp_path):
    t = _tiny_spec("kd", (Metric("KD student", "test_accuracy"),
                          Metric("teacher", "teacher.test_accuracy")))
    _, rec, _ = _run_tiny(t, str(tmp_path))
    assert rec["teacher_queries"] > 0
