"""Harness tables: paired differences against a declared baseline (spec.Baseline) and the paper's
row names (spec.paper_rows), checked by hand on the fake registry (tests/configs/repro_fake.py)."""
import csv
import io
import math
import os

import numpy as np
import pytest
from scipy import stats as sps

from kdjax.reproduce import aggregate, document, execute, report, sweep
from kdjax.reproduce.spec import Baseline, Claim, Metric, TableSpec
from tests.configs import repro_fake

T = repro_fake.TABLES["fake_paired"]
PAPERS = {"fake": {"t1": {"a": 49.5, "C-row": 61.0}}}


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    """The 9 points (a, b, c x seeds 0..2), swept once for this module."""
    base = tmp_path_factory.mktemp("paired")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("REPRO_FAKE_DIR", str(base))
        mp.delenv("REPRO_FAKE_INTERRUPT", raising=False)
        wd = str(base / "w")
        execute.run_sweep(T, sweep.expand(T, "cpu"), wd, log=lambda s: None)
    return wd, report.finished_records(wd, T.id, "cpu")


def test_paired_differences_by_hand(records):
    _, recs = records
    rows = aggregate.baseline_rows(T, recs)
    assert [(r["a − b"], r["metric"]) for r in rows] == [
        ("b − a", "acc"), ("c − a", "acc"), ("c − b", "acc"), ("c − b", "queries")]
    by = {(r["a − b"], r["metric"]): r for r in rows}
    # c − a per seed: 0.10 + 0.02·s² -> 10, 12, 18 points
    d = np.array([10.0, 12.0, 18.0])
    half = sps.t.ppf(0.975, 2) * d.std(ddof=1) / math.sqrt(3)
    ca = by[("c − a", "acc")]
    assert ca["mean"] == pytest.approx(40 / 3) and ca["n"] == 3 and ca["seeds"] == [0, 1, 2]
    assert (ca["lo"], ca["hi"]) == (pytest.approx(40 / 3 - half), pytest.approx(40 / 3 + half))
    assert half == pytest.approx(10.342, abs=1e-3)
    assert ca["paired difference"] == "+13.33 [+2.99, +23.68] pts (n=3, paired)"
    # b − a is 30 points on every seed: a zero-width interval
    assert by[("b − a", "acc")]["paired difference"] == "+30.00 [+30.00, +30.00] pts (n=3, paired)"
    # c − b: −20 + 2·s² points (−20, −18, −12); a metric not in points has no unit
    cb = by[("c − b", "acc")]
    assert cb["mean"] == pytest.approx(-50 / 3)
    assert by[("c − b", "queries")]["paired difference"] == "+0.00 [+0.00, +0.00] (n=3, paired)"


def test_paired_only_over_shared_seeds(records):
    _, recs = records
    fewer = [r for r in recs if not (r["params"]["variant"] == "a" and r["seed"] == 2)]
    (ca,) = [r for r in aggregate.baseline_rows(T, fewer) if r["a − b"] == "c − a"]
    assert ca["n"] == 2 and ca["seeds"] == [0, 1] and ca["mean"] == pytest.approx(11.0)
    one = [r for r in recs if r["seed"] == 0]
    (ca,) = [r for r in aggregate.baseline_rows(T, one) if r["a − b"] == "c − a"]
    assert ca["paired difference"] == "+10.00 pts (n=1, no interval)"


def test_paper_rows_alias_the_papers_row_names(records):
    _, recs = records
    rows = {r["variant"]: r for r in aggregate.metric_rows(T, recs, PAPERS)
            if r["metric"] == "acc"}
    assert rows["c"]["paper"] == 61.0      # 'c' is the paper's 'C-row'
    assert rows["a"]["paper"] == 49.5      # unmapped values keep their name
    assert rows["b"]["paper"] == "—"


def test_report_and_reproduction_md_show_paired_rows(records, tmp_path):
    wd, _ = records
    rep = report.write_table_report(T, wd, "cpu", PAPERS)
    md = open(os.path.join(wd, T.id, "cpu", "report.md")).read()
    assert "Paired differences over the seeds both arms ran" in md
    assert "| c − a | acc | +13.33 [+2.99, +23.68] pts (n=3, paired) |" in md
    assert len(rep["paired"]) == 4
    rows = list(csv.DictReader(io.StringIO(open(os.path.join(wd, T.id, "cpu",
                                                             "paired.csv")).read())))
    assert float(rows[1]["lo"]) == pytest.approx(40 / 3 - 10.342, abs=1e-3)
    text = document.write_reproduction_md({T.id: T}, wd, str(tmp_path / "R.md"), PAPERS)
    assert "| c − a | acc | +13.33 [+2.99, +23.68] pts (n=3, paired) |" in text
    assert "| c | acc | 64.33 ± 5.13 | 61 | 3 | 0,1,2 |" in text


def test_bad_baselines_fail_in_one_line():
    kw = dict(id="x", paper="p", title="t", config="tests/configs/repro_fake.py",
              grid={"variant": ("a", "b")}, seeds="grid:seed", metrics=(Metric("acc", "acc"),))
    with pytest.raises(ValueError, match="not a grid axis"):
        TableSpec(**kw, paired=(Baseline("method", "a"),))
    with pytest.raises(ValueError, match="'z' is not a value of grid axis"):
        TableSpec(**kw, paired=(Baseline("variant", "z"),))
    with pytest.raises(ValueError, match="paired metrics"):
        TableSpec(**kw, paired=(Baseline("variant", "a", metrics=("nope",)),))
    with pytest.raises(ValueError, match="need seeds='grid"):
        TableSpec(**{**kw, "seeds": "count:num_runs"}, paired=(Baseline("variant", "a"),))
    with pytest.raises(ValueError, match="paper_rows key"):
        TableSpec(**kw, paper_rows={"method": {}})


def test_alm_tables_show_the_papers_rows_and_paired_differences():
    """ALM's paper numbers are keyed by its row names ('TAKD', 'vanilla_kd_0.9'): the registry's
    paper_rows put them beside our variants; alm − takd / alm − dgkd are paired over seeds."""
    from experiments.tables import TABLES
    t = TABLES["alm_table1"]
    acc = {("takd", 0): 0.60, ("takd", 1): 0.62, ("dgkd", 0): 0.61, ("dgkd", 1): 0.65,
           ("alm", 0): 0.63, ("alm", 1): 0.66}
    recs = [{"params": {"alm.variant": v, "seed": s}, "seed": s,
             "result": {"test_accuracy": a, "teacher": {"test_accuracy": 0.7}}}
            for (v, s), a in acc.items()]
    from papers.paper_numbers import PAPERS
    rows = {r["variant"]: r for r in aggregate.metric_rows(t, recs, PAPERS)
            if r["metric"] == "student"}
    assert {v: rows[v]["paper"] for v in rows} == {"takd": 67.29, "dgkd": 68.61, "alm": 67.8}
    pairs = {r["a − b"]: r for r in aggregate.baseline_rows(t, recs)}
    assert set(pairs) == {"alm − takd", "alm − dgkd"}
    assert pairs["alm − takd"]["mean"] == pytest.approx(3.5)      # (3 + 4) / 2 points
    assert pairs["alm − dgkd"]["mean"] == pytest.approx(1.5)      # (2 + 1) / 2
    t2 = TABLES["alm_table2"]
    (row,) = aggregate.metric_rows(t2, [{"params": {"alm.variant": "kd",
                                                    "model.name": "wrn_16_1", "seed": 0},
                                         "seed": 0, "result": {"test_accuracy": 0.5}}], PAPERS)
    assert row["paper"] == 66.6                                     # 'vanilla_kd_0.9'


def test_table_claim_judged_on_paired_seeds(records):
    """spec.claim: arm − each baseline over the shared seeds, judged by stats.claim_status; the
    status line then says whether the paper's claim held (b − a = +30 on every seed, c − a =
    +13.3 [+3.0, +23.7], c − b = −16.7 [−27.0, −6.3] points)."""
    import dataclasses
    wd, recs = records
    held = dataclasses.replace(T, claim=Claim("c beats a", "variant", "c", ("a",)))
    status, detail = aggregate.table_claim(held, recs)
    assert status == "claim reproduced (n=3)"
    assert "claim: c beats a" in detail and "95% interval [+2.99, +23.68]" in detail
    assert "Holm, m = 1" in detail
    both = dataclasses.replace(T, claim=Claim("c beats a and b", "variant", "c", ("a", "b")))
    status, detail = aggregate.table_claim(both, recs)   # c − b: p = 0.0198 -> 0.0396 (Holm)
    assert status == "claim not reproduced (n=3)" and "Holm, m = 2" in detail
    worse = dataclasses.replace(T, claim=Claim("c matches b", "variant", "c", ("b",),
                                               kind="not_worse"))
    assert aggregate.table_claim(worse, recs)[0] == "claim not reproduced (n=3)"
    assert aggregate.table_claim(T, recs) is None
    status, _ = report.table_status(both, wd)
    assert status == "reduced-scale run here; claim not reproduced (n=3)"
    assert any("Claim status: **claim not reproduced (n=3)**" in line
               for line in report.paired_lines(recs, both))
    with pytest.raises(ValueError, match="'d' is not a value of grid axis"):
        dataclasses.replace(T, claim=Claim("d beats a", "variant", "d", ("a",)))


def test_claim_summary_of_a_variants_only_runner():
    """A runner that judges the paper's claim per variant only ('variant_claims', DiSK's Table 1
    variants): the table's status is the worst variant's."""
    ok = {"status": "claim reproduced", "detail": "a", "text": "X beats Y", "kind": "greater"}
    bad = {**ok, "status": "claim not reproduced", "detail": "b"}
    recs = [{"params": {}, "result": {"variant_claims": {"v1/last": ok, "v2/last": bad}}}]
    status, detail = aggregate.claim_summary(recs)
    assert status == "claim not reproduced"
    assert "[v1/last] claim reproduced: a" in detail and "[v2/last] claim not reproduced" in detail
    assert aggregate.claim_summary([{"params": {}, "result": {}}]) is None


def test_two_level_rows_and_claim_over_draws():
    """spec.draw: a run is (teacher draw, seed); the reported difference is the t-interval over
    the per-draw means (n = draws), the runs pooled sit beside it, and the claim is judged on
    the draws (checked against scipy on the same numbers)."""
    import dataclasses
    shifts = {0: 0.10, 1: -0.06, 2: 0.08, 3: -0.04}          # per-teacher effect of c over a
    recs = []
    for t, shift in shifts.items():
        for s in range(20):
            base = 0.4 + 0.01 * s
            for v, acc in (("a", base), ("c", base + shift + 0.001 * (s % 3))):
                recs.append({"params": {"variant": v, "teacher.seed": t, "seed": s},
                             "seed": s, "result": {"acc": acc}})
    spec = TableSpec(id="fake_draws", paper="fake", title="t", config="c.py",
                     grid={"variant": ("a", "c"), "teacher.seed": (0, 1, 2, 3)},
                     seeds="grid:seed", metrics=(Metric("acc", "acc"),),
                     paired=(Baseline("variant", "a"),), draw="teacher.seed",
                     claim=Claim("c beats a", "variant", "c", ("a",)))
    (row,) = aggregate.baseline_rows(spec, recs)
    diff = {(r["params"]["teacher.seed"], r["seed"]): r["result"]["acc"] for r in recs
            if r["params"]["variant"] == "c"}
    ref = {(r["params"]["teacher.seed"], r["seed"]): r["result"]["acc"] for r in recs
           if r["params"]["variant"] == "a"}
    d = np.array([[diff[t, s] - ref[t, s] for s in range(20)] for t in shifts])
    by_draw = sps.ttest_1samp(d.mean(1), 0.0).confidence_interval(0.95)
    pooled = sps.ttest_1samp(d.ravel(), 0.0).confidence_interval(0.95)
    assert row["n"] == 4 and row["n runs"] == 80
    assert (row["lo"], row["hi"]) == (pytest.approx(100 * by_draw.low),
                                      pytest.approx(100 * by_draw.high))
    assert (row["runs pooled"].lo, row["runs pooled"].hi) == (pytest.approx(pooled.low),
                                                              pytest.approx(pooled.high))
    assert pooled.low > 0 > by_draw.low                    # only the pooled runs exclude 0
    assert "(n=4 draws, paired over (data, teacher) draws)" in row["paired difference"]
    assert "(n=80 runs)" in row["paired difference"]
    status, detail = aggregate.table_claim(spec, recs)
    assert status == "claim inconclusive (n=4 draws)"
    assert "judged on paired (data, teacher) draws (teacher.seed" in detail
    one = dataclasses.replace(spec, draw="")       # the old rule would pool the 80 runs ...
    pooled_rows = aggregate.baseline_rows(one, [
        {**r, "seed": (r["params"]["teacher.seed"], r["seed"]),
         "params": {**{k: v for k, v in r["params"].items() if k != "teacher.seed"},
                    "seed": (r["params"]["teacher.seed"], r["seed"])}} for r in recs])
    assert pooled_rows[0]["n"] == 80 and pooled_rows[0]["lo"] > 0   # ... and call it shown
    assert any("interval over the draws (teacher.seed; n = draws)" in line
               for line in report.paired_lines(recs, spec))
    with pytest.raises(ValueError, match="draw 'x' is not a grid axis"):
        dataclasses.replace(spec, draw="x")


def test_seeds_are_nested_in_draws():
    """A seed shared by every draw (same initialisation and data order under each teacher)
    shifts every draw's difference alike, so the interval over draws would hide its variance:
    draw i runs seeds i·N .. i·N + N − 1, the draw axis outermost; a pre-registered table's
    declared seeds are used as declared."""
    import dataclasses
    spec = TableSpec(id="fake_nested", paper="fake", title="t", config="c.py",
                     grid={"teacher.seed": (7, 8, 9), "variant": ("a", "c")},
                     seeds="grid:seed", default_seeds={"cpu": 2, "full": 2},
                     metrics=(Metric("acc", "acc"),), paired=(Baseline("variant", "a"),),
                     draw="teacher.seed")
    points = sweep.expand(spec, "cpu")
    seeds = {}
    for p in points:
        d = p.param_dict
        seeds.setdefault(d["teacher.seed"], {}).setdefault(d["variant"], []).append(d["seed"])
    assert seeds == {7: {"a": [0, 1], "c": [0, 1]}, 8: {"a": [2, 3], "c": [2, 3]},
                     9: {"a": [4, 5], "c": [4, 5]}}
    assert len({p.name for p in points}) == 12
    assert [p.seed for p in sweep.expand(spec, "cpu", seeds=3)][:6] == [0, 1, 2, 0, 1, 2]
    declared = dataclasses.replace(spec, seed_values=(100,))
    assert {p.seed for p in sweep.expand(declared, "cpu")} == {100}
    dealt = dataclasses.replace(spec, seed_values=tuple(range(200, 206)), seeds_per_draw=2)
    assert {(p.param_dict["teacher.seed"], p.seed) for p in sweep.expand(dealt, "cpu")} == {
        (7, 200), (7, 201), (8, 202), (8, 203), (9, 204), (9, 205)}
    with pytest.raises(ValueError, match="5 seed_values for 3 draws x seeds_per_draw 2"):
        sweep.expand(dataclasses.replace(dealt, seed_values=tuple(range(5))), "cpu")
    with pytest.raises(ValueError, match="seeds_per_draw needs a draw"):
        dataclasses.replace(dealt, draw="")
    crossed = dataclasses.replace(spec, draw="")
    assert {p.seed for p in sweep.expand(crossed, "cpu")} == {0, 1}


def test_a_report_names_seeds_crossed_with_draws():
    """Seeds run under several draws (a pre-registered table's declared seed) are named in the
    report; nested seeds are not."""
    spec = TableSpec(id="fake_crossed", paper="fake", title="t", config="c.py",
                     grid={"teacher.seed": (0, 1, 2), "variant": ("a", "c")},
                     seeds="grid:seed", metrics=(Metric("acc", "acc"),),
                     paired=(Baseline("variant", "a"),), draw="teacher.seed")

    def recs(seed_of):
        return [{"params": {"teacher.seed": t, "variant": v, "seed": seed_of(t)},
                 "seed": seed_of(t), "result": {"acc": 0.5 + 0.01 * t + (v == "c") * 0.02}}
                for t in range(3) for v in ("a", "c")]
    crossed = recs(lambda t: 100)
    assert aggregate.crossed_seeds(spec, crossed) == [100]
    assert any(line.startswith("**Seeds crossed with draws**: seed(s) 100 ")
               for line in report.paired_lines(crossed, spec))
    nested = recs(lambda t: t)
    assert aggregate.crossed_seeds(spec, nested) == []
    assert not any("crossed" in line for line in report.paired_lines(nested, spec))
