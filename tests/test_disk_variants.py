"""Issue-20 DiSK variants (ours): each switch changes what it should, the defaults do not move.

Switches: disk.penalty_scale ('guided': the log(1 + K·g) term weighted like the guided term),
disk.guide_start ('budget') / disk.guide_logit_cap (a guide kept out of saturation), the
gap-heavy 1D sampling (global minimum strictly best), best-validation selection, the KD grid and
the Table 1 claim verdict.
"""
import json
from fractions import Fraction

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from kdjax.methods.disk import config as disk_config
from kdjax.methods.disk import guide as disk_guide
from kdjax.methods.disk import loss as disk
from kdjax.reproduce import stats
from papers.disk import table1 as R
from papers.disk import toy_problems as P
from papers.disk import toys as T


def _case(seed=0, b=8, c=4):
    rng = np.random.default_rng(seed)
    s = jnp.asarray(rng.normal(size=(b, c)) * 2, jnp.float32)
    t = jnp.asarray(rng.normal(size=(b, c)) * 3, jnp.float32)
    y = jnp.asarray(rng.integers(0, c, b))
    g = jnp.asarray(rng.uniform(0.05, 0.95, b), jnp.float32)
    return s, t, y, g


# ----------------------------------------------------------------------------- switch 1
def test_guided_penalty_scale_weights_like_the_guided_term():
    s, t, y, g = _case()
    alpha, tau_t, tau_s, k = 0.1, 4.0, 3.5, 2
    kw = dict(lam=5.0, delta=0.4, alpha=alpha, tau_t=tau_t, tau_s=tau_s, top_k=k,
              include_label=True, target="topk", penalty=1.0 - alpha, ce_target="teacher",
              max_ce=5.0, normalize="misclassified")
    official = disk.guide_loss(s, t, y, g, **kw)
    guided = disk.guide_loss(s, t, y, g, penalty_scale="guided", **kw)
    term = disk.guide_penalty(g, k)
    # official = the previous formula: (1 − α)·mean Eq. 4 + λ·budget + l_nll·mean log(1 + K g)
    dist = jnp.mean(disk.guided_distillation_loss(s, t, g, tau_t=tau_t, tau_s=tau_s, top_k=k,
                                                  labels=y, include_label=True, target="topk"))
    budget = disk.budget_loss(s, g, y, delta=0.4, teacher_logits=t, ce_target="teacher",
                              max_ce=5.0, normalize="misclassified")
    np.testing.assert_allclose(official, (1 - alpha) * dist + 5.0 * budget + 0.9 * term,
                               rtol=1e-6)
    # guided: the term's weight is (1 − α)·τ_T·τ_S, the guided term's own factor
    weight = disk.penalty_weight(1.0 - alpha, "guided", tau_t, tau_s)
    np.testing.assert_allclose(weight, (1 - alpha) * tau_t * tau_s, rtol=1e-7)
    np.testing.assert_allclose(guided - official, (weight - (1 - alpha)) * term, rtol=1e-5)
    assert disk.penalty_weight(0.9, "official", tau_t, tau_s) == 0.9
    with pytest.raises(ValueError, match="penalty_scale"):
        disk.penalty_weight(0.9, "both", tau_t, tau_s)


def test_guided_penalty_gives_an_interior_optimum_on_fitted_points():
    """With the guided weight, a point the student fits (s = t) wants g = 0, a badly fitted
    one g > 0; at the official weight both want g at the top (the saturation of issue 20)."""
    t = jnp.array([[3.0, -3.0], [3.0, -3.0]])
    s = jnp.array([[3.0, -3.0], [-3.0, 3.0]])                # fitted, wrong
    y = jnp.array([0, 0])
    grid = jnp.linspace(0.0, 1.0, 101)
    kw = dict(lam=0.0, delta=1.0, alpha=0.1, tau_t=4.0, tau_s=4.0, top_k=2, penalty=0.9)

    def best_g(point, scale):
        vals = jax.jit(jax.vmap(lambda v: disk.guide_loss(
            s[point:point + 1], t[point:point + 1], y[point:point + 1], v[None],
            penalty_scale=scale, **kw)))(grid)
        return float(grid[int(np.argmin(vals))])

    assert best_g(0, "guided") == 0.0 and best_g(1, "guided") > 0.0
    assert best_g(1, "official") == 1.0 and best_g(0, "official") > best_g(0, "guided")


# ----------------------------------------------------------------------------- switch 2
def _disk_section(**kw) -> ml_collections.ConfigDict:
    d = disk_config.section()
    d.update(kw)
    return d


def test_default_guide_module_is_unchanged():
    d = _disk_section(guide_hidden=(8,))
    m = disk_guide.guide_module(d)
    assert m.out_bias == 0.0 and m.logit_cap == 0.0
    f, z = jnp.ones((3, 5)), jnp.arange(12.0).reshape(3, 4)
    key = jax.random.PRNGKey(0)
    old = disk_guide.GuideMLP(hidden=(8,))
    v_old, v_new = old.init(key, f, z), m.init(key, f, z)
    jax.tree.map(np.testing.assert_array_equal, v_old, v_new)
    np.testing.assert_array_equal(old.apply(v_old, f, z), m.apply(v_new, f, z))
    assert disk_guide.init_lambda(d) == d.lam_min
    assert disk_guide.phase_lambda(d, 0, 0.1) == 0.1


def test_budget_start_and_logit_cap():
    d = _disk_section(guide_hidden=(), guide_start="budget", guide_start_g=0.05,
                      guide_start_rounds=3)
    m = disk_guide.guide_module(d)
    f, z = jnp.ones((4, 2)), jnp.zeros((4, 2))
    v = m.init(jax.random.PRNGKey(0), f, z)
    v = jax.tree.map(jnp.zeros_like, v)
    v["params"]["Dense_0"]["bias"] = jnp.full((1,), disk_guide.output_bias(d))
    np.testing.assert_allclose(m.apply(v, f, z), 0.05, rtol=1e-5)   # g starts at guide_start_g
    assert disk_guide.init_lambda(d) == d.lam_max
    assert float(disk_guide.phase_lambda(d, 2, 0.1)) == d.lam_max
    assert float(disk_guide.phase_lambda(d, 3, 0.1)) == pytest.approx(0.1)
    capped = disk_guide.GuideMLP(hidden=(), logit_cap=4.0)
    huge = {"params": {"Dense_0": {"kernel": jnp.full((4, 1), 1e4), "bias": jnp.zeros(1)}}}
    g = capped.apply(huge, jnp.ones((2, 2)), jnp.ones((2, 2)))
    plain = disk_guide.GuideMLP(hidden=()).apply(huge, jnp.ones((2, 2)), jnp.ones((2, 2)))
    assert np.all(np.asarray(plain) == 1.0)                           # float32 saturation
    np.testing.assert_allclose(g, jax.nn.sigmoid(4.0), rtol=1e-6)     # capped below 1


def test_cap_keeps_initial_guide_below_one_on_hard_points():
    """GuideTrainer init epochs at λ_min (official): g reaches float32 1.0 on the points the
    student gets wrong; with guide_logit_cap = 4 it stays <= σ(4) < 1 there."""
    rng = np.random.default_rng(0)
    n, c = 64, 3
    feats = rng.normal(size=(n, 6)).astype(np.float32) * 3
    t_logits = rng.normal(size=(n, c)).astype(np.float32) * 4
    labels = t_logits.argmax(-1).astype(np.int32)
    s_logits = t_logits.copy()
    hard = np.arange(n) % 2 == 0
    s_logits[hard] = -t_logits[hard]                                   # student wrong on half
    data = {"features": feats, "teacher_logits": t_logits, "student_logits": s_logits,
            "label": labels}
    out = {}
    for cap in (0.0, 4.0):
        config = ml_collections.ConfigDict({"loss": {"ce_weight": 0.1, "temperature": 4.0},
                                            "disk": _disk_section(
            guide_hidden=(8,), guide_learning_rate=0.5, guide_logit_cap=cap, top_k=2)})
        tr = disk_guide.GuideTrainer(config, 32)
        assert tr.kw["penalty_scale"] == "official" and tr.model.logit_cap == cap
        v, o = tr.init(jax.random.PRNGKey(0), feats, t_logits)
        v, o = tr.train(v, o, data, epochs=5, seed=0, salt=0, lam=0.1, delta=0.6, tau_s=4.0)
        out[cap] = tr.values(v, feats, t_logits)
    assert np.all(out[0.0][hard] == 1.0)
    assert np.all(out[4.0][hard] < 1.0) and out[4.0].max() <= float(jax.nn.sigmoid(4.0)) + 1e-6


# ----------------------------------------------------------------------------- construction
def test_gap_heavy_global_minimum_strictly_best_exactly():
    bal, gap = P.expected_accuracy_1d("balanced"), P.expected_accuracy_1d("gap_heavy")
    assert bal == {"A": Fraction(2, 3), "B": Fraction(5, 6), "C": Fraction(5, 6)}   # tie
    assert gap == {"A": Fraction(2, 3), "B": Fraction(3, 4), "C": Fraction(5, 6)}
    assert gap["C"] > gap["B"] > gap["A"]
    d = P.sample_intervals(np.random.default_rng(0), 60000, sampling="gap_heavy")
    assert d["y"].sum() == 30000                                        # classes balanced
    red = d["x"][d["y"] == 0, 0]
    np.testing.assert_allclose(np.mean((red >= 3) & (red < 5)), 0.5, atol=0.01)
    for m, acc in P.ideal_accuracy("intervals_1d", d).items():
        np.testing.assert_allclose(acc, float(gap[m]), atol=0.006)
    with pytest.raises(ValueError, match="sampling"):
        P.sample_intervals(np.random.default_rng(0), 10, sampling="skewed")
    # default sampling unchanged: same draws as before the switch existed
    a = P.sample_intervals(np.random.default_rng(5), 50)
    b = P.make_dataset("intervals_1d", 5, {"train": 50})["train"]
    np.testing.assert_array_equal(a["x"], b["x"])


# ----------------------------------------------------------------------------- selection
def test_keep_best_picks_the_first_argmax_epoch():
    scores = [0.2, 0.7, 0.5, 0.7, 0.6]
    best = T._no_best({"w": jnp.zeros(2)})
    for e, s in enumerate(scores):
        best = T.keep_best(best, {"w": jnp.full(2, float(e))}, jnp.float32(s), jnp.int32(e))
    np.testing.assert_array_equal(best[0]["w"], [1.0, 1.0])
    assert int(best[2]) == 1 and float(best[1]) == pytest.approx(0.7)


def test_best_validation_run_reports_the_argmax_epoch():
    from experiments.disk import table1
    cfg = table1.get_config().intervals_1d
    cfg.epochs, cfg.batch_size = 6, 30
    data = P.make_dataset("intervals_1d", 0, {"train": 60, "validation": 40, "test": 40})
    evals = {k: T._arrays(v) for k, v in data.items()}
    run = T.make_supervised_run(P.IntervalModel(1, 20.0), evals["train"], evals, cfg,
                                loss_fn=T._ce)
    _, m = jax.jit(jax.vmap(run))(jax.random.split(jax.random.PRNGKey(1), 3))
    val = np.asarray(m["log"]["validation_accuracy"])                 # (runs, epochs)
    np.testing.assert_array_equal(m["best"]["epoch"], val.argmax(1))
    np.testing.assert_allclose(m["best"]["validation_accuracy"], val.max(1))
    np.testing.assert_allclose(m["validation_accuracy"], val[:, -1])  # 'last' unchanged


# ----------------------------------------------------------------------------- KD grid, claim
def test_kd_grid_is_the_papers_scan():
    from experiments.disk import table1
    combos = R.kd_combos(table1.get_config().intervals_1d)
    assert len(combos) == 13 and combos.count((1.0, 1.0)) == 1
    assert {a for a, _ in combos} == {0.0, 0.1, 0.5, 0.9, 1.0}
    assert {t for _, t in combos} == {1.0, 2.0, 4.0}


def _fake(problem, counts: dict, n=20):
    """A merged run_toy-shaped result (table1.merge_draws): method -> per draw, the first k of
    its n runs land in the global minimum (CE's runs shuffled); one entry per (data, teacher)
    draw, labelled 100, 101, ..."""
    glob = P.GLOBAL_MINIMUM[problem]
    methods = {}
    for m, ks in counts.items():
        minima = []
        for j, k in enumerate(ks):
            draw = [glob] * k + ["A"] * (n - k)
            rng = np.random.default_rng(len(m) + j)
            minima += list(np.array(draw)[rng.permutation(n)]) if m == "ce" else draw
        methods[m] = {"by_selection": {s: {"minima": minima} for s in R.SELECTIONS}}
    draws = len(next(iter(counts.values())))
    return {"problem": problem, "methods": methods, "select": "last",
            "draw": [100 + j for j in range(draws) for _ in range(n)],
            "seeds": [100 + j for j in range(draws)]}


def test_claim_verdicts():
    """Judged on the interval over (data, teacher) draws (n = 4 draws of 20 runs)."""
    good = {"intervals_1d": _fake("intervals_1d", {"ce": [2, 3, 1, 2], "kd_grid": [3, 4, 5, 3],
                                                   "disk": [18, 17, 19, 16]}),
            "gaussians_2d": _fake("gaussians_2d", {"ce": [1, 2, 1, 0], "kd_grid": [5, 4, 6, 5],
                                                   "disk": [19, 18, 17, 19]})}
    claim = R.judge(good, "disk", "last")
    assert set(claim) == {"status", "detail", "text", "kind", "on"}
    assert claim["status"] == "claim reproduced" and "n=4)" in claim["detail"]
    # DiSK about CE's level: a mean difference whose interval spans 0 is inconclusive ...
    unclear = {"intervals_1d": _fake("intervals_1d", {"ce": [8, 6, 9, 7],
                                                      "kd_grid": [6, 6, 6, 6],
                                                      "disk": [7, 8, 6, 9]}),
               "gaussians_2d": good["gaussians_2d"]}
    assert R.judge(unclear, "disk", "last")["status"] == "claim inconclusive"
    # ... DiSK far below CE on every draw excludes the claimed effect (Holm over the 4)
    bad = {"intervals_1d": _fake("intervals_1d", {"ce": [18, 17, 19, 18],
                                                  "kd_grid": [6, 6, 7, 5],
                                                  "disk": [0, 1, 0, 2]}),
           "gaussians_2d": good["gaussians_2d"]}
    claim = R.judge(bad, "disk", "last")
    assert claim["status"] == "claim not reproduced" and "Holm, m = 4" in claim["detail"]
    # our construction (problem != toy name) is not part of the paper's claim
    ours = {"gap": _fake("intervals_1d", {"ce": [20] * 4, "kd_grid": [20] * 4,
                                          "disk": [0] * 4}), **good}
    assert R.judge(ours, "disk", "last")["status"] == "claim reproduced"
    d = R.paired_global(good["intervals_1d"], "last")[("disk", "ce")]
    assert (d.draws.n, d.runs.n) == (4, 80)
    assert d.draws.mean == pytest.approx((16 + 14 + 18 + 14) / 4 / 20)
    # one draw of many runs is one teacher: the method's claim is untested (n = 1 draw)
    single = {k: _fake(v["problem"], {"ce": [2], "kd_grid": [3], "disk": [18]}, n=100)
              for k, v in good.items()}
    claim = R.judge(single, "disk", "last")
    assert claim["status"] == "claim untested" and "n=1" in claim["detail"]
    assert R.paired_global(single["intervals_1d"], "last")[("disk", "ce")].runs.n == 100


def test_table_family_is_one_holm_family():
    """config.holm='table': every DiSK-like method x both selections x the paper's toys x
    (CE, KD grid) in one Holm family; each claim reads its comparisons off that family."""
    good = {"intervals_1d": _fake("intervals_1d", {"ce": [2, 3, 1, 2], "kd_grid": [3, 4, 5, 3],
                                                   "disk": [18, 17, 19, 16],
                                                   "disk_norm": [4, 3, 1, 4]}),
            "gaussians_2d": _fake("gaussians_2d", {"ce": [1, 2, 1, 0], "kd_grid": [5, 4, 6, 5],
                                                   "disk": [19, 18, 17, 19],
                                                   "disk_norm": [3, 4, 2, 1]})}
    family, summary = R.judge_family(good, ("disk", "disk_norm"))
    assert len(family) == 16 and summary["holm"] == "Holm, m = 16, α = 0.05"
    ref = stats.judge(R.comparisons(good, ("disk", "disk_norm"), R.SELECTIONS))
    assert [(j.name, j.p_holm) for j in ref] == [(j.name, j.p_holm) for j in family.values()]
    claim = R.judge(good, "disk", "last", family)
    assert claim["status"] == "claim reproduced" and "m = 16" in claim["detail"]
    assert R.judge(good, "disk_norm", "last", family)["status"] != "claim reproduced"
    name = "gaussians_2d: DiSK − Cross-Entropy [best_validation]"
    assert summary["comparisons"][name]["draws"]["n"] == 4
    assert summary["comparisons"][name]["runs"]["n"] == 80


def test_merge_draws_concatenates_runs_in_draw_order():
    def res(seed, minima, sel):
        rec = {"minima": minima, "test_accuracy": [0.5] * len(minima),
               "by_selection": {s: {"minima": minima} for s in R.SELECTIONS},
               "wall_s": 1.0, "log_mean": {"lam": [seed, 2.0]}, "selected": sel}
        return {"problem": "intervals_1d", "select": "last", "seed": seed, "init_seed": seed,
                "teacher": {"test_accuracy": 1.0}, "ideal_accuracy": {}, "methods": {"kd": rec}}
    one = R.merge_draws([res(3, ["C", "A"], {"alpha": 0.0, "tau": 2.0})])
    assert one["draw"] == [3, 3] and one["seeds"] == [3]
    assert one["methods"]["kd"]["minima"] == ["C", "A"]
    two = R.merge_draws([res(3, ["C", "A"], {"alpha": 0.0, "tau": 2.0}),
                         res(4, ["B"], {"alpha": 1.0, "tau": 1.0})])
    kd = two["methods"]["kd"]
    assert two["draw"] == [3, 3, 4] and kd["minima"] == ["C", "A", "B"]
    assert kd["by_selection"]["best_validation"]["minima"] == ["C", "A", "B"]
    assert kd["log_mean"]["lam"] == [3.5, 2.0] and len(kd["per_draw"]) == 2
    assert R._kd_choices(kd) == "α=0, τ=2 ×1; α=1, τ=1 ×1"
    assert R._kd_choices(one["methods"]["kd"]) == "α=0, τ=2"


# ----------------------------------------------------------------------------- defaults
# The tiny Table 1 case below, run with the code before issue 20 (commit 4052b3e): test
# accuracies, minima and DiSK's per-round budget usage / mean g (3 runs, 3 epochs / rounds).
BEFORE = {
    "intervals_1d": {
        "ce": ([0.6333333849906921, 0.7666667103767395, 0.5], ["A", "C", "other"]),
        "kd": ([0.40000003576278687, 0.7666667103767395, 0.5], ["other", "C", "other"]),
        "disk": ([0.5666667222976685, 0.7333333492279053, 0.5], ["A", "C", "other"]),
        "log": ([5.286159992218018, 4.839119911193848, 4.451330184936523],
                [0.9967100024223328, 0.997189998626709, 0.987500011920929])},
    "gaussians_2d": {
        "ce": ([0.1666666716337204, 0.4333333671092987, 0.3333333432674408], ["A"] * 3),
        "kd": ([0.3333333432674408, 0.4333333671092987, 0.3333333432674408], ["A"] * 3),
        "disk": ([0.30000001192092896, 0.36666667461395264, 0.2666666805744171], ["A"] * 3),
        "log": ([1.6316900253295898, 1.6229699850082397, 1.5707099437713623],
                [0.9424499869346619, 0.9747999906539917, 0.985040009021759])},
}


@pytest.mark.slow  # ~1-2 min on 2 cores (compilation)
def test_default_table1_bit_identical_to_before():
    from experiments.disk import table1
    config = table1.get_config("cpu")
    for toy in config.toys:
        c = config[toy]
        c.sizes = {"train": 60, "validation": 30, "test": 30}
        c.batch_size, c.epochs, c.teacher_restarts = 30, 3, 2
        c.disk.rounds, c.disk.g_epochs, c.disk.s_epochs = 3, 1, 1
        c.disk.guide_init_epochs, c.disk.lam_period = 1, 2
        res = R.run_toy(toy, c, seed=0, num_runs=3, methods=("ce", "kd", "disk"))
        for m in ("ce", "kd", "disk"):
            acc, minima = BEFORE[toy][m]
            assert res["methods"][m]["test_accuracy"] == acc, (toy, m)
            assert res["methods"][m]["minima"] == minima, (toy, m)
        log = res["methods"]["disk"]["log_mean"]
        assert (log["budget_usage"], log["guide_mean"]) == BEFORE[toy]["log"]


@pytest.mark.slow  # ~2-4 min on 2 cores (compilation)
def test_draws_keep_the_single_draw_and_vary_data_and_teacher(tmp_path):
    """run_table1 with draws=1 gives the per-run numbers of before (BEFORE, seed 0, keys from
    PRNGKey(0)); with draws=2 the first draw is that same draw and the second has its own data
    and teacher (its 16 -> 2 restarts keyed by its own seed)."""
    from experiments.disk import table1
    config = table1.get_config("cpu")
    config.methods = ("ce", "kd", "disk")
    config.num_runs = 3
    for toy in config.toys:
        c = config[toy]
        c.sizes = {"train": 60, "validation": 30, "test": 30}
        c.batch_size, c.epochs, c.teacher_restarts = 30, 3, 2
        c.disk.rounds, c.disk.g_epochs, c.disk.s_epochs = 3, 1, 1
        c.disk.guide_init_epochs, c.disk.lam_period = 1, 2
    config.draws = 1
    one = R.run_table1(config, str(tmp_path / "one"))
    saved = json.load(open(tmp_path / "one" / "results.json"))["details"]
    for toy in config.toys:
        for m in ("ce", "kd", "disk"):
            acc, minima = BEFORE[toy][m]
            assert saved[toy]["methods"][m]["test_accuracy"] == acc, (toy, m)
            assert saved[toy]["methods"][m]["minima"] == minima, (toy, m)
    assert one["claim"]["status"] == "claim untested" and one["draw_seeds"] == [0]
    config.draws = 2
    two = R.run_table1(config, str(tmp_path / "two"))
    both = json.load(open(tmp_path / "two" / "results.json"))["details"]
    assert two["draw_seeds"] == [0, 1]
    for toy in config.toys:
        res = both[toy]
        assert res["draw"] == [0] * 3 + [1] * 3
        for m in ("ce", "kd", "disk"):
            assert res["methods"][m]["test_accuracy"][:3] == BEFORE[toy][m][0], (toy, m)
        acc = lambda t: {k: v for k, v in t.items() if k.endswith("accuracy")}
        assert acc(res["teacher"][0]) == acc(saved[toy]["teacher"])
        assert res["methods"]["ce"]["test_accuracy"][3:] != BEFORE[toy]["ce"][0], toy
    assert "global_per_draw" in two["rows"][0]
