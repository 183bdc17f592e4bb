"""Selection strategies of the RAD paper's Sec. 4 behind one interface (SELECT of Alg. 1, line 6).

Each strategy is a function `(rng, pool, b, **params) -> Selection` of the student's view of the
pool: softmax probabilities, penultimate embeddings, the mask of still-available points (unlabelled
and not yet soft-labelled) and, for CORESET, the embeddings of the points already labelled. It
returns the b pool indices whose teacher soft-labels to buy; UNIXKD also returns mixup partners and
coefficients (its queries are mixed inputs).

    UNIFORM        b available points uniformly at random.
    MARGIN         the b lowest student margins (p_top1 − p_top2) (Roth & Small, 2006).
    ENTROPY        the b highest student entropies (Holub et al., 2008).
    CORESET        greedy k-center on embeddings (Sener & Savarese, 2018): repeatedly the available
                   point farthest from every labelled or already chosen point.
    CLUSTER_MARGIN average-linkage agglomerative clusters of the embeddings, computed once
                   (`cluster_embeddings`, bucketed as in D.2 for big pools); per round the k_m =
                   margin_multiple·b lowest-margin points, grouped by cluster, taken round-robin
                   from the clusters in increasing size, a random member each time
                   (Citovsky et al., 2021).
    UNIXKD         uncertainty-aware mixup (Xu et al., 2020; public code xuguodong03/UNIXKD): a
                   random candidate set of B = b/keep_ratio points is ranked by student entropy;
                   query i is x[rank_i] mixed with a random candidate, coefficient
                   λ·sigmoid(sharpness·(i/B − m)), m = (2·b_pure − 1)/(2B), λ ~ Beta(1, 1): the
                   b_pure most uncertain go (almost) unmixed, the rest are mixed. Defaults follow the
                   official runner (batch 64, k = 48, b = 32, w = 1000: keep_ratio 0.75,
                   pure_fraction 2/3, sharpness 1000).
    RAD            Cor. 1 distribution over margin gains, then b points by DepRound (Sec. 3.3).
    RAD_ENTROPY    RAD with entropy gains (D.6).
    RAD with w     RAD with a user-set w (D.5): pass `w=` to `rad`.
    ORACLE_MARGIN  NOT a usable strategy, a bound: the b lowest-margin points among those the
                   teacher labels correctly. It reads the teacher's correctness on the pool
                   (`Pool.teacher_correct`, i.e. the ground-truth labels), which no real
                   selection can; it shows what avoiding every teacher mistake while keeping
                   MARGIN's informativeness could gain. When fewer than b available points are
                   teacher-correct, the rest are the lowest-margin teacher-wrong points.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np

from kdjax.methods import rad as rad_lib

Array = Any


@dataclasses.dataclass
class Pool:
    """The student's view of the pool at one round (all arrays indexed by pool position)."""

    probs: Array                                # (n, K) student softmax
    available: Optional[Array] = None           # (n,) bool; None = all available
    embeddings: Optional[Array] = None          # (n, F) penultimate features
    labeled_embeddings: Optional[Array] = None  # (L, F) CORESET's initial centers
    cluster_ids: Optional[Array] = None         # (n,) int, from `cluster_embeddings`
    teacher_correct: Optional[Array] = None     # (n,) bool; ORACLE_MARGIN only (reads labels)

    def available_mask(self) -> np.ndarray:
        n = np.shape(self.probs)[0]
        return np.ones(n, bool) if self.available is None else np.asarray(self.available, bool)


@dataclasses.dataclass
class Selection:
    indices: np.ndarray                        # (b,) pool positions to query, distinct
    mix_partner: Optional[np.ndarray] = None   # UNIXKD: query i is (1−λ_i)·x[indices_i] + λ_i·x[partner_i]
    mix_lambda: Optional[np.ndarray] = None
    info: dict = dataclasses.field(default_factory=dict)


def _check_budget(b: int, avail: np.ndarray) -> int:
    b = int(b)
    if b < 0:
        raise ValueError(f"budget b must be ≥ 0, got {b}")
    if b > int(avail.sum()):
        raise ValueError(f"budget b={b} exceeds the {int(avail.sum())} available points")
    return b


def _top_b(scores: np.ndarray, avail: np.ndarray, b: int) -> np.ndarray:
    """Indices of the b largest scores among available points (ties: lower index first)."""
    idx = np.flatnonzero(avail)
    order = np.argsort(-scores[idx], kind="stable")[:b]
    return idx[order]


# --------------------------------------------------------------------------------------------


def uniform(rng, pool: Pool, b: int) -> Selection:
    avail = pool.available_mask()
    b = _check_budget(b, avail)
    idx = np.flatnonzero(avail)
    perm = np.asarray(jax.random.permutation(rng, idx.size))
    return Selection(np.sort(idx[perm[:b]]))


def margin(rng, pool: Pool, b: int) -> Selection:
    del rng
    avail = pool.available_mask()
    b = _check_budget(b, avail)
    return Selection(_top_b(np.asarray(rad_lib.margin_gain(pool.probs)), avail, b))


def entropy(rng, pool: Pool, b: int) -> Selection:
    del rng
    avail = pool.available_mask()
    b = _check_budget(b, avail)
    return Selection(_top_b(np.asarray(rad_lib.entropy_gain(pool.probs)), avail, b))


@jax.jit
def _sq_dists(x, centers):
    return jnp.maximum(jnp.sum(x * x, 1)[:, None] - 2 * x @ centers.T
                       + jnp.sum(centers * centers, 1)[None, :], 0.0)


@jax.jit
def _k_center_greedy(emb, avail, min_d, first, b_arr):
    """Greedy k-center: b times, take the available point with the largest distance to its
    nearest center, then make it a center. `first` ≥ 0 forces the first pick (no centers yet)."""
    n = emb.shape[0]

    def body(i, state):
        min_d, avail, chosen = state
        score = jnp.where(avail, min_d, -jnp.inf)
        pick = jnp.where((i == 0) & (first >= 0), first, jnp.argmax(score))
        d = jnp.sum((emb - emb[pick]) ** 2, axis=1)
        min_d = jnp.minimum(min_d, d)
        avail = avail.at[pick].set(False)
        chosen = chosen.at[i].set(pick)
        return min_d, avail, chosen

    chosen = jnp.full(b_arr.shape, -1, jnp.int32)
    _, _, chosen = jax.lax.fori_loop(0, b_arr.shape[0], body, (min_d, avail, chosen))
    del n
    return chosen


def coreset(rng, pool: Pool, b: int) -> Selection:
    avail = pool.available_mask()
    b = _check_budget(b, avail)
    if pool.embeddings is None:
        raise ValueError("coreset needs pool.embeddings")
    emb = jnp.asarray(pool.embeddings, jnp.float32)
    n = emb.shape[0]
    if pool.labeled_embeddings is not None and len(pool.labeled_embeddings):
        cen = jnp.asarray(pool.labeled_embeddings, jnp.float32)
        min_d = jnp.min(_sq_dists(emb, cen), axis=1)
        first = -1
    else:  # no centers yet: a random available point starts (Sener & Savarese)
        min_d = jnp.full((n,), jnp.inf, jnp.float32)
        idx = np.flatnonzero(avail)
        first = int(idx[int(jax.random.randint(rng, (), 0, idx.size))])
    if b == 0:
        return Selection(np.zeros(0, np.int64))
    chosen = _k_center_greedy(emb, jnp.asarray(avail), min_d, jnp.int32(first), jnp.zeros(b))
    return Selection(np.asarray(chosen).astype(np.int64))


def cluster_embeddings(embeddings, num_clusters: int, *, bucket_size: Optional[int] = None,
                       seed: int = 0) -> np.ndarray:
    """Average-linkage agglomerative clustering of the embeddings, computed once (Citovsky et al.).

    With `bucket_size` (D.2's approximation for big pools): a random partition into buckets of that
    size, each clustered into num_clusters·bucket/n clusters (at least 1); ids are global.
    """
    from scipy.cluster.hierarchy import fcluster, linkage

    x = np.asarray(embeddings, np.float64)
    n = x.shape[0]
    if num_clusters < 1 or num_clusters > n:
        raise ValueError(f"num_clusters must be in [1, {n}], got {num_clusters}")

    def hac(block, k):
        if block.shape[0] == 1:
            return np.zeros(1, np.int64)
        z = linkage(block, method="average", metric="euclidean")
        return fcluster(z, t=k, criterion="maxclust").astype(np.int64) - 1

    if bucket_size is None or bucket_size >= n:
        return hac(x, num_clusters)
    perm = np.random.default_rng(seed).permutation(n)
    ids = np.empty(n, np.int64)
    offset = 0
    for start in range(0, n, bucket_size):
        part = perm[start:start + bucket_size]
        k = max(1, round(num_clusters * part.size / n))
        local = hac(x[part], min(k, part.size))
        ids[part] = local + offset
        offset += local.max() + 1
    return ids


def cluster_margin(rng, pool: Pool, b: int, *, margin_multiple: float = 10.0) -> Selection:
    avail = pool.available_mask()
    b = _check_budget(b, avail)
    if pool.cluster_ids is None:
        raise ValueError("cluster_margin needs pool.cluster_ids (see cluster_embeddings)")
    cids = np.asarray(pool.cluster_ids)
    k_m = min(int(avail.sum()), max(b, int(np.ceil(margin_multiple * b))))
    cand = _top_b(np.asarray(rad_lib.margin_gain(pool.probs)), avail, k_m)
    gen = np.random.default_rng(int(jax.random.randint(rng, (), 0, 2**31 - 1)))
    groups = {}
    for i in cand:
        groups.setdefault(int(cids[i]), []).append(int(i))
    # clusters in increasing size (size within the candidates; ties by cluster id)
    order = sorted(groups, key=lambda c: (len(groups[c]), c))
    queues = [list(gen.permutation(groups[c])) for c in order]
    chosen = []
    while len(chosen) < b:
        for q in queues:
            if q and len(chosen) < b:
                chosen.append(int(q.pop()))
    return Selection(np.asarray(chosen, np.int64))


def unixkd(rng, pool: Pool, b: int, *, keep_ratio: float = 0.75, pure_fraction: float = 2 / 3,
           sharpness: float = 1000.0) -> Selection:
    avail = pool.available_mask()
    b = _check_budget(b, avail)
    idx = np.flatnonzero(avail)
    cand_size = min(idx.size, int(np.ceil(b / keep_ratio)))
    k_perm, k_part, k_lam = jax.random.split(rng, 3)
    cand = idx[np.asarray(jax.random.permutation(k_perm, idx.size))[:cand_size]]
    ent = np.asarray(rad_lib.entropy_gain(jnp.asarray(pool.probs)[cand]))
    ranked = cand[np.argsort(-ent, kind="stable")]
    partners = cand[np.asarray(jax.random.permutation(k_part, cand_size))]
    r = np.arange(cand_size, dtype=np.float64)
    b_pure = int(round(pure_fraction * b))
    m = (2 * b_pure - 1) / (2 * cand_size)
    mask = 1.0 / (1.0 + np.exp(-sharpness * (r / cand_size - m)))
    lam = float(jax.random.beta(k_lam, 1.0, 1.0)) * mask
    return Selection(ranked[:b], mix_partner=partners[:b], mix_lambda=lam[:b].astype(np.float32),
                     info={"b_pure": b_pure, "candidates": cand_size})


def rad(rng, pool: Pool, b: int, *, num_mistakes: float, w: Optional[float] = None,
        gain: str = "margin", overflow: str = "rescale") -> Selection:
    """RAD (Cor. 1 + DepRound) on the available points; m and the default w = 1 − m/n refer to the
    available pool (n = its size)."""
    avail = pool.available_mask()
    b = _check_budget(b, avail)
    gain_fn = {"margin": rad_lib.margin_gain, "entropy": rad_lib.entropy_gain}.get(gain)
    if gain_fn is None:
        raise ValueError(f"gain must be 'margin' or 'entropy', got {gain!r}")
    idx = np.flatnonzero(avail)
    g = np.asarray(gain_fn(jnp.asarray(pool.probs)[idx]))
    m = min(float(num_mistakes), float(idx.size))
    sol = rad_lib.rad_distribution(g, m, w)
    k_rng, _ = jax.random.split(rng)
    mask = np.asarray(rad_lib.sample_queries(k_rng, sol.p, b, overflow=overflow))
    info = {"k_star": int(sol.k_star), "value": float(sol.value),
            "w": float(1 - m / idx.size if w is None else w), "num_mistakes": m}
    return Selection(idx[mask], info=info)


def rad_entropy(rng, pool: Pool, b: int, *, num_mistakes: float, w: Optional[float] = None,
                overflow: str = "rescale") -> Selection:
    return rad(rng, pool, b, num_mistakes=num_mistakes, w=w, gain="entropy", overflow=overflow)


def oracle_margin(rng, pool: Pool, b: int) -> Selection:
    """The bound of ORACLE_MARGIN (module docstring): lowest student margins among the points
    the teacher gets right; never a real selection (it reads the ground truth)."""
    del rng
    avail = pool.available_mask()
    b = _check_budget(b, avail)
    if pool.teacher_correct is None:
        raise ValueError("oracle_margin needs pool.teacher_correct (the teacher's correctness "
                         "on the pool)")
    correct = np.asarray(pool.teacher_correct, bool)
    gains = np.asarray(rad_lib.margin_gain(pool.probs))
    first = _top_b(gains, avail & correct, min(b, int((avail & correct).sum())))
    rest = _top_b(gains, avail & ~correct, b - first.size)
    return Selection(np.concatenate([first, rest]).astype(np.int64),
                     info={"teacher_wrong_filled": int(rest.size)})


STRATEGIES: dict[str, Callable[..., Selection]] = {
    "uniform": uniform,
    "margin": margin,
    "entropy": entropy,
    "coreset": coreset,
    "cluster_margin": cluster_margin,
    "unixkd": unixkd,
    "rad": rad,
    "rad_entropy": rad_entropy,
    "oracle_margin": oracle_margin,
}
# Strategies that read the ground truth through the teacher's correctness: bounds, not methods.
ORACLES = ("oracle_margin",)


def select(name: str, rng, pool: Pool, b: int, **params) -> Selection:
    """SELECT(X̄, θ, b) of Alg. 1 by strategy name (see STRATEGIES)."""
    fn = STRATEGIES.get(name)
    if fn is None:
        raise ValueError(f"unknown strategy {name!r}; choose from {sorted(STRATEGIES)}")
    return fn(rng, pool, b, **params)
