"""Pre-registered confirmation runs (kdjax/reproduce/prereg.py): exactly the declared fresh seeds,
the file committed and unmodified when the run starts (its commit in every point's
provenance), and the verdict under the declared Holm rule in the report. Fake tables
(tests/configs/repro_fake.py) in a throwaway git repository: milliseconds per run."""
import json
import os
import subprocess
import sys
import textwrap

import pytest

from kdjax.reproduce import execute, prereg, report, stats, sweep
from kdjax.reproduce.spec import REPO_ROOT
from tests.configs import repro_fake

PREREG = textwrap.dedent("""
    from kdjax.reproduce.prereg import Comparison, Prereg
    from kdjax.reproduce.spec import Metric


    def get_prereg():
        return Prereg(id="fake_confirm", paper="fake", title="Fake confirmation",
                      config="tests/configs/repro_fake.py", seeds="grid:seed",
                      fresh={{"seed": {seeds}}}, exploratory=("fake_paired",),
                      axis="variant", arms={{"variant": ("a", "b", "c")}}, metric="acc",
                      metrics=(Metric("acc", "acc"),), unit="one seed",
                      comparisons=(Comparison("c", "a"), Comparison("a", "b")))
    """)


def _git(root, *args):
    subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path, monkeypatch):
    """A git repository holding a registry module whose fake_confirm entry is built from a
    pre-registration file (seeds 10..13, uncommitted at first)."""
    monkeypatch.setenv("REPRO_FAKE_DIR", str(tmp_path))
    monkeypatch.delenv("REPRO_FAKE_INTERRUPT", raising=False)
    root = tmp_path / "repo"
    root.mkdir()
    _git(root, "init", "-q")
    _git(root, "config", "user.email", "t@example.com")
    _git(root, "config", "user.name", "t")
    (root / "confirm.py").write_text(PREREG.format(seeds="(10, 11, 12, 13)"))
    (root / "fake_registry.py").write_text(textwrap.dedent(f"""
        from kdjax.reproduce import prereg
        from tests.configs import repro_fake
        TABLES = {{**repro_fake.TABLES,
                  "fake_confirm": prereg.table_spec(prereg.load({str(root / 'confirm.py')!r}))}}
        """))
    monkeypatch.syspath_prepend(str(root))
    return root


def _commit(root, msg="prereg"):
    _git(root, "add", "confirm.py")
    _git(root, "commit", "-q", "-m", msg)
    return subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                          text=True, check=True).stdout.strip()


def _spec(root):
    return prereg.table_spec(prereg.load(str(root / "confirm.py")))


def _cli(root, tmp_path, *flags):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([REPO_ROOT, str(root)])}
    return subprocess.run([sys.executable, "-m", "launch.reproduce",
                           "--registry=fake_registry:TABLES", "--table=fake_confirm",
                           f"--workdir={tmp_path / 'w'}",
                           f"--report_path={tmp_path / 'docs/reproduction.md'}", *flags],
                          cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_the_entry_runs_exactly_the_declared_seeds(repo):
    t = _spec(repo)
    points = sweep.expand(t, "cpu")
    assert sorted({p.seed for p in points}) == [10, 11, 12, 13] and len(points) == 12
    with pytest.raises(ValueError, match="runs exactly its declared seeds"):
        sweep.expand(t, "cpu", seeds=2)
    assert t.prereg == str(repo / "confirm.py")


def test_seeds_of_an_exploratory_entry_are_refused(repo):
    (repo / "confirm.py").write_text(PREREG.format(seeds="(2, 10)"))
    p = prereg.load(str(repo / "confirm.py"))
    with pytest.raises(prereg.PreregError, match="seed 2 already used by the exploratory "
                                                 "entry fake_paired"):
        prereg.check_fresh(p, repro_fake.TABLES)
    (repo / "confirm.py").write_text(PREREG.format(seeds="(10, 11)"))
    fresh = prereg.load(str(repo / "confirm.py"))
    prereg.check_fresh(fresh, repro_fake.TABLES)
    # seeds its documented runs recorded count too (a run with --seeds above the default)
    with pytest.raises(prereg.PreregError, match="seed 10 already used"):
        prereg.check_fresh(fresh, repro_fake.TABLES, {"fake_paired": [10]})
    with pytest.raises(prereg.PreregError, match="exploratory entry 'nope' is not registered"):
        prereg.check_fresh(prereg.dataclasses.replace(fresh, exploratory=("nope",)),
                           repro_fake.TABLES)


def test_recorded_seeds_are_read_from_the_document():
    text = ("# Reproduction status\n\n## `x` — t\n\nProvenance: 1 point(s); commit c; seeds 50 "
            "seeds/runs from 2000; last finished t.\n\n## `y` — u\n\nProvenance: 2 point(s); "
            "commit c; seeds 0, 1, 7; last finished t.\n")
    assert prereg.recorded_seeds(text, "x") == list(range(2000, 2050))
    assert prereg.recorded_seeds(text, "y") == [0, 1, 7]


def test_file_state_refuses_an_uncommitted_or_modified_file(repo):
    path = str(repo / "confirm.py")
    with pytest.raises(prereg.PreregError, match="is not committed"):
        prereg.file_state(path)
    commit = _commit(repo)
    state = prereg.file_state(path)
    assert state["commit"] == commit and state["committed_unmodified"] is True
    assert prereg.label(state) == f"confirmation (pre-registered: {path} @ {commit[:7]})"
    with open(path, "a") as f:
        f.write("# edited after the commit\n")
    with pytest.raises(prereg.PreregError, match="has uncommitted changes"):
        prereg.file_state(path)


@pytest.mark.slow   # ~30 s / ~15 s through the real CLI; the default suite keeps ~10 min
def test_cli_refuses_in_one_line(repo, tmp_path):
    out = _cli(repo, tmp_path)                                   # not committed
    assert out.returncode == 1 and out.stderr.strip().count("\n") == 0, out.stderr
    assert "refused: pre-registration file" in out.stderr and "is not committed" in out.stderr
    _commit(repo)
    out = _cli(repo, tmp_path, "--seeds=2")
    assert out.returncode == 1 and "drop --seeds" in out.stderr, out.stderr
    (repo / "confirm.py").write_text(PREREG.format(seeds="(1, 10, 11)"))
    _commit(repo, "reuse a seed")
    out = _cli(repo, tmp_path)
    assert out.returncode == 1 and out.stderr.strip().count("\n") == 0
    assert "seed 1 already used by the exploratory entry fake_paired" in out.stderr
    assert not (tmp_path / "w").exists()


def test_confirmation_run_records_the_commit_and_reports_the_verdict(repo, tmp_path):
    commit = _commit(repo)
    out = _cli(repo, tmp_path, "--write_report")
    assert out.returncode == 0, out.stdout + out.stderr
    records = report.finished_records(str(tmp_path / "w"), "fake_confirm", "cpu")
    assert len(records) == 12
    for r in records:
        assert r["prereg"]["commit"] == commit and r["prereg"]["committed_unmodified"]
        assert r["provenance"]["prereg"]["commit"] == commit
    doc = (tmp_path / "docs/reproduction.md").read_text()
    label = f"confirmation (pre-registered: {repo / 'confirm.py'} @ {commit[:7]})"
    assert f"Entry: **{label}**" in doc
    # c − a = 0.10 + 0.02·seed² > 0 on every seed; a − b = −0.30 on every seed
    assert "confirmation: c helpful, a not helpful (n=4)" in doc
    assert "Holm, m = 2, α = 0.05" in doc
    # a partial run confirms nothing
    part = [r for r in records if r["point"] != records[0]["point"]]
    assert prereg.claim(_spec(repo), part) == (
        "not a confirmation", "incomplete: 11 of the 12 declared points ran")
    # the run cannot be continued under a changed file
    (repo / "confirm.py").write_text(PREREG.format(seeds="(10, 11, 12, 13, 14)"))
    _commit(repo, "one more seed")
    out = _cli(repo, tmp_path)
    assert out.returncode == 1 and "were not run under confirmation" in out.stderr


def test_verdict_pairs_over_the_declared_unit():
    """Two student seeds under each of 4 teacher seeds: the comparison is paired over the 4
    teachers' means; the record-level interval is given beside it."""
    p = prereg.Prereg(id="u", paper="fake", title="u", config="tests/configs/repro_fake.py",
                      seeds="grid:seed", fresh={"seed": (0, 1), "teacher.seed": (5, 6, 7, 8)},
                      exploratory=(), axis="variant", arms={"variant": ("a", "b")},
                      metric="acc", metrics=(repro_fake.TABLES["fake_paired"].metrics[0],),
                      unit="a teacher seed", unit_fields=("teacher.seed",),
                      comparisons=(prereg.Comparison("b", "a"),))
    spec = prereg.table_spec(p)
    assert "teacher_seed" in spec.grid
    records, per_teacher = [], {"a": [], "b": []}
    for v, base in (("a", 0.5), ("b", 0.6)):
        for t in (5, 6, 7, 8):
            vals = [base + 0.01 * t * (1 + s) * (v == "b") for s in (0, 1)]
            per_teacher[v].append(sum(vals) / 2)
            for s, val in zip((0, 1), vals):
                records.append({"point": f"{v}{t}{s}", "params": {
                    "variant": v, "teacher_seed": str(t), "seed": s}, "result": {"acc": val}})
    assert spec.draw == "teacher_seed"
    (two,) = prereg.unit_diffs(p, records).values()
    want = stats.paired(per_teacher["b"], per_teacher["a"])
    assert two.draws.n == 4 and two.draws.mean == pytest.approx(want.mean)
    assert two.draws.lo == pytest.approx(want.lo) and two.runs.n == 8
    v = prereg.verdict(p, records)
    assert v["arms"] == {"b": "helpful"} and v["status"] == "confirmation: b helpful (n=4 draws)"


def test_seeds_per_draw_deals_the_declared_seeds_and_refuses_a_mismatch():
    """seeds_per_draw = N: draw i runs the declared seeds [i·N, (i + 1)·N) (nested); a count that
    is not N x draws, or no draw to deal to, is one line naming the file."""
    kw = dict(id="n", paper="fake", title="n", config="tests/configs/repro_fake.py",
              seeds="grid:seed", exploratory=(), axis="variant", arms={"variant": ("a", "b")},
              metric="acc", metrics=(repro_fake.TABLES["fake_paired"].metrics[0],),
              unit="a teacher seed", unit_fields=("teacher.seed",),
              comparisons=(prereg.Comparison("b", "a"),), path="x/nested.py")
    p = prereg.Prereg(fresh={"seed": (20, 21, 22, 23), "teacher.seed": (5, 6)},
                      seeds_per_draw=2, **kw)
    runs = {(pt.param_dict["teacher_seed"], pt.seed) for pt in sweep.expand(prereg.table_spec(p))}
    assert runs == {("5", 20), ("5", 21), ("6", 22), ("6", 23)}
    with pytest.raises(prereg.PreregError, match=r"^pre-registration x/nested.py: "
                                                 r"seeds_per_draw 2 needs"):
        prereg.Prereg(fresh={"seed": (20, 21, 22), "teacher.seed": (5, 6)},
                      seeds_per_draw=2, **kw)
    with pytest.raises(prereg.PreregError, match="unit_fields naming the draw"):
        prereg.Prereg(fresh={"seed": (20, 21), "teacher.seed": (5, 6)}, seeds_per_draw=1,
                      **{**kw, "unit_fields": ()})
    with pytest.raises(ValueError, match="seeds_per_draw must be >= 0"):
        import dataclasses
        dataclasses.replace(prereg.table_spec(p), seeds_per_draw=-1)
