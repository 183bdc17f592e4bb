"""DepRound (Alg. 2): exact size, exact marginals, and the exact joint law for tiny pools."""
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from kdjax.methods.rad import dependent_rounding as dr
from kdjax.methods.rad import depround  # re-exported

# ----------------------------------------------------------------------------- reference


def alg2_exact(q):
    """Exact law of Alg. 2 (as printed in App. B) when pairs are chosen along a binary tree over the
    indices: at level l, inside each block of 2^(l+1) indices, the fractional entry of the left half
    is paired with that of the right half. Returns {frozenset: probability}."""
    n = len(q)
    size = 1 << max(0, (n - 1).bit_length())
    states = [(np.concatenate([np.asarray(q, float), np.zeros(size - n)]), 1.0)]
    frac = lambda v: [i for i in range(len(v)) if 0 < v[i] < 1]  # noqa: E731
    width = 1
    while width < size:
        new_states = []
        for v, pr in states:
            branches = [(v, pr)]
            for start in range(0, size, 2 * width):
                nxt = []
                for vv, pp in branches:
                    left = [i for i in frac(vv) if start <= i < start + width]
                    right = [i for i in frac(vv) if start + width <= i < start + 2 * width]
                    if not left or not right:
                        nxt.append((vv, pp))
                        continue
                    i, j = left[0], right[0]
                    alpha, beta = min(1 - vv[i], vv[j]), min(vv[i], 1 - vv[j])
                    a = vv.copy()
                    a[i], a[j] = vv[i] + alpha, vv[j] - alpha
                    b = vv.copy()
                    b[i], b[j] = vv[i] - beta, vv[j] + beta
                    nxt.append((a, pp * beta / (alpha + beta)))
                    nxt.append((b, pp * alpha / (alpha + beta)))
                branches = nxt
            new_states.extend(branches)
        states = new_states
        width *= 2
    law = {}
    for v, pr in states:
        fr = frac(v)
        assert len(fr) <= 1
        outcomes = [(v, pr)]
        if fr:  # Σq not an integer: the last fraction is rounded on its own
            up, down = v.copy(), v.copy()
            up[fr[0]], down[fr[0]] = 1, 0
            outcomes = [(up, pr * v[fr[0]]), (down, pr * (1 - v[fr[0]]))]
        for vv, pp in outcomes:
            key = frozenset(np.flatnonzero(vv[:n] > 0.5).tolist())
            law[key] = law.get(key, 0.0) + pp
    return law


def _draws(q, num, seed=0):
    keys = jax.random.split(jax.random.key(seed), num)
    return np.asarray(jax.vmap(dr._depround_jit, in_axes=(0, None))(keys, np.asarray(q, np.float32)))


# ----------------------------------------------------------------------------- tests


def test_reference_law_has_exact_marginals_and_size():
    q = np.array([0.25, 0.5, 0.75, 0.125, 0.875, 0.5, 1.0, 0.0, 0.375, 0.625])  # Σ = 5
    law = alg2_exact(q)
    assert sum(law.values()) == pytest.approx(1.0)
    assert all(len(s) == 5 for s in law)
    marg = np.zeros(len(q))
    for s, pr in law.items():
        marg[list(s)] += pr
    np.testing.assert_allclose(marg, q, atol=1e-12)


@pytest.mark.parametrize("q", [
    [0.25, 0.5, 0.75, 0.125, 0.875, 0.5],          # Σ = 3, n = 6 (padding path)
    [0.5, 0.5, 0.5, 0.25, 0.25],                   # Σ = 2, n = 5
    [0.3, 0.6, 0.45, 0.15, 0.8, 0.2, 0.5],         # Σ = 3, n = 7
    [0.3, 0.4, 0.5],                               # Σ = 1.2: size 1 or 2
])
def test_joint_law_matches_exact_enumeration(q):
    """Chi-square of the implementation's subset frequencies against the exact Alg. 2 law."""
    law = alg2_exact(q)
    num = 20000
    masks = _draws(q, num, seed=len(q))
    counts = {}
    for row in masks:
        key = frozenset(np.flatnonzero(row).tolist())
        counts[key] = counts.get(key, 0) + 1
    assert set(counts) <= set(law), "drew a subset Alg. 2 cannot produce"
    keys = sorted(law, key=sorted)
    obs = np.array([counts.get(k, 0) for k in keys], float)
    exp = np.array([law[k] for k in keys]) * num
    _, pval = stats.chisquare(obs, exp)
    assert pval > 1e-4


def test_exact_size_and_marginals_statistically():
    rng = np.random.default_rng(0)
    n, b = 37, 10
    q = rng.random(n)
    q = q / q.sum() * b
    assert q.max() < 1
    num = 20000
    masks = _draws(q, num)
    assert np.all(masks.sum(1) == b)
    freq = masks.mean(0)
    z = (freq - q) / np.sqrt(q * (1 - q) / num)
    assert np.max(np.abs(z)) < 4.5, z  # Bonferroni over 37 entries at ≈ 2.5e-4
    # negative correlation, a property of dependent rounding: P(i, j) ≤ q_i q_j (+ noise)
    joint = (masks[:, :5].T.astype(float) @ masks[:, :5]) / num
    outer = np.outer(q[:5], q[:5])
    off = ~np.eye(5, dtype=bool)
    assert np.all(joint[off] <= outer[off] + 4 * np.sqrt(outer[off] / num))


def test_integral_entries_and_large_pool():
    q = np.zeros(20_003, np.float32)
    q[::7] = 0.5
    q[1] = 1.0
    q[3] = q[5] = 0.5  # Σ = 0.5·2858 + 1 + 1 = 1431
    total = q.sum()
    assert total == int(total)
    for seed in range(3):
        mask = np.asarray(depround(jax.random.key(seed), q))
        assert mask.sum() == int(total)
        assert mask[1] and not mask[2]
        assert np.all(mask[q == 0] == 0)


def test_non_integer_total_rounds_randomly():
    q = np.array([0.3, 0.4, 0.5, 0.6], np.float32)  # Σ = 1.8
    masks = _draws(q, 8000, seed=3)
    sizes = masks.sum(1)
    assert set(np.unique(sizes)) <= {1, 2}
    assert sizes.mean() == pytest.approx(1.8, abs=0.03)


def test_float64_and_size_one():
    q = np.array([0.25, 0.75, 0.5, 0.5])
    with jax.enable_x64(True):
        mask = depround(jax.random.key(0), q)
    assert mask.sum() == 2
    assert np.asarray(depround(jax.random.key(0), np.array([1.0]))).tolist() == [True]
    assert np.asarray(depround(jax.random.key(0), np.array([0.0]))).tolist() == [False]


def test_bad_q_raises():
    key = jax.random.key(0)
    for bad, msg in [([0.5, -0.1], "≥ 0"), ([0.5, 1.2], "≤ 1"), ([0.5, np.nan], "NaN"),
                     (np.ones((2, 2)) * 0.5, "1-D"), ([], "1-D")]:
        with pytest.raises(ValueError, match=msg):
            depround(key, np.asarray(bad, np.float32))


def test_sharded_depround():
    mesh = jax.sharding.Mesh(np.array(jax.devices()), ("pool",))
    rng = np.random.default_rng(1)
    n, b = 64, 20
    q = rng.random(n)
    q = (q / q.sum() * b).astype(np.float32)
    assert q.max() < 1
    total = b
    num = 1500
    masks = np.stack([np.asarray(dr.depround_sharded(jax.random.key(s), q, mesh=mesh,
                                                     axis_name="pool")) for s in range(num)])
    assert np.all(masks.sum(1) == total)
    freq = masks.mean(0)
    inner = (q > 0) & (q < 1)
    z = (freq[inner] - q[inner]) / np.sqrt(q[inner] * (1 - q[inner]) / num)
    assert np.max(np.abs(z)) < 4.5
    with pytest.raises(ValueError, match="divisible"):
        dr.depround_sharded(jax.random.key(0), q[:60], mesh=mesh, axis_name="pool")


def test_enumeration_helper_matches_itself_on_all_binary_vectors():
    """Integral q is returned unchanged, whatever the pattern (n = 5, all 32 vectors)."""
    for bits in itertools.product([0.0, 1.0], repeat=5):
        q = np.array(bits, np.float32)
        np.testing.assert_array_equal(np.asarray(depround(jax.random.key(0), q)), q > 0.5)


# ---------------------------------- the Python-unrolled tree the scan replaced (as at 3e41f19)


def _unrolled_combine(fl, fr, u):
    act_l, act_r = (fl > 0) & (fl < 1), (fr > 0) & (fr < 1)
    both = act_l & act_r
    s = fl + fr
    le1 = s <= 1
    safe_s = jnp.where(both & le1, s, 1)
    safe_2s = jnp.where(both & ~le1, 2 - s, 1)
    p1 = jnp.where(le1, fl / safe_s, (1 - fr) / safe_2s)
    first = u < p1
    carry_single = act_l & ~act_r
    carry = jnp.where(both, jnp.where(le1, first, ~first), carry_single)
    f_up = jnp.where(both, jnp.where(le1, s, s - 1), jnp.where(carry_single, fl, fr))
    fin = jnp.where(both, ~le1, jnp.where(carry_single, fr, fl) >= 0.5)
    return f_up, carry, fin


def _unrolled_tree_up(key, f):
    """Level by level in Python, each level padded to even length, level l drawing its own
    uniform(fold_in(key, l), (pairs,))."""
    levels, lvl = [], 0
    while f.shape[0] > 1:
        if f.shape[0] % 2:
            f = jnp.concatenate([f, jnp.zeros((1,), f.dtype)])
        pairs = f.reshape(-1, 2)
        u = jax.random.uniform(jax.random.fold_in(key, lvl), (pairs.shape[0],), f.dtype)
        f, carry, fin = _unrolled_combine(pairs[:, 0], pairs[:, 1], u)
        levels.append((carry, fin))
        lvl += 1
    return f[0], levels


def _unrolled_tree_down(root_val, levels, n):
    val = jnp.reshape(root_val, (1,))
    sizes = [n]
    while sizes[-1] > 1:
        sizes.append((sizes[-1] + 1) // 2)
    for (carry, fin), size in zip(reversed(levels), reversed(sizes[:len(levels)])):
        left = jnp.where(carry, val, fin)
        right = jnp.where(carry, fin, val)
        val = jnp.stack([left, right], axis=1).reshape(-1)[:size]
    return val


def _unrolled_round_root(key, f):
    tol = 1e-4 if f.dtype == jnp.float32 else 1e-9
    u = jax.random.uniform(jax.random.fold_in(key, 1 << 20), (), f.dtype)
    return jnp.where(f <= tol, False, jnp.where(f >= 1 - tol, True, u < f))


@jax.jit
def _unrolled_depround(key, q):
    q = jnp.clip(jnp.nan_to_num(q, nan=0.0), 0, 1)
    if q.shape[0] == 1:
        return _unrolled_round_root(key, q[0]).reshape(1)
    root, levels = _unrolled_tree_up(key, q)
    return _unrolled_tree_down(_unrolled_round_root(key, root), levels, q.shape[0])


def test_the_scan_draws_exactly_what_the_unrolled_tree_drew():
    """The scan over levels gives the masks of the Python-unrolled tree it replaced, level by
    level with its own draws (so results of earlier runs stay valid): sizes around powers of
    two, integral and fractional totals, several seeds."""
    for n in (1, 2, 7, 8, 1001):
        rng = np.random.default_rng(n)
        for q in (rng.uniform(size=n), rng.dirichlet(np.ones(n)) * max(1, n // 3)):
            q = jnp.asarray(np.clip(q, 0, 1), jnp.float32)
            for seed in range(3):
                key = jax.random.key(seed)
                np.testing.assert_array_equal(np.asarray(dr.depround(key, q)),
                                              np.asarray(_unrolled_depround(key, q)))


def test_sharded_scan_draws_what_the_unrolled_sharded_tree_drew():
    from jax.sharding import Mesh, PartitionSpec as P
    devices = np.array(jax.devices()[:4])
    mesh = Mesh(devices, ("data",))

    def local(key, ql):
        ql = jnp.clip(jnp.nan_to_num(ql, nan=0.0), 0, 1)
        idx = jax.lax.axis_index("data")
        root, levels = _unrolled_tree_up(jax.random.fold_in(key, idx + 1), ql)
        roots = jax.lax.all_gather(root, "data")
        top_key = jax.random.fold_in(key, 0)
        top_root, top_levels = _unrolled_tree_up(top_key, roots)
        finals = _unrolled_tree_down(_unrolled_round_root(top_key, top_root), top_levels,
                                     len(devices))
        return _unrolled_tree_down(finals[idx], levels, ql.shape[0])

    reference = jax.jit(jax.shard_map(local, mesh=mesh, in_specs=(P(), P("data")),
                                      out_specs=P("data"), check_vma=False))
    for n in (12, 100):
        q = np.random.default_rng(n).uniform(size=n).astype(np.float32)
        for seed in range(2):
            key = jax.random.key(seed)
            np.testing.assert_array_equal(
                np.asarray(dr.depround_sharded(key, q, mesh=mesh, axis_name="data")),
                np.asarray(reference(key, jnp.asarray(q))))
