"""Paired comparisons over shared seeds: mean difference, 95% t-interval, n.

Strategies (or methods) of one trial share its split, teacher, round-0 student and seed, so the
right comparison is the per-seed difference d_s = a_s − b_s, not two separate mean ± std
columns. `paired(a, b)` returns the mean of d, its 95% Student-t interval
mean ± t_{0.975, n−1} · sd(d, ddof=1) / √n (the interval of scipy.stats.ttest_rel), and n.
`claim_status` turns a claim's differences into the status word of a reproduction entry, with a
Holm correction across them (`holm`, `holm_intervals`).

Two levels (issue 33): where a claim is about a method rather than one teacher, the unit of
analysis is the (data, teacher) draw. `two_level(a, b, draws)` averages each draw's paired
differences over its student initialisations, d̄_j = mean_{i in draw j} (a_i − b_i), and gives
the t-interval over the J draws (n = J: `TwoLevel.draws`, the reported interval and the one a
verdict uses) beside the interval of all runs pooled (n = runs: `TwoLevel.runs`, the
within-teacher interval, which leaves out the teacher-to-teacher variance).
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


@dataclasses.dataclass(frozen=True)
class TwoLevel:
    """a − b at two levels: `draws` = the t-interval over the per-draw mean differences (n =
    number of (data, teacher) draws; what is reported and judged), `runs` = every run pooled
    (n = number of runs; the within-teacher interval)."""
    draws: Paired
    runs: Paired

    def as_dict(self) -> dict:
        return {"draws": self.draws.as_dict(), "runs": self.runs.as_dict()}

    @classmethod
    def from_dict(cls, d: Mapping) -> "TwoLevel":
        return cls(Paired(**d["draws"]), Paired(**d["runs"]))


def two_level(a: Sequence[float], b: Sequence[float], draws: Sequence,
              confidence: float = 0.95) -> TwoLevel:
    """The paired difference a − b over (data, teacher) draws and over runs; a[i], b[i] come
    from the same run (same draw, same student initialisation) and draws[i] names its draw.

    Level 2 (reported): d̄_j = mean of a_i − b_i over draw j's runs (each draw weighs the same,
    however many runs it has), t-interval over the J draws. Level 1: `paired(a, b)` over all
    runs pooled."""
    x, y = np.asarray(a, np.float64), np.asarray(b, np.float64)
    g = list(draws)
    if len(g) != x.size:
        raise ValueError(f"two_level: {len(g)} draw labels for {x.size} paired values")
    runs = paired(x, y, confidence)
    labels = list(dict.fromkeys(g))
    index = {k: i for i, k in enumerate(labels)}
    ids = np.array([index[k] for k in g], np.int64)
    count = np.bincount(ids, minlength=len(labels))
    mean_a = np.bincount(ids, x, len(labels)) / count
    mean_b = np.bincount(ids, y, len(labels)) / count
    return TwoLevel(paired(mean_a, mean_b, confidence), runs)


def reported(d: "Paired | TwoLevel") -> Paired:
    """The interval a verdict uses: the draw level of a TwoLevel, else the Paired itself."""
    return d.draws if isinstance(d, TwoLevel) else d


def fmt_two_level(d: TwoLevel, scale: float = 100.0, unit: str = "pts", digits: int = 2) -> str:
    """'+5.00 [+1.20, +8.80] pts (n=10 draws, paired over (data, teacher) draws); runs pooled
    (within-teacher): +5.00 [+2.10, +7.90] pts (n=100 runs)'."""
    def body(p: Paired) -> str:
        m = f"{p.mean * scale:+.{digits}f}"
        if p.n < 2:
            return f"{m} {unit}"
        return f"{m} [{p.lo * scale:+.{digits}f}, {p.hi * scale:+.{digits}f}] {unit}"
    return (f"{body(d.draws)} (n={d.draws.n} draws, paired over (data, teacher) draws); "
            f"runs pooled (within-teacher): {body(d.runs)} (n={d.runs.n} runs)")


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


# --- verdicts -------------------------------------------------------------------------------
ALPHA = 0.05          # family-wise error rate of a claim's comparisons (Holm)
MIN_N = 3             # fewer paired seeds than this: the claim is untested
CLAIM_KINDS = ("greater", "not_worse", "equal")
REPRODUCED, INCONCLUSIVE, NOT_REPRODUCED, UNTESTED = (
    "claim reproduced", "claim inconclusive", "claim not reproduced", "claim untested")
# One comparison's reading of its Holm interval:
SUPPORTS, CONTRADICTS, SPANS = "supports", "contradicts", "spans the boundary"


def t_pvalue(d: Paired, boundary: float = 0.0) -> float:
    """Two-sided one-sample t-test of H0: E[a − b] = boundary from the differences' mean, sd
    and n: t = (mean − boundary) / (sd / √n), df = n − 1 (scipy.stats.ttest_1samp on the
    differences; ttest_rel for boundary 0). Zero spread: 0 if the mean differs from the
    boundary, else 1."""
    if d.n < 2:
        return math.nan
    if d.std == 0:
        return 0.0 if d.mean != boundary else 1.0
    t = (d.mean - boundary) / (d.std / math.sqrt(d.n))
    return float(2 * sps.t.sf(abs(t), d.n - 1))


def interval(d: Paired, confidence: float) -> tuple[float, float]:
    """The Student-t interval mean ± t_{(1+confidence)/2, n−1} · sd / √n."""
    if d.n < 2:
        return math.nan, math.nan
    half = float(sps.t.ppf(0.5 + confidence / 2, d.n - 1)) * d.std / math.sqrt(d.n)
    return d.mean - half, d.mean + half


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (Holm 1979): with p_(1) <= ... <= p_(m),
    p̃_(i) = min(1, max_{j<=i} (m − j + 1) · p_(j)); rejecting every p̃ <= α keeps the
    family-wise error rate <= α for any dependence between the tests."""
    p = np.asarray(pvalues, np.float64)
    m = p.size
    order = np.argsort(p, kind="stable")
    adjusted = np.empty(m)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        adjusted[i] = running
    return adjusted.tolist()


def holm_levels(pvalues: Sequence[float], alpha: float = ALPHA) -> list[float]:
    """Each comparison's confidence level matched to Holm: 1 − α / c with c = p̃ / p (c >= 1 is
    the multiplier Holm applied to that p-value; c = m for the smallest p). The t-interval at
    that level excludes the tested boundary exactly when p < α / c, i.e. when p̃ < α: the
    intervals show what Holm decided (they are not simultaneous intervals; Bonferroni's
    1 − α/m ones would be, and are wider)."""
    adjusted = holm(pvalues)
    levels = []
    for p, q in zip(pvalues, adjusted):
        c = len(adjusted) if p == 0 else max(1.0, q / p)
        levels.append(1 - alpha / c)
    return levels


def _boundary(d: Paired, kind: str, margin: float) -> float:
    """The boundary H0 puts the mean difference on (see claim_status)."""
    if kind == "greater":
        return 0.0
    if kind == "not_worse":
        return -margin
    if margin == 0 or abs(d.mean) > margin:   # 'equal': the nearer edge of [−δ, δ] ...
        return math.copysign(margin, d.mean)
    # ... or, inside it, the edge whose test is the weaker (equivalence needs both excluded)
    return margin if t_pvalue(d, margin) >= t_pvalue(d, -margin) else -margin


def _reading(lo: float, hi: float, kind: str, margin: float) -> str:
    if kind == "greater":
        return SUPPORTS if lo > 0 else CONTRADICTS if hi < 0 else SPANS
    if kind == "not_worse":
        return SUPPORTS if lo > -margin else CONTRADICTS if hi < -margin else SPANS
    if lo > margin or hi < -margin:
        return CONTRADICTS
    return SUPPORTS if margin > 0 and -margin < lo and hi < margin else SPANS


@dataclasses.dataclass(frozen=True)
class Judged:
    """One comparison of a claim: its Holm p-value at the kind's boundary, the interval at the
    matching level and how that interval reads."""
    name: str
    diff: Paired
    boundary: float
    p: float
    p_holm: float
    level: float
    lo: float
    hi: float
    reading: str


def judge(diffs: Mapping[str, "Paired | TwoLevel"], kind: str = "greater",
          margin: float = 0.0, alpha: float = ALPHA) -> list[Judged]:
    """Every comparison of a claim, Holm-corrected over all of them (m = len(diffs)); a
    TwoLevel is judged on its draw level (`reported`)."""
    diffs = {k: reported(d) for k, d in diffs.items()}
    if kind not in CLAIM_KINDS:
        raise ValueError(f"claim kind must be one of {CLAIM_KINDS}, got {kind!r}")
    if margin < 0:
        raise ValueError(f"claim margin must be >= 0, got {margin}")
    names = list(diffs)
    bounds = [_boundary(diffs[k], kind, margin) for k in names]
    ps = [t_pvalue(diffs[k], b) for k, b in zip(names, bounds)]
    adjusted, levels = holm(ps), holm_levels(ps, alpha)
    out = []
    for k, b, p, q, level in zip(names, bounds, ps, adjusted, levels):
        lo, hi = interval(diffs[k], level)
        out.append(Judged(k, diffs[k], b, p, q, level, lo, hi, _reading(lo, hi, kind, margin)))
    return out


def fmt_judged(j: Judged, scale: float = 100.0, unit: str = "pts") -> str:
    """'+0.42 pts, 98.3% interval [+0.20, +0.64] (Holm p = 0.003 vs 0, n=8): supports'."""
    return (f"{j.diff.mean * scale:+.2f} {unit}, {100 * j.level:.4g}% interval "
            f"[{j.lo * scale:+.2f}, {j.hi * scale:+.2f}] (Holm p = {j.p_holm:.3g} vs "
            f"{j.boundary * scale:+.3g}, n={j.diff.n}): {j.reading}")


def claim_status(diffs: Mapping[str, "Paired | TwoLevel"], kind: str = "greater",
                 margin: float = 0.0, alpha: float = ALPHA) -> tuple[str, str]:
    """(status, detail) of a paper claim about several paired differences d = X − Y.

    Each comparison k is a two-sided paired t-test of H0: E[d_k] = b_k at a boundary b_k set by
    the claim's kind; the m p-values are Holm-adjusted (family-wise α = 0.05 over the claim's m
    comparisons) and each difference gets the t-interval at the level matched to its Holm
    decision (`holm_levels`: it excludes b_k iff Holm rejects H0_k). `margin` δ >= 0 is in the
    differences' units (fractions for accuracies). A TwoLevel difference is judged on its
    interval over (data, teacher) draws (n = draws), never on its runs pooled.

    kind 'greater' ("X outperforms Y"; b = 0): an interval above 0 supports the claim, one
      below 0 contradicts it (it excludes every positive effect), one spanning 0 is
      inconclusive.
    kind 'not_worse' ("X matches or improves on Y", non-inferiority with margin δ; b = −δ): an
      interval above −δ supports, one below −δ contradicts, one spanning −δ is inconclusive.
      With δ = 0 only a significant improvement supports it: a match cannot be shown
      without a declared margin.
    kind 'equal' ("no significant change", |E[d]| <= δ; b = the edge of [−δ, δ] nearer the
      mean, or inside it the one with the larger p): an interval inside (−δ, δ) supports,
      one wholly outside [−δ, δ] contradicts, anything else is inconclusive. With δ = 0 an
      interval excluding 0 contradicts and nothing can support it.

    Status: 'claim untested' if any comparison has n < 3 paired seeds (or none is given);
    'claim not reproduced' if any Holm interval contradicts the claim; 'claim reproduced' if
    every one supports it; 'claim inconclusive' otherwise. The detail names the correction
    ('Holm, m = 4, α = 0.05') and each comparison (`fmt_judged`).
    """
    if kind not in CLAIM_KINDS:
        raise ValueError(f"claim kind must be one of {CLAIM_KINDS}, got {kind!r}")
    if not diffs:
        return UNTESTED, "no paired comparison"
    diffs = {k: reported(d) for k, d in diffs.items()}
    few = {k: d for k, d in diffs.items() if d.n < MIN_N}
    if few:
        return UNTESTED, (f"fewer than {MIN_N} paired seeds (" + "; ".join(
            f"{k}: {fmt_paired(d)}" for k, d in diffs.items()) + ")")
    judged = judge(diffs, kind, margin, alpha)
    name = f"Holm, m = {len(judged)}, α = {alpha:g}" + (f", margin {margin:g}" if margin else "")
    detail = f"{name}; " + "; ".join(f"{j.name}: {fmt_judged(j)}" for j in judged)
    return verdict(judged), detail


def verdict(judged: Sequence[Judged]) -> str:
    """The status word of comparisons already judged (`judge`), e.g. a claim's subset of a
    larger Holm family: 'claim untested' if any has n < 3 (or there are none), 'claim not
    reproduced' if any contradicts the claim, 'claim reproduced' if every one supports it,
    'claim inconclusive' otherwise."""
    if not judged or any(j.diff.n < MIN_N for j in judged):
        return UNTESTED
    readings = {j.reading for j in judged}
    if CONTRADICTS in readings:
        return NOT_REPRODUCED
    if readings == {SUPPORTS}:
        return REPRODUCED
    return INCONCLUSIVE
