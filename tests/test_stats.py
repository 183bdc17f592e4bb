"""kdjax.reproduce.stats: paired differences, Holm and the verdict rule, against hand-computed
values (Student t with 2 degrees of freedom has a closed form: F(t) = 1/2 + t / (2·sqrt(2 + t²)),
so a two-sided p = 1 − |t| / sqrt(2 + t²)) and scipy as an independent reference."""
import math

import numpy as np
import pytest
from scipy import stats as sps

from kdjax.reproduce import stats


def test_paired_matches_hand_computation_and_ttest_rel():
    a = np.array([0.80, 0.82, 0.79, 0.85])
    b = np.array([0.78, 0.81, 0.80, 0.82])
    d = stats.paired(a, b)
    diffs = a - b                                 # 0.02, 0.01, -0.01, 0.03
    assert d.mean == pytest.approx(0.0125)
    sd = math.sqrt(sum((x - 0.0125) ** 2 for x in diffs) / 3)   # ddof = 1 by hand
    assert d.std == pytest.approx(sd)
    half = 3.182446305284263 * sd / 2             # t_{0.975, 3} from tables, sqrt(4) = 2
    assert (d.lo, d.hi) == pytest.approx((0.0125 - half, 0.0125 + half))
    assert d.n == 4
    assert d.p == pytest.approx(sps.ttest_rel(a, b).pvalue)
    ci = sps.ttest_rel(a, b).confidence_interval(0.95)
    assert (d.lo, d.hi) == pytest.approx((ci.low, ci.high))


def test_format_and_single_seed():
    d = stats.paired([0.5, 0.6, 0.7], [0.5, 0.55, 0.6])
    text = stats.fmt_paired(d)
    assert text.startswith("+5.00 [") and text.endswith("] pts (n=3, paired)")
    one = stats.paired([0.5], [0.4])
    assert math.isnan(one.lo) and stats.fmt_paired(one) == "+10.00 pts (n=1, no interval)"
    assert stats.fmt_mean_std([0.1, 0.3]) == "20.00 ± 14.14 (n=2)"
    with pytest.raises(ValueError, match="same 1-D shape"):
        stats.paired([1, 2], [1])


def _p_df2(t):
    """Two-sided p of Student t with df = 2, in closed form."""
    return 1 - abs(t) / math.sqrt(2 + t * t)


def _q_df2(u):
    """The u-quantile of Student t with df = 2, in closed form (inverse of F above)."""
    v = 2 * u - 1
    return math.copysign(math.sqrt(2 * v * v / (1 - v * v)), v)


def _three(mean, t):
    """Three paired differences with this mean and t statistic (sd = 1 before scaling):
    mean − s, mean, mean + s with s = mean·√3 / t."""
    s = abs(mean) * math.sqrt(3) / abs(t)
    return stats.paired([mean - s, mean, mean + s], [0.0, 0.0, 0.0])


def test_t_pvalue_by_hand_and_against_scipy():
    d = stats.paired([0.1, 0.2, 0.3], [0.0, 0.0, 0.0])      # mean 0.2, sd 0.1, t = 2·√3
    assert stats.t_pvalue(d) == pytest.approx(_p_df2(2 * math.sqrt(3)))
    assert stats.t_pvalue(d) == pytest.approx(1 - 2 * math.sqrt(3) / math.sqrt(14))
    assert stats.t_pvalue(d, 0.1) == pytest.approx(1 - math.sqrt(3) / math.sqrt(5))  # t = √3
    rng = np.random.default_rng(0)
    a, b = rng.normal(0.5, 0.1, 7), rng.normal(0.45, 0.1, 7)
    d = stats.paired(a, b)
    assert stats.t_pvalue(d) == pytest.approx(sps.ttest_rel(a, b).pvalue)
    assert stats.t_pvalue(d, -0.02) == pytest.approx(sps.ttest_1samp(a - b, -0.02).pvalue)
    flat = stats.paired([0.75, 0.75, 0.75], [0.5, 0.5, 0.5])    # no spread
    assert stats.t_pvalue(flat) == 0.0 and stats.t_pvalue(flat, 0.25) == 1.0


def test_holm_by_hand():
    # sorted 0.005·4 = 0.02, 0.01·3 = 0.03, 0.03·2 = 0.06, 0.04·1 = 0.04 -> running max 0.06
    assert stats.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert stats.holm([0.5, 0.5]) == [1.0, 1.0]              # capped at 1
    assert stats.holm([0.02]) == [0.02]                      # m = 1: unchanged
    # the level of the smallest p is Bonferroni's 1 − α/m; an uncorrected one stays at 1 − α
    levels = stats.holm_levels([0.01, 0.04, 0.03, 0.005])
    assert levels[3] == pytest.approx(1 - 0.05 / 4)
    assert levels[0] == pytest.approx(1 - 0.05 / 3)
    assert levels[2] == pytest.approx(1 - 0.05 / 2)
    assert levels[1] == pytest.approx(1 - 0.05 * 0.04 / 0.06)   # c = p̃ / p = 1.5


def test_holm_intervals_match_holm_decisions():
    """The interval at each comparison's Holm level excludes the boundary exactly when its
    Holm-adjusted p is below α; its half-width is t_{1 − α/(2c)} · sd / √n (closed form)."""
    diffs = {"x": _three(0.03, 5.643), "y": _three(0.02, 4.849), "z": _three(0.05, 20.0)}
    for j in stats.judge(diffs):
        c = (1 - j.level) and 0.05 / (1 - j.level)
        half = _q_df2(1 - 0.05 / (2 * c)) * j.diff.std / math.sqrt(3)
        assert (j.lo, j.hi) == pytest.approx((j.diff.mean - half, j.diff.mean + half))
        assert (j.lo > 0) == (j.p_holm < 0.05)
    rng = np.random.default_rng(1)
    for _ in range(20):
        fam = {str(i): stats.paired(rng.normal(0.01, 0.02, 5), np.zeros(5)) for i in range(4)}
        for j in stats.judge(fam):
            assert (j.lo > 0 or j.hi < 0) == (j.p_holm < 0.05)


def test_verdict_rule_hand_cases():
    # the example: −0.05 [−0.24, +0.15] is inconclusive, not "not reproduced"
    d = stats.paired([0.1, -0.2, -0.05], [0.0, 0.0, 0.0])   # mean −0.05, sd 0.15
    assert stats.claim_status({"a": d})[0] == stats.INCONCLUSIVE
    # n = 2 decides nothing, however large the effect
    two = stats.paired([0.9, 0.95], [0.1, 0.1])
    status, detail = stats.claim_status({"a": two, "b": d})
    assert status == stats.UNTESTED and "fewer than 3" in detail
    assert stats.claim_status({})[0] == stats.UNTESTED
    # a tight negative difference excludes the claimed effect
    down = stats.paired([-0.21, -0.2, -0.19], [0.0, 0.0, 0.0])
    assert stats.claim_status({"a": down})[0] == stats.NOT_REPRODUCED
    up = stats.paired([0.19, 0.2, 0.21], [0.0, 0.0, 0.0])
    assert stats.claim_status({"a": up})[0] == stats.REPRODUCED


def test_holm_turns_two_marginal_wins_inconclusive():
    """p = 0.03 and 0.04 (t = 5.643 and 4.849 with df = 2): each 95% interval lies above 0,
    but Holm (m = 2) adjusts both to 0.06 > 0.05; with p = 0.01 beside the 0.04 both hold."""
    x, y = _three(0.03, 5.643), _three(0.02, 4.849)
    assert stats.t_pvalue(x) == pytest.approx(0.03, abs=2e-4)
    assert stats.t_pvalue(y) == pytest.approx(0.04, abs=2e-4)
    assert x.lo > 0 and y.lo > 0                             # uncorrected: both "held"
    status, detail = stats.claim_status({"x": x, "y": y})
    assert status == stats.INCONCLUSIVE and detail.startswith("Holm, m = 2, α = 0.05;")
    assert "Holm p = 0.06" in detail
    z = _three(0.03, _q_df2(1 - 0.01 / 2))                  # p = 0.01 -> 0.02; 0.04 stays
    assert stats.claim_status({"z": z, "y": y})[0] == stats.REPRODUCED


def test_not_worse_and_equal_boundaries():
    slightly_worse = stats.paired([-0.011, -0.01, -0.009], [0.0, 0.0, 0.0])
    flat = stats.paired([-0.01, 0.0, 0.01], [0.0, 0.0, 0.0])
    # not_worse, margin δ: above −δ supports, below −δ contradicts, spanning −δ inconclusive
    assert stats.claim_status({"a": slightly_worse}, "not_worse", 0.02)[0] == stats.REPRODUCED
    assert stats.claim_status({"a": slightly_worse}, "not_worse")[0] == stats.NOT_REPRODUCED
    assert stats.claim_status({"a": flat}, "not_worse")[0] == stats.INCONCLUSIVE
    # equal: δ = 0 can only be contradicted; inside (−δ, δ) supports; outside contradicts
    changed = stats.paired([0.1, 0.1, 0.11], [0.0, 0.0, 0.0])
    assert stats.claim_status({"a": changed}, "equal")[0] == stats.NOT_REPRODUCED
    assert stats.claim_status({"a": flat}, "equal")[0] == stats.INCONCLUSIVE
    assert stats.claim_status({"a": slightly_worse}, "equal", 0.05)[0] == stats.REPRODUCED
    assert stats.claim_status({"a": changed}, "equal", 0.05)[0] == stats.NOT_REPRODUCED
    assert stats.claim_status({"a": flat}, "equal", 0.005)[0] == stats.INCONCLUSIVE
    with pytest.raises(ValueError, match="claim kind"):
        stats.claim_status({"a": flat}, "bigger")
    with pytest.raises(ValueError, match="margin"):
        stats.claim_status({"a": flat}, "not_worse", -0.1)


def _draws(seed=0, draws=(5, 5, 5, 5), teacher_sd=0.1, run_sd=0.02, effect=0.03):
    """Paired runs a, b grouped by draw: a draw-level shift (teacher-to-teacher variance) plus
    run-level noise; returns a, b and each run's draw label."""
    rng = np.random.default_rng(seed)
    a, b, g = [], [], []
    for j, k in enumerate(draws):
        shift = rng.normal(effect, teacher_sd)
        base = rng.uniform(0.3, 0.7, k)
        b += base.tolist()
        a += (base + shift + rng.normal(0, run_sd, k)).tolist()
        g += [f"draw{j}"] * k
    return np.array(a), np.array(b), g


def test_two_level_against_scipy():
    """Level 2 = ttest_1samp over the per-draw mean differences (computed here with numpy by
    hand, unequal draw sizes weigh each draw once); level 1 = ttest_rel over all runs."""
    a, b, g = _draws(draws=(3, 5, 4, 6, 2))
    t = stats.two_level(a, b, g)
    d, labels = a - b, np.array(g)
    per_draw = np.array([d[labels == k].mean() for k in dict.fromkeys(g)])
    ref = sps.ttest_1samp(per_draw, 0.0)
    ci = ref.confidence_interval(0.95)
    assert t.draws.n == 5 and t.runs.n == 20
    assert t.draws.mean == pytest.approx(per_draw.mean())
    assert t.draws.mean != pytest.approx(d.mean())      # not the run-weighted mean
    assert t.draws.std == pytest.approx(per_draw.std(ddof=1))
    assert (t.draws.lo, t.draws.hi) == pytest.approx((ci.low, ci.high))
    assert t.draws.p == pytest.approx(ref.pvalue)
    pooled = sps.ttest_rel(a, b)
    assert (t.runs.lo, t.runs.hi) == pytest.approx(tuple(pooled.confidence_interval(0.95)))
    assert t.runs.mean == pytest.approx(d.mean()) and t.runs.p == pytest.approx(pooled.pvalue)
    assert stats.TwoLevel.from_dict(t.as_dict()) == t


def test_two_level_format_and_bad_input():
    t = stats.two_level([1.0, 1.0, 0.0, 1.0], [0.0, 1.0, 0.0, 0.0], [0, 0, 1, 1])
    assert t.draws.mean == pytest.approx(0.5) and t.draws.n == 2 and t.runs.n == 4
    text = stats.fmt_two_level(t)
    assert text.startswith("+50.00 [") and "(n=2 draws, paired over (data, teacher) draws)" in text
    assert "runs pooled (within-teacher): +50.00 [" in text and "(n=4 runs)" in text
    with pytest.raises(ValueError, match="3 draw labels for 4 paired values"):
        stats.two_level([1, 2, 3, 4], [1, 2, 3, 4], [0, 0, 1])


def test_verdict_uses_the_draw_level_interval():
    """Large teacher-to-teacher variance: the runs pooled exclude 0, the draws do not; the
    verdict (and its n) follows the draws. Two draws of many runs each: untested."""
    shifts = np.array([0.10, -0.06, 0.08, -0.04])          # per-draw effects, mean +0.02
    wiggle = 0.005 * np.sin(np.arange(20))                 # run-level noise within a draw
    b = np.tile(np.linspace(0.3, 0.7, 20), 4)
    a = b + np.repeat(shifts, 20) + np.tile(wiggle, 4)
    g = np.repeat(np.arange(4), 20).tolist()
    t = stats.two_level(a, b, g)
    assert t.runs.excludes_zero and t.runs.lo > 0
    assert not t.draws.excludes_zero
    assert stats.claim_status({"x − y": t.runs})[0] == stats.REPRODUCED
    status, detail = stats.claim_status({"x − y": t})
    assert status == stats.INCONCLUSIVE and "n=4)" in detail
    (j,) = stats.judge({"x − y": t})
    assert j.diff == t.draws
    assert stats.reported(t) is t.draws and stats.reported(t.runs) is t.runs
    few = stats.two_level(a[:40], b[:40], g[:40])          # 2 draws, 40 runs
    assert few.draws.n == 2 and few.runs.n == 40
    assert stats.claim_status({"x − y": few})[0] == stats.UNTESTED


def test_verdict_of_a_subset_of_a_larger_family():
    """A claim judged inside a larger Holm family: its readings come from the family's levels
    (m = all comparisons), so a marginal win is 'reproduced' alone (m = 1) and 'inconclusive'
    as one of 4; a strong win stays 'reproduced'."""
    marginal = stats.paired([0.02, 0.01, 0.03, 0.00, 0.02], [0.0] * 5)   # p = 0.035
    strong = stats.paired([0.05, 0.07, 0.06, 0.08, 0.04], [0.0] * 5)    # p = 0.001
    weak = stats.paired([0.02, -0.01, 0.03, 0.00, 0.01], [0.0] * 5)     # spans 0
    assert 0.0125 < marginal.p < 0.05 and 4 * strong.p < 0.05
    assert stats.claim_status({"m": marginal})[0] == stats.REPRODUCED
    family = stats.judge({"m": marginal, "s": strong, "x": weak, "y": weak})
    assert stats.verdict(family[:1]) == stats.INCONCLUSIVE
    assert stats.verdict(family[1:2]) == stats.REPRODUCED
    assert stats.verdict(family) == stats.INCONCLUSIVE
    assert stats.verdict([]) == stats.UNTESTED
