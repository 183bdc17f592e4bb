"""ORACLE_MARGIN's picks, the rad@m= variant, and the paired report of the compare runner."""
import ml_collections
import numpy as np
import pytest
from scipy import stats as sps

from kdjax.methods.rad import compare, paired, strategies


def _probs(margins):
    """Two-class softmax rows whose top-1 − top-2 margin is `margins`."""
    m = np.asarray(margins, np.float64)
    return np.stack([(1 + m) / 2, (1 - m) / 2], 1).astype(np.float32)


def test_oracle_margin_picks_lowest_margin_teacher_correct_points():
    margins = [0.05, 0.10, 0.20, 0.30, 0.40, 0.50, 0.60, 0.70]
    correct = np.array([False, True, False, True, True, False, True, True])
    avail = np.array([True, True, True, True, False, True, True, True])
    pool = strategies.Pool(probs=_probs(margins), available=avail, teacher_correct=correct)
    sel = strategies.select("oracle_margin", None, pool, 3)
    # teacher-correct and available: 1, 3, 6, 7 -> the three lowest margins are 1, 3, 6
    assert list(sel.indices) == [1, 3, 6]
    assert correct[sel.indices].all() and sel.info["teacher_wrong_filled"] == 0
    # fewer correct points than b: the rest are the lowest-margin teacher-wrong points
    sel = strategies.select("oracle_margin", None, pool, 6)
    assert list(sel.indices[:4]) == [1, 3, 6, 7] and list(sel.indices[4:]) == [0, 2]
    with pytest.raises(ValueError, match="teacher_correct"):
        strategies.select("oracle_margin", None, strategies.Pool(probs=_probs(margins)), 2)
    assert "oracle_margin" in strategies.ORACLES


def test_m_variant_parses():
    assert compare.parse_strategy("rad@m=oracle") == ("rad", {"m_estimate": "oracle"})
    assert compare.parse_strategy("rad@w=0.3") == ("rad", {"w": 0.3})
    with pytest.raises(ValueError, match="RAD strategies"):
        compare.parse_strategy("margin@m=oracle")
    with pytest.raises(ValueError, match="choose from"):
        compare.parse_strategy("rad@m=guess")


def _trial(accs: dict) -> dict:
    return {s: {"records": [{"test_accuracy": a} for a in rounds]} for s, rounds in accs.items()}


def test_compare_report_prints_paired_intervals():
    rad = [[0.70, 0.75, 0.78], [0.72, 0.76, 0.80], [0.69, 0.74, 0.77]]
    margin = [[0.70, 0.74, 0.76], [0.72, 0.75, 0.79], [0.69, 0.74, 0.75]]
    per_trial = [_trial({"rad": r, "margin": m}) for r, m in zip(rad, margin)]
    c = ml_collections.ConfigDict({"active": {"strategies": ("rad", "margin")}})
    c.active.claim = ml_collections.ConfigDict({"text": "RAD beats MARGIN", "kind": "greater",
                                                "pairs": (("rad", "margin"),), "on": "all"})
    rows = paired.paired_rows(per_trial, paired.comparisons(c), 2)
    assert [r["round"] for r in rows] == [1, 2, "all"]
    last = [r for r in rows if r["round"] == 2][0]["diff"]
    a, b = np.array([x[2] for x in rad]), np.array([x[2] for x in margin])
    ci = sps.ttest_rel(a, b).confidence_interval(0.95)
    assert (last["lo"], last["hi"], last["n"]) == pytest.approx((ci.low, ci.high, 3))
    text = paired.format_paired({"paired_rows": rows,
                                 "claim": paired.judge_claim(c, per_trial)})
    assert "| rad − margin | +0.67 [" in text and "pts (n=3, paired)" in text
    all_rounds = np.mean([np.mean(r[1:]) - np.mean(m[1:]) for r, m in zip(rad, margin)])
    assert f"{100 * all_rounds:+.2f} [" in text.splitlines()[-2]
    assert "paper's claim: RAD beats MARGIN — judged on all rounds (greater): claim" in text


def test_comparisons_default_and_unknown():
    c = ml_collections.ConfigDict({"active": {"strategies": ("rad", "margin", "uniform")}})
    assert paired.comparisons(c) == [("rad", "margin"), ("rad", "uniform")]
    c.active.pairs = (("rad", "entropy"),)
    with pytest.raises(ValueError, match="entropy"):
        paired.comparisons(c)


def test_report_claim_summary_is_one_holm_family_over_points():
    """Points whose claims carry their differences are judged together: every point's
    comparisons form one Holm family (m = 2 here); n = 2 trials leave the claim untested."""
    from kdjax.reproduce import aggregate, stats
    c = ml_collections.ConfigDict({"active": {"strategies": ("rad", "margin")}})
    c.active.claim = ml_collections.ConfigDict({"text": "RAD beats MARGIN", "kind": "greater",
                                                "pairs": (("rad", "margin"),), "on": "all"})
    gains = {200: (0.10, 0.11, 0.12), 500: (0.05, 0.06, 0.07)}   # all-rounds rad − margin
    recs = []
    for a, g in gains.items():
        per_trial = [_trial({"rad": [0.7, 0.7 + x], "margin": [0.7, 0.7]}) for x in g]
        recs.append({"params": {"active.num_labeled": a},
                     "result": {"claim": paired.judge_claim(c, per_trial)}})
    status, detail = aggregate.claim_summary(recs)
    assert status == "claim reproduced (n=3)"
    assert "over all 2 points; Holm, m = 2" in detail and "[active.num_labeled=500]" not in detail
    assert "[num_labeled=500] rad − margin: +6.00 pts" in detail
    # by hand: both t = 0.11·√3/0.01 and 0.06·√3/0.01 -> p < 0.025: each level 1 − 0.05/c
    ps = [stats.t_pvalue(stats.Paired(**r["result"]["claim"]["diffs"]["rad − margin"]))
          for r in recs]
    assert max(ps) < 0.025


def test_report_claim_summary_of_old_records_is_the_worst_point_with_n():
    """Records judged before claims carried their differences: the worst point's status, and
    the detail says the correction stayed within each point."""
    from kdjax.reproduce import aggregate
    per_trial = [_trial({"rad": [0.7, 0.8, 0.8], "margin": [0.7, 0.7, 0.7]}),
                 _trial({"rad": [0.7, 0.81, 0.8], "margin": [0.7, 0.7, 0.72]})]
    c = ml_collections.ConfigDict({"active": {"strategies": ("rad", "margin")}})
    c.active.claim = ml_collections.ConfigDict({"text": "RAD beats MARGIN", "kind": "greater",
                                                "pairs": (("rad", "margin"),), "on": "all"})
    claim = {k: v for k, v in paired.judge_claim(c, per_trial).items() if k != "diffs"}
    good = {"paired_rows": paired.paired_rows(per_trial, paired.comparisons(c), 2),
            "claim": claim}
    bad = {**good, "claim": {**claim, "status": "claim not reproduced"}}
    recs = [{"params": {"active.num_labeled": a}, "result": res}
            for a, res in ((200, good), (500, bad))]
    status, detail = aggregate.claim_summary(recs)
    assert status == "claim not reproduced (n=2)"
    assert "[num_labeled=200] claim untested" in detail
    assert "[num_labeled=500] claim not reproduced" in detail
    assert "not across the 2 points" in detail
    rows = aggregate.paired_rows(recs)
    assert rows[0]["a − b"] == "rad − margin" and "(n=2, paired)" in rows[0]["all rounds"]
