"""kdjax.reproduce.stats: paired differences and the claim rule, against hand / scipy values."""
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


def test_claim_rule():
    up = stats.paired([0.9, 0.91, 0.92], [0.8, 0.8, 0.81])
    noisy = stats.paired([0.9, 0.7, 0.95], [0.8, 0.8, 0.8])
    down = stats.paired([0.7, 0.7, 0.71], [0.8, 0.8, 0.8])
    assert stats.claim_word(up) == stats.HELD
    assert stats.claim_word(noisy) == stats.SIGN_ONLY
    assert stats.claim_word(down) == stats.NOT_HELD
    assert stats.claim_status({"a": up, "b": up})[0] == "claim reproduced"
    assert stats.claim_status({"a": up, "b": noisy})[0] == "claim inconclusive"
    status, detail = stats.claim_status({"a": up, "b": down})
    assert status == "claim not reproduced" and "b: -" in detail
    assert stats.claim_status({"a": stats.paired([1.0], [0.0])})[0] == "claim untested"


def test_claim_kinds():
    flat = stats.paired([0.80, 0.81, 0.79], [0.80, 0.80, 0.80])
    worse = stats.paired([0.70, 0.70, 0.71], [0.80, 0.80, 0.80])
    better = stats.paired([0.90, 0.91, 0.92], [0.80, 0.80, 0.81])
    assert stats.claim_status({"a": flat}, "not_worse")[0] == "claim not contradicted"
    assert stats.claim_status({"a": worse}, "not_worse")[0] == "claim not reproduced"
    assert stats.claim_status({"a": flat}, "equal")[0] == "claim not contradicted"
    assert stats.claim_status({"a": better}, "equal")[0] == "claim not reproduced"
    with pytest.raises(ValueError, match="claim kind"):
        stats.claim_status({"a": flat}, "bigger")
