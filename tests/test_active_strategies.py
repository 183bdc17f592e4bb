"""Selection strategies on small hand-checked pools."""
import jax
import numpy as np
import pytest

from kdjax.methods.rad import strategies as st
from kdjax.methods import rad


def _probs(rows):
    return np.asarray(rows, np.float32)


PROBS = _probs([
    [0.90, 0.05, 0.05],  # margin 0.85
    [0.40, 0.35, 0.25],  # margin 0.05  (highest entropy too)
    [0.60, 0.30, 0.10],  # margin 0.30
    [0.50, 0.45, 0.05],  # margin 0.05 → tie with 1 (1 wins on index)
    [0.98, 0.01, 0.01],  # margin 0.97
    [0.34, 0.33, 0.33],  # margin 0.01, max entropy
])


def test_uniform_respects_availability_and_budget():
    avail = np.array([True, False, True, True, False, True])
    sel = st.select("uniform", jax.random.key(0), st.Pool(PROBS, available=avail), 3)
    assert len(set(sel.indices)) == 3 and np.all(avail[sel.indices])
    again = st.select("uniform", jax.random.key(0), st.Pool(PROBS, available=avail), 3)
    np.testing.assert_array_equal(sel.indices, again.indices)
    with pytest.raises(ValueError, match="exceeds"):
        st.select("uniform", jax.random.key(0), st.Pool(PROBS, available=avail), 5)


def test_margin_and_entropy_pick_by_hand():
    pool = st.Pool(PROBS)
    assert st.select("margin", None, pool, 3).indices.tolist() == [5, 1, 3]
    assert st.select("entropy", None, pool, 2).indices.tolist() == [5, 1]
    avail = np.array([True, True, True, True, True, False])
    assert st.select("margin", None, st.Pool(PROBS, available=avail), 1).indices.tolist() == [1]


def test_coreset_k_center_by_hand():
    emb = np.array([[1.0], [2.0], [10.0], [11.0], [5.0]])
    pool = st.Pool(np.full((5, 2), 0.5, np.float32), embeddings=emb,
                   labeled_embeddings=np.array([[0.0]]))
    # farthest from {0} is 11; then from {0, 11}: 1→1, 2→4, 10→1, 5→25 (squared) → 5
    assert st.select("coreset", jax.random.key(0), pool, 2).indices.tolist() == [3, 4]
    avail = np.array([True, True, True, False, True])
    pool = st.Pool(pool.probs, available=avail, embeddings=emb, labeled_embeddings=np.array([[0.0]]))
    assert st.select("coreset", jax.random.key(0), pool, 2).indices.tolist() == [2, 4]
    # no labelled centers: a random first pick, then the farthest from it
    pool = st.Pool(pool.probs, embeddings=emb)
    sel = st.select("coreset", jax.random.key(1), pool, 2).indices
    first = emb[sel[0], 0]
    assert emb[sel[1], 0] == (1.0 if first >= 6 else 11.0)


def test_cluster_embeddings_and_cluster_margin():
    rng = np.random.default_rng(0)
    emb = np.concatenate([rng.normal(0, 0.1, (6, 2)), rng.normal(10, 0.1, (4, 2))])
    ids = st.cluster_embeddings(emb, 2)
    assert len(set(ids[:6])) == 1 and len(set(ids[6:])) == 1 and ids[0] != ids[6]
    ids_b = st.cluster_embeddings(emb, 2, bucket_size=5)
    assert ids_b.shape == (10,) and ids_b.max() >= 1
    # cluster 0 holds one low-margin candidate, cluster 1 three: smallest cluster first, round-robin
    cids = np.array([0, 1, 1, 1, 2, 2])
    probs = _probs([[0.5, 0.5, 0], [0.5, 0.49, 0.01], [0.5, 0.48, 0.02], [0.5, 0.47, 0.03],
                    [1, 0, 0], [1, 0, 0]])
    sel = st.select("cluster_margin", jax.random.key(0), st.Pool(probs, cluster_ids=cids), 3,
                    margin_multiple=4 / 3)
    assert sel.indices[0] == 0 and set(sel.indices[1:]) <= {1, 2, 3} and len(set(sel.indices)) == 3


def test_unixkd_pure_then_mixed():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(40, 5)) * rng.uniform(0.1, 5, (40, 1))
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    sel = st.select("unixkd", jax.random.key(3), st.Pool(probs.astype(np.float32)), 12)
    assert sel.indices.shape == (12,) and len(set(sel.indices)) == 12
    assert sel.info["candidates"] == 16 and sel.info["b_pure"] == 8
    ent = np.asarray(rad.entropy_gain(probs))
    assert np.all(np.diff(ent[sel.indices]) <= 1e-6)  # most uncertain first
    lam = sel.mix_lambda
    assert np.all(lam[:8] < 1e-3) and np.all(lam[8:] == lam[8]) and 0 < lam[8] < 1
    assert set(sel.mix_partner) <= set(np.flatnonzero(np.ones(40)))


def test_rad_strategy_samples_b_inside_support():
    rng = np.random.default_rng(2)
    n = 200
    logits = rng.normal(size=(n, 4)) * 3
    probs = (np.exp(logits) / np.exp(logits).sum(1, keepdims=True)).astype(np.float32)
    avail = rng.random(n) < 0.8
    pool = st.Pool(probs, available=avail)
    sel = st.select("rad", jax.random.key(0), pool, 20, num_mistakes=30)
    assert len(sel.indices) == 20 and len(set(sel.indices)) == 20 and np.all(avail[sel.indices])
    g = np.asarray(rad.margin_gain(probs))
    sol = rad.rad_distribution(g[avail], 30.0)
    assert np.all(g[sel.indices] >= float(sol.value) - 1e-6)  # support is {g ≥ OPT}
    assert sel.info["k_star"] == int(sol.k_star)
    assert sel.info["w"] == pytest.approx(1 - 30 / avail.sum())
    ent_sel = st.select("rad_entropy", jax.random.key(0), pool, 20, num_mistakes=30)
    e = np.asarray(rad.entropy_gain(probs))
    sol_e = rad.rad_distribution(e[avail], 30.0)
    assert np.all(e[ent_sel.indices] >= float(sol_e.value) - 1e-6)
    w_sel = st.select("rad", jax.random.key(0), pool, 20, num_mistakes=30, w=0.2)
    assert w_sel.info["w"] == 0.2 and len(w_sel.indices) == 20


def test_unknown_strategy():
    with pytest.raises(ValueError, match="unknown strategy"):
        st.select("bogus", None, st.Pool(PROBS), 1)


def test_fig2_runner(tmp_path):
    from experiments.rad import fig2
    from papers.rad.fig2 import run_fig2

    cfg = fig2.get_config("cpu")
    cfg.n, cfg.seeds, cfg.plot = 2000, (0,), False
    out = run_fig2(cfg, str(tmp_path))
    assert all(out["checks"].values()), out["checks"]
    assert (tmp_path / "results.json").exists() and len(out["rows"]) == len(cfg.accuracies)
