"""From finished point records to table rows: mean ± std over seeds beside the paper's number."""
from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np

from kdjax.reproduce import stats
from kdjax.reproduce.spec import TableSpec


def get_path(obj: Any, dotted: str) -> Any:
    """obj['a']['b'] for 'a.b'; list elements by index ('history.-1.x'). KeyError if absent."""
    node = obj
    for part in dotted.split("."):
        if isinstance(node, (list, tuple)):
            node = node[int(part)]
        elif isinstance(node, Mapping) and part in node:
            node = node[part]
        else:
            raise KeyError(f"{dotted!r}: no {part!r}")
    return node


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof = 1; 0.0 for a single value)."""
    v = np.asarray(values, np.float64)
    if v.size == 0:
        raise ValueError("mean_std of no values")
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0


def fmt_mean_std(mean: float, std: float, n: int, digits: int = 2) -> str:
    return f"{mean:.{digits}f}" if n <= 1 else f"{mean:.{digits}f} ± {std:.{digits}f}"


def lookup_paper(paper: str, key: Sequence[Any], params: Mapping[str, Any] | None = None,
                 papers: Mapping[str, Mapping] | None = None) -> Any:
    """The paper's number at `key` in papers[paper] (the harness is handed
    papers/paper_numbers.py `PAPERS`; None = no paper numbers), or None.

    Keys may be a flat tuple key of the paper's dict (ALM style) or a path into nested dicts
    (DiSK style); string parts, also inside tuple parts, are formatted with the point's `params`
    by their last name or their dotted name with '_' ('{method}', '{teacher_name}')."""
    if not key:
        return None
    if papers is None:
        return None
    short = {k.split(".")[-1]: v for k, v in (params or {}).items()}
    short.update({k.replace(".", "_"): v for k, v in (params or {}).items()})  # '{model_name}'
    fill = lambda p: (p.format(**short) if isinstance(p, str) else
                      tuple(map(fill, p)) if isinstance(p, tuple) else p)
    parts = tuple(map(fill, key))
    table = papers.get(paper, {})
    if parts in table:
        return table[parts]
    node: Any = table
    for p in parts:
        if isinstance(node, Mapping) and p in node:
            node = node[p]
        else:
            return None
    return node


def metric_rows(spec: TableSpec, records: Sequence[dict], papers=None) -> list[dict]:
    """One row per (grid cell without the seed, metric): mean ± std over the cell's seeds."""
    seed_field = spec.seeds.partition(":")[2] if spec.seeds.startswith("grid:") else None
    cells: dict[tuple, list[dict]] = {}
    for r in records:
        key = tuple((k, _hashable(v)) for k, v in r["params"].items() if k != seed_field)
        cells.setdefault(key, []).append(r)
    rows = []
    for key, recs in cells.items():
        params = dict(key)
        for m in spec.metrics:
            values, seeds = [], []
            for r in recs:
                try:
                    v = get_path(r["result"], m.path)
                except (KeyError, IndexError, ValueError):
                    continue
                if v is None:
                    continue
                values.append(float(v) * m.scale)
                seeds.append(r.get("seed"))
            if not values:
                continue
            mean, std = mean_std(values)
            paper = lookup_paper(spec.paper, m.paper, paper_params(spec, params), papers)
            row = {k.split(".")[-1]: _show(v) for k, v in params.items()}
            row.update({"metric": m.name, "ours": fmt_mean_std(mean, std, len(values)),
                        "paper": "—" if paper is None else paper, "mean": mean, "std": std,
                        "n": len(values), "seeds": seeds})
            rows.append(row)
    return rows


def paper_params(spec: TableSpec, params: Mapping[str, Any]) -> dict:
    """The cell's grid values under the paper's names (`spec.paper_rows`), for lookup_paper."""
    return {k: spec.paper_rows.get(k, {}).get(v, v) if _is_key(v) else v
            for k, v in params.items()}


def _is_key(v) -> bool:
    try:
        hash(v)
    except TypeError:
        return False
    return True


def _metric_value(record: dict, metric) -> float | None:
    try:
        v = get_path(record["result"], metric.path)
    except (KeyError, IndexError, ValueError):
        return None
    return None if v is None else float(v)


def crossed_seeds(spec: TableSpec, records: Sequence[dict]) -> list:
    """The seeds a two-level table ran under more than one draw (sorted; [] when every seed
    belongs to one draw, as `sweep.expand` nests them). Such a seed's effect is shared by the
    draws' differences, so the interval over the draws leaves its variance out."""
    seed_field = spec.seeds.partition(":")[2]
    if not spec.draw or not seed_field:
        return []
    draws: dict = {}
    for r in records:
        params = r.get("params", {})
        if spec.draw in params and seed_field in params:
            draws.setdefault(_hashable(params[seed_field]), set()).add(
                _hashable(params[spec.draw]))
    return _sorted([s for s, d in draws.items() if len(d) > 1])


def baseline_rows(spec: TableSpec, records: Sequence[dict], baselines=None) -> list[dict]:
    """Paired differences 'v − baseline' per Baseline (default `spec.paired`), cell of the other
    axes and metric, over the seeds both arms ran (kdjax.reproduce.stats.paired: mean, 95%
    t-interval, n, and the Paired itself under 'diff'), in metric units (points for
    accuracies).

    With `spec.draw` (issue 33) a run is (draw, seed) and the differences are two-level
    (stats.two_level): 'diff' (and mean / lo / hi / n) is the interval over the draws (n =
    draws), the one Holm and the claim use; 'runs pooled' is every run pooled (n = runs)."""
    seed_field = spec.seeds.partition(":")[2]
    draw = getattr(spec, "draw", "")
    by_name = {m.name: m for m in spec.metrics}
    rows = []
    for b in spec.paired if baselines is None else baselines:
        cells: dict[tuple, dict] = {}   # other axes -> {arm: {(draw, seed) | seed: record}}
        for r in records:
            params = {k: _hashable(v) for k, v in r["params"].items()}
            if b.axis not in params:
                continue
            key = tuple((k, v) for k, v in params.items()
                        if k not in (seed_field, b.axis, draw))
            run = (params.get(draw), params.get(seed_field)) if draw else params.get(seed_field)
            cells.setdefault(key, {}).setdefault(params[b.axis], {})[run] = r
        for key, arms in cells.items():
            base = arms.get(_hashable(b.value))
            if base is None:
                continue
            for arm, by_seed in arms.items():
                if arm == _hashable(b.value) or (b.values and arm not in b.values):
                    continue
                for name in b.metrics or (spec.metrics[0].name,):
                    m = by_name[name]
                    seeds, a_vals, b_vals = [], [], []
                    for seed in _sorted(set(by_seed) & set(base)):
                        x, y = _metric_value(by_seed[seed], m), _metric_value(base[seed], m)
                        if x is not None and y is not None:
                            seeds.append(seed)
                            a_vals.append(x)
                            b_vals.append(y)
                    if not seeds:
                        continue
                    unit = "pts" if m.scale == 100.0 else ""
                    row = {k.split(".")[-1]: _show(v) for k, v in key}
                    if draw:
                        two = stats.two_level(a_vals, b_vals, [s[0] for s in seeds])
                        d = two.draws
                        text = stats.fmt_two_level(two, m.scale, unit)
                    else:
                        two, d = None, stats.paired(a_vals, b_vals)
                        text = stats.fmt_paired(d, m.scale, unit)
                    row.update({"a − b": f"{_show(arm)} − {_show(b.value)}", "metric": m.name,
                                "paired difference": " ".join(text.split()),
                                "mean": d.mean * m.scale, "lo": d.lo * m.scale,
                                "hi": d.hi * m.scale, "n": d.n, "seeds": seeds, "diff": d})
                    if two is not None:
                        row.update({"n runs": two.runs.n, "runs pooled": two.runs})
                    rows.append(row)
    return _with_holm(rows)


def _with_holm(rows: list[dict]) -> list[dict]:
    """Each row's paired-t p-value (H0: no difference) Holm-adjusted over all the table's
    rows with an interval (the family: m = their number), in a column naming m."""
    tested = [r for r in rows if r["diff"].n >= 2]
    if not tested:
        return rows
    adjusted = stats.holm([stats.t_pvalue(r["diff"]) for r in tested])
    column = f"p (Holm, m = {len(tested)})"
    for r, q in zip(tested, adjusted):
        r[column] = f"{q:.3g}"
    return rows


def _sorted(seeds) -> list:
    try:
        return sorted(seeds)
    except TypeError:
        return sorted(seeds, key=str)


def runner_rows(spec: TableSpec, records: Sequence[dict]) -> list[dict]:
    """The runners' own rows (already mean ± std beside the paper), tagged with their point."""
    rows = []
    for r in records:
        tag = {k.split(".")[-1]: _show(v) for k, v in r["params"].items()}
        for row in r["result"].get("rows", []) or []:
            rows.append({**tag, **{k: _cell(v) for k, v in row.items()}})
    return rows


def table_rows(spec: TableSpec, records: Sequence[dict], papers=None) -> list[dict]:
    return metric_rows(spec, records, papers) if spec.metrics else runner_rows(spec, records)


def curves(spec: TableSpec, records: Sequence[dict]) -> dict[str, dict]:
    """{label: {'x': xs, 'mean': m, 'std': s, 'n': n}} per (curve, grid cell), over seeds."""
    seed_field = spec.seeds.partition(":")[2] if spec.seeds.startswith("grid:") else None
    grouped: dict[str, list] = {}
    for c in spec.curves:
        for r in records:
            try:
                hist = get_path(r["result"], c.path)
            except (KeyError, IndexError, ValueError):
                continue
            pts = [(h[c.x], h[c.y] * c.scale) for h in hist
                   if isinstance(h, Mapping) and c.x in h and h.get(c.y) is not None]
            if not pts:
                continue
            cell = ", ".join(f"{k.split('.')[-1]}={_show(v)}" for k, v in r["params"].items()
                             if k != seed_field)
            label = c.name + (f" ({cell})" if cell else "")
            grouped.setdefault(label, []).append(dict(pts))
    out = {}
    for label, series in grouped.items():
        xs = sorted(set.intersection(*(set(s) for s in series)))
        ys = np.array([[s[x] for x in xs] for s in series], np.float64)
        out[label] = {"x": xs, "mean": ys.mean(0).tolist(),
                      "std": (ys.std(0, ddof=1) if len(series) > 1 else 0 * ys[0]).tolist(),
                      "n": len(series)}
    return out


def _hashable(v):
    return tuple(v) if isinstance(v, list) else v


def _show(v):
    return "-".join(map(str, v)) if isinstance(v, (list, tuple)) else v


def _num(x: float, digits: int) -> str:
    """4 significant digits, but large numbers in full (no 9.324e+05)."""
    return f"{x:.0f}" if abs(x) >= 10 ** digits else f"{x:.{digits}g}"


def _cell(v):
    """A runner's cell: {'mean', 'std'|'sem', 'n'} dicts become 'm ± s' strings."""
    if isinstance(v, Mapping) and "mean" in v and isinstance(v["mean"], (int, float)):
        spread = v.get("std", v.get("sem"))
        if not isinstance(spread, (int, float)) or math.isnan(spread):
            return _num(v["mean"], 4)
        return f"{_num(v['mean'], 4)} ± {_num(spread, 2)}" + (
            " (SEM)" if "sem" in v and "std" not in v else "")
    return v


# --- paired comparisons and claims (issue 18): runners that compare arms over shared seeds
# (kdjax.methods.rad.compare) put `paired_rows` and `claim` in their result.

# Worst first: a table's claim status is the worst status among its points ('claim not
# contradicted' is the old rule's word, kept for records judged before it changed).
_CLAIM_ORDER = (stats.NOT_REPRODUCED, stats.UNTESTED, stats.INCONCLUSIVE,
                "claim not contradicted", stats.REPRODUCED)


def paired_rows(records: Sequence[dict]) -> list[dict]:
    """One row per (point, comparison a − b): the paired difference per round and over all
    rounds, as the runner formatted it (mean [95% t-interval] pts (n=k, paired))."""
    rows = []
    for r in records:
        tag = {k.split(".")[-1]: _show(v) for k, v in r["params"].items()}
        by_comp: dict[str, dict] = {}
        for p in r["result"].get("paired_rows") or []:
            label = "all rounds" if p["round"] == "all" else f"round {p['round']}"
            by_comp.setdefault(p["comparison"], {})[label] = p["text"]
        for comp, cells in by_comp.items():
            rows.append({**tag, "a − b": comp, **cells})
    return rows


def claim_summary(records: Sequence[dict]) -> tuple[str, str] | None:
    """(status, detail) of the paper's claim over a table's points, or None if no point's
    runner judged one (a runner of variants only, e.g. DiSK's Table 1 variants, judges it per
    variant in 'variant_claims'). Where several points' claims carry their differences
    ('diffs', kdjax/methods/rad/paired.py), every point's comparisons are judged together as one
    Holm family; otherwise the status is the worst point's (order in _CLAIM_ORDER): a claim
    holds for the table only if it holds at every point."""
    judged = []
    for r in records:
        claim = r["result"].get("claim")
        tag = ", ".join(f"{k.split('.')[-1]}={_show(v)}" for k, v in r["params"].items())
        if claim:
            judged.append((claim, tag))
        elif r["result"].get("variant_claims"):  # a table of variants only: each one's verdict
            judged += [(c, ", ".join(filter(None, (tag, name))))
                       for name, c in r["result"]["variant_claims"].items()]
    if not judged:
        return None
    text = judged[0][0]["text"]
    on = "all rounds" if judged[0][0].get("on", "all") == "all" else "the last round"
    kinds = {c["kind"] for c, _ in judged}
    if len(judged) > 1 and all(c.get("diffs") for c, _ in judged) and len(kinds) == 1:
        # one family: every point's comparisons Holm-corrected together
        diffs = {(f"[{tag}] " if tag else "") + name: stats.Paired(**d)
                 for c, tag in judged for name, d in c["diffs"].items()}
        status, detail = stats.claim_status(diffs, kinds.pop(),
                                            max(c.get("margin", 0.0) for c, _ in judged))
        return (f"{status} (n={min(d.n for d in diffs.values())})",
                f"claim: {text}, judged on {on} ({judged[0][0]['kind']}) over all "
                f"{len(judged)} points; {detail}")
    worst = min((c["status"] for c, _ in judged),
                key=lambda s: _CLAIM_ORDER.index(s) if s in _CLAIM_ORDER else 0)
    ns = [p["diff"]["n"] for r in records for p in r["result"].get("paired_rows") or []]
    if ns:  # how many paired seeds stand behind the verdict (n=2 intervals are very wide)
        worst += f" (n={min(ns)})"
    scope = (" (each point's comparisons corrected on their own, not across the "
             f"{len(judged)} points)" if len(judged) > 1 else "")
    detail = f"claim: {text}, judged on {on} ({judged[0][0]['kind']}){scope}; " + "; ".join(
        (f"[{tag}] " if tag else "") + f"{c['status']}: {c['detail']}" for c, tag in judged)
    return worst, detail


def table_claim(spec: TableSpec, records: Sequence[dict]) -> tuple[str, str] | None:
    """(status, detail) of `spec.claim` judged on the paired differences of the finished points
    (stats.claim_status over every cell's arm − baseline: one Holm family), or None without a
    claim; in the format of `claim_summary`."""
    c = spec.claim
    if c is None:
        return None
    rows = baseline_rows(spec, records, spec.claim_baselines())
    diffs = {" ".join([f"{k}={row[k]}" for k in row if not _not_cell(k)] + [row["a − b"]]):
             row["diff"] for row in rows}
    status, detail = stats.claim_status(diffs, c.kind, c.margin)
    unit = " draws" if spec.draw else ""
    if rows:
        status += f" (n={min(row['n'] for row in rows)}{unit})"
    on = (f"paired (data, teacher) draws ({spec.draw}; each draw's seeds averaged)"
          if spec.draw else "paired seeds")
    return status, f"claim: {c.text}, judged on {on} ({c.kind}); {detail}"


_NOT_CELL = ("a − b", "metric", "paired difference", "mean", "lo", "hi", "n", "seeds", "diff",
             "n runs", "runs pooled")


def _not_cell(key: str) -> bool:
    return key in _NOT_CELL or key.startswith("p (Holm")
