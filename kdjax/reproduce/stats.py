"""Paired comparisons over shared seeds: mean difference, 95% t-interval, n.

Strategies (or methods) of one trial share its split, teacher, round-0 student and seed, so the
right comparison is the per-seed difference d_s = a_s − b_s, not two separate mean ± std
columns. `paired(a, b)` returns the mean of d, its 95% Student-t interval
mean ± t_{0.975, n−1} · sd(d, ddof=1) / √n (the interval of scipy.stats.ttest_rel), and n.
`claim_status` turns such differences into the status word of a reproduction entry.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Mapping, Sequence

import numpy as np
from scipy import stats as sps


@dataclasses.dataclass(frozen=True)
class Paired:
    """a − b over n shared seeds: mean, sample std of the differences (ddof = 1), the 95%
    t-interval [lo, hi] (NaN for n < 2) and the two-sided paired-t p-value (NaN for n < 2 or
    identical differences)."""
    mean: float
    std: float
    lo: float
    hi: float
    n: int
    p: float

    @property
    def excludes_zero(self) -> bool:
        return self.n >= 2 and (self.lo > 0 or self.hi < 0)

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def paired(a: Sequence[float], b: Sequence[float], confidence: float = 0.95) -> Paired:
    """The paired difference a − b; a[i] and b[i] must come from the same seed."""
    x, y = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"paired: a and b need the same 1-D shape, got {x.shape} and {y.shape}")
    if x.size == 0:
        raise ValueError("paired: no values")
    d = x - y
    n = d.size
    mean = float(d.mean())
    if n < 2:
        return Paired(mean, 0.0, math.nan, math.nan, n, math.nan)
    sd = float(d.std(ddof=1))
    half = float(sps.t.ppf(0.5 + confidence / 2, n - 1)) * sd / math.sqrt(n)
    p = float(sps.ttest_rel(x, y).pvalue) if sd > 0 else math.nan
    return Paired(mean, sd, mean - half, mean + half, n, p)


def fmt_paired(d: Paired, scale: float = 100.0, unit: str = "pts", digits: int = 2) -> str:
    """'+0.42 [+0.28, +0.56] pts (n=8, paired)'; accuracies (fractions) print in points."""
    m = f"{d.mean * scale:+.{digits}f}"
    if d.n < 2:
        return f"{m} {unit} (n={d.n}, no interval)"
    return (f"{m} [{d.lo * scale:+.{digits}f}, {d.hi * scale:+.{digits}f}] {unit} "
            f"(n={d.n}, paired)")


def fmt_mean_std(values: Sequence[float], scale: float = 100.0, digits: int = 2) -> str:
    """'m ± s (n=k)' with the sample std (ddof = 1); 'm (n=1)' for one value."""
    v = np.asarray(values, np.float64) * scale
    if v.size < 2:
        return f"{v.mean():.{digits}f} (n={v.size})"
    return f"{v.mean():.{digits}f} ± {v.std(ddof=1):.{digits}f} (n={v.size})"


# The status of a claim "arm X beats arm Y" from the paired difference X − Y:
HELD = "held"                  # the 95% interval lies above 0
SIGN_ONLY = "sign only"        # mean > 0 but the interval includes 0 (n too small to tell)
NOT_HELD = "not held"          # mean <= 0
UNTESTED = "untested"          # fewer than 2 paired seeds: no interval


def claim_word(d: Paired) -> str:
    """One claimed difference 'X − Y > 0' judged by its paired 95% interval."""
    if d.n < 2:
        return UNTESTED
    if d.lo > 0:
        return HELD
    return SIGN_ONLY if d.mean > 0 else NOT_HELD


CLAIM_KINDS = ("greater", "not_worse", "equal")


def claim_status(diffs: Mapping[str, Paired], kind: str = "greater") -> tuple[str, str]:
    """(status, detail) of a paper claim about several paired differences X − Y.

    kind 'greater' (the paper says X outperforms Y, e.g. RAD − margin and RAD − uniform):
      'claim reproduced' when every 95% paired t-interval lies above 0; 'claim not reproduced'
      when any mean difference is <= 0; 'claim inconclusive' otherwise (every mean > 0, some
      interval includes 0).
    kind 'not_worse' (X "matches or improves on" Y): 'claim not reproduced' when any interval
      lies below 0, else 'claim not contradicted' (no significant shortfall; a small n cannot
      show a match).
    kind 'equal' (the change "does not lead to a significant change"): 'claim not reproduced'
      when any interval excludes 0, else 'claim not contradicted'.
    Every kind: 'claim untested' with fewer than 2 paired seeds.
    """
    if kind not in CLAIM_KINDS:
        raise ValueError(f"claim kind must be one of {CLAIM_KINDS}, got {kind!r}")
    if not diffs:
        return "claim untested", "no paired comparison"
    words = {k: claim_word(d) for k, d in diffs.items()}
    detail = "; ".join(f"{k}: {fmt_paired(d)}" + (f" ({words[k]})" if kind == "greater" else "")
                       for k, d in diffs.items())
    if any(w == UNTESTED for w in words.values()):
        return "claim untested", detail
    if kind == "not_worse":
        bad = any(d.hi < 0 for d in diffs.values())
        return ("claim not reproduced" if bad else "claim not contradicted"), detail
    if kind == "equal":
        bad = any(d.excludes_zero for d in diffs.values())
        return ("claim not reproduced" if bad else "claim not contradicted"), detail
    if any(w == NOT_HELD for w in words.values()):
        return "claim not reproduced", detail
    if all(w == HELD for w in words.values()):
        return "claim reproduced", detail
    return "claim inconclusive", detail
