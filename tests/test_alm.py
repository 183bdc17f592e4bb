"""ALM-KD (kdjax.methods.alm loss / meta / teachers): meta-gradient vs finite differences,
Hinton-KD equivalence, last-layer approximation, λ on flipped labels, baselines."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from kdjax import losses
from kdjax.methods.alm import loss as L
from kdjax.methods.alm import meta as M
from kdjax.methods.alm import teachers as T


def _mlp_forward(params, x):
    h = jnp.tanh(x @ params["body"]["kernel"] + params["body"]["bias"])
    return h @ params["head"]["kernel"] + params["head"]["bias"], h


def _mlp_params(rng, d=4, h=5, c=3, dtype=jnp.float64):
    k1, k2, k3, k4 = jax.random.split(rng, 4)
    n = lambda k, s: jax.random.normal(k, s, dtype)
    return {"body": {"kernel": n(k1, (d, h)) * 0.7, "bias": n(k2, (h,)) * 0.1},
            "head": {"kernel": n(k3, (h, c)) * 0.7, "bias": n(k4, (c,)) * 0.1}}


def _batches(rng, n=6, nv=5, d=4, c=3, k=None, dtype=jnp.float64):
    ks = jax.random.split(rng, 6)
    tshape = (n, c) if k is None else (n, k, c)
    vshape = (nv, c) if k is None else (nv, k, c)
    batch = {"image": jax.random.normal(ks[0], (n, d), dtype),
             "label": jax.random.randint(ks[1], (n,), 0, c),
             "id": jnp.arange(n),
             "teacher_logits": 2.0 * jax.random.normal(ks[2], tshape, dtype)}
    val = {"image": jax.random.normal(ks[3], (nv, d), dtype),
           "label": jax.random.randint(ks[4], (nv,), 0, c),
           "teacher_logits": 2.0 * jax.random.normal(ks[5], vshape, dtype)}
    return batch, val


def _central_fd(f, x, eps=1e-6):
    x = np.asarray(x, np.float64)
    g = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[idx] = eps
        g[idx] = (float(f(jnp.asarray(x + e))) - float(f(jnp.asarray(x - e)))) / (2 * eps)
    return g


@pytest.mark.parametrize("k", [None, 2])
def test_exact_meta_gradient_matches_finite_differences(k):
    with jax.enable_x64(True):
        params = _mlp_params(jax.random.PRNGKey(0))
        batch, val = _batches(jax.random.PRNGKey(1), k=k)
        shape = (6,) if k is None else (6, k)
        lam = jax.random.uniform(jax.random.PRNGKey(2), shape, jnp.float64, 0.1, 0.9)
        cfg = M.MetaConfig(temperature=2.0, meta_grad="exact")
        lr = 0.5  # a large step makes the second-order (through-the-look-ahead) part matter
        f = jax.jit(lambda l: M.meta_objective(_mlp_forward, params, l, batch, val, lr, cfg))
        _, g = M.meta_gradient(_mlp_forward, params, lam, batch, val, lr, cfg)
        fd = _central_fd(f, lam)
        assert g.dtype == jnp.float64
        np.testing.assert_allclose(np.asarray(g), fd, rtol=1e-6, atol=1e-9)
        assert np.abs(fd).max() > 1e-4  # not a vacuous comparison


def test_meta_gradient_equals_eq9_dot_product_form():
    """Eq. 9: ∂O/∂λ_i = −η/n·∇_θ'O(θ')·(∇_θ τ²KL_i − ∇_θ CE_i) (single teacher, β = 0)."""
    with jax.enable_x64(True):
        params = _mlp_params(jax.random.PRNGKey(3))
        batch, val = _batches(jax.random.PRNGKey(4))
        lam = jnp.full((6,), 0.4, jnp.float64)
        cfg = M.MetaConfig(temperature=3.0, beta=0.0)
        lr, n = 0.3, 6
        _, g = M.meta_gradient(_mlp_forward, params, lam, batch, val, lr, cfg)
        new = M.lookahead(_mlp_forward, params, batch, lam, lr, cfg.temperature)
        g_out = jax.grad(lambda p: M.outer_objective(_mlp_forward, p, batch, val, cfg)[0])(new)

        def diff_i(p, i):
            logits, _ = _mlp_forward(p, batch["image"])
            ce, kl = L.loss_terms(logits, batch["label"], batch["teacher_logits"], cfg.temperature)
            return kl[i, 0] - ce[i]

        flat = lambda t: jnp.concatenate([x.ravel() for x in jax.tree.leaves(t)])
        ref = [-lr / n * flat(g_out) @ flat(jax.grad(diff_i)(params, i)) for i in range(n)]
        np.testing.assert_allclose(np.asarray(g), np.asarray(ref), rtol=1e-9, atol=1e-12)


def test_fixed_lambda_equals_hinton_kd():
    rng = np.random.default_rng(0)
    logits = jnp.asarray(rng.normal(size=(16, 10)) * 3, jnp.float32)
    t = jnp.asarray(rng.normal(size=(16, 10)) * 3, jnp.float32)
    y = jnp.asarray(rng.integers(0, 10, 16), jnp.int32)
    for lam, tau in [(0.9, 4.0), (0.1, 1.0), (0.5, 2.5)]:
        ours = L.student_loss(logits, y, t, jnp.full((16,), lam), tau)
        ref = losses.kd_loss(logits, y, t, temperature=tau, alpha=lam)
        np.testing.assert_allclose(np.asarray(ours), np.asarray(ref), rtol=2e-5, atol=1e-6)
        # Eq. 12 with K identical teachers and λ on only one of them is the same loss.
        t3 = jnp.stack([t, t, t], axis=1)
        lam3 = jnp.zeros((16, 3)).at[:, 1].set(lam)
        np.testing.assert_allclose(np.asarray(L.student_loss(logits, y, t3, lam3, tau)),
                                   np.asarray(ref), rtol=2e-5, atol=1e-6)
        dg = T.dgkd_loss(logits, y, t[:, None], lam, temperature=tau)
        np.testing.assert_allclose(np.asarray(dg), np.asarray(ref), rtol=2e-5, atol=1e-6)


def test_multi_teacher_loss_by_hand():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(4, 5))
    t = rng.normal(size=(4, 2, 5))
    y = rng.integers(0, 5, 4)
    lam = rng.uniform(0, 1, (4, 2))
    tau = 2.0

    def sm(z):
        e = np.exp(z - z.max(-1, keepdims=True))
        return e / e.sum(-1, keepdims=True)

    ps = sm(logits / tau)
    ref = []
    for i in range(4):
        ce = -np.log(sm(logits[i])[y[i]])
        kls = [np.sum(sm(t[i, k] / tau) * (np.log(sm(t[i, k] / tau)) - np.log(ps[i])))
               for k in range(2)]
        ref.append((1 - lam[i].max()) * ce + tau**2 * (lam[i] * np.array(kls)).sum())
    with jax.enable_x64(True):
        ours = L.student_loss(jnp.asarray(logits), jnp.asarray(y), jnp.asarray(t),
                              jnp.asarray(lam), tau)
        np.testing.assert_allclose(np.asarray(ours), ref, rtol=1e-10)


def _fixed_features(x):
    w = jnp.asarray(np.random.default_rng(7).normal(size=(4, 6)), x.dtype)
    return jnp.tanh(x @ w)


def test_last_layer_equals_exact_when_only_head_trainable():
    with jax.enable_x64(True):
        forward = lambda p, x: (_fixed_features(x) @ p["head"]["kernel"] + p["head"]["bias"],
                                _fixed_features(x))
        params = {"head": {"kernel": jax.random.normal(jax.random.PRNGKey(0), (6, 3), jnp.float64),
                           "bias": jnp.zeros((3,), jnp.float64)}}
        batch, val = _batches(jax.random.PRNGKey(5))
        lam = jax.random.uniform(jax.random.PRNGKey(6), (6,), jnp.float64)
        path = M.find_head_path(params, 6, 3)
        assert path == ("head",)
        ex = M.meta_gradient(forward, params, lam, batch, val, 0.2, M.MetaConfig())
        ll = M.meta_gradient(forward, params, lam, batch, val, 0.2,
                               M.MetaConfig(meta_grad="last_layer"), head_path=path)
        np.testing.assert_allclose(np.asarray(ll[0]), np.asarray(ex[0]), rtol=1e-12)
        np.testing.assert_allclose(np.asarray(ll[1]), np.asarray(ex[1]), rtol=1e-9, atol=1e-14)
        # On the full MLP the approximation differs (it ignores the body's look-ahead).
        mp = _mlp_params(jax.random.PRNGKey(0), h=6)
        ex2 = M.meta_gradient(_mlp_forward, mp, lam, batch, val, 0.2, M.MetaConfig())[1]
        ll2 = M.meta_gradient(_mlp_forward, mp, lam, batch, val, 0.2,
                                M.MetaConfig(meta_grad="last_layer"), head_path=("head",))[1]
        assert not np.allclose(np.asarray(ex2), np.asarray(ll2), rtol=1e-3)


def _blobs(rng, n, means):
    y = rng.integers(0, len(means), n)
    x = means[y] + rng.normal(size=(n, 2))
    # Bayes posterior logits for equal-covariance Gaussians: an independent, calibrated teacher.
    t = -0.5 * ((x[:, None, :] - means[None]) ** 2).sum(-1)
    return x.astype(np.float32), y.astype(np.int32), t.astype(np.float32)


@pytest.mark.parametrize("meta_grad", ["exact", "last_layer"])
def test_lambda_rises_on_flipped_labels(meta_grad):
    rng = np.random.default_rng(0)
    means = np.array([[0.0, 2.5], [2.2, -1.3], [-2.2, -1.3]])
    x, y, t = _blobs(rng, 400, means)
    xv, yv, tv = _blobs(rng, 200, means)
    flipped = rng.random(400) < 0.2
    y_noisy = np.where(flipped, (y + rng.integers(1, 3, 400)) % 3, y).astype(np.int32)

    def forward(p, xx):
        h = jax.nn.relu(xx @ p["Dense_0"]["kernel"] + p["Dense_0"]["bias"])
        return h @ p["Dense_1"]["kernel"] + p["Dense_1"]["bias"], h

    k = jax.random.split(jax.random.PRNGKey(0), 2)
    params = {"Dense_0": {"kernel": jax.random.normal(k[0], (2, 16)) * 0.7, "bias": jnp.zeros(16)},
              "Dense_1": {"kernel": jax.random.normal(k[1], (16, 3)) * 0.3, "bias": jnp.zeros(3)}}
    cfg = M.MetaConfig(temperature=1.0, lambda_lr=20.0, update_every=1, lambda_init=0.5,
                        meta_grad=meta_grad)
    tx = optax.sgd(0.1, momentum=0.9)
    step = jax.jit(M.make_alm_step(forward, tx, lambda s: 0.1, cfg,
                                     head_path=M.find_head_path(params, 16, 3)))
    opt_state = tx.init(params)
    lam = M.init_lambdas(400, value=cfg.lambda_init)
    val = {"image": jnp.asarray(xv), "label": jnp.asarray(yv), "teacher_logits": jnp.asarray(tv)}
    for s in range(200):
        ids = rng.choice(400, 50, replace=False)
        batch = {"image": jnp.asarray(x[ids]), "label": jnp.asarray(y_noisy[ids]),
                 "id": jnp.asarray(ids), "teacher_logits": jnp.asarray(t[ids])}
        params, opt_state, lam, _ = step(params, opt_state, lam, jnp.asarray(s), batch, val)
    lam = np.asarray(lam)
    assert lam[flipped].mean() > cfg.lambda_init + 0.05, lam[flipped].mean()
    assert lam[flipped].mean() > lam[~flipped].mean() + 0.1, (lam[flipped].mean(),
                                                              lam[~flipped].mean())


def test_step_updates_lambda_only_every_L_and_clips():
    params = _mlp_params(jax.random.PRNGKey(0), dtype=jnp.float32)
    batch, val = _batches(jax.random.PRNGKey(1), dtype=jnp.float32)
    cfg = M.MetaConfig(update_every=3, lambda_lr=1e6, clip="unit")
    tx = optax.sgd(0.1)
    step = jax.jit(M.make_alm_step(_mlp_forward, tx, lambda s: 0.1, cfg))
    lam = M.init_lambdas(10, value=0.5)
    opt = tx.init(params)
    changed = []
    for t in range(6):
        before = lam
        params, opt, lam, m = step(params, opt, lam, jnp.asarray(t), batch, val)
        changed.append(bool(jnp.any(before != lam)))
    assert changed == [True, False, False, True, False, False]
    assert float(lam.min()) >= 0.0 and float(lam.max()) <= 1.0
    np.testing.assert_array_equal(np.asarray(lam[6:]), 0.5)  # ids not in the batch untouched


def test_update_lambdas_masks_padding_and_adds_duplicates():
    cfg = M.MetaConfig(lambda_lr=1.0)
    lam = M.init_lambdas(4, value=0.0)
    out = M.update_lambdas(lam, jnp.array([1, 1, 2]), jnp.array([-1.0, -2.0, -5.0]), cfg,
                             mask=jnp.array([1, 1, 0]))
    np.testing.assert_allclose(np.asarray(out), [0.0, 3.0, 0.0, 0.0])


def test_teacher_checkpoints_and_dgkd_mask():
    params = [_mlp_params(jax.random.PRNGKey(i), dtype=jnp.float32) for i in range(3)]
    x = np.random.default_rng(0).normal(size=(7, 4)).astype(np.float32)
    out = T.teacher_logits_from_checkpoints(_mlp_forward, params, x, batch_size=3)
    assert out.shape == (7, 3, 3)
    np.testing.assert_allclose(out[:, 2], np.asarray(_mlp_forward(params[2], x)[0]), rtol=1e-5)
    for i in range(20):
        keep = T.dgkd_keep_mask(jax.random.PRNGKey(i), 3, 0.9)
        assert keep.any()
    assert T.takd_hops(["wrn_16_4", "wrn_16_3", "wrn_16_1"]) == [
        ("wrn_16_4", "wrn_16_3"), ("wrn_16_3", "wrn_16_1")]


def test_bad_input_raises():
    with pytest.raises(ValueError, match="clip"):
        M.MetaConfig(clip="zero_one")
    with pytest.raises(ValueError, match="meta_grad"):
        M.MetaConfig(meta_grad="approx")
    with pytest.raises(ValueError, match="lambda shape"):
        L.student_loss(jnp.zeros((4, 3)), jnp.zeros(4, jnp.int32), jnp.zeros((4, 2, 3)),
                         jnp.zeros((4,)), 1.0)
    with pytest.raises(ValueError, match="head_path"):
        M.meta_gradient(_mlp_forward, _mlp_params(jax.random.PRNGKey(0), dtype=jnp.float32),
                          jnp.zeros(6), *_batches(jax.random.PRNGKey(0), dtype=jnp.float32), 0.1,
                          M.MetaConfig(meta_grad="last_layer"))
    with pytest.raises(ValueError, match="linear head"):
        M.find_head_path({"a": {"kernel": jnp.zeros((2, 3))}, "b": {"kernel": jnp.zeros((2, 3))}},
                         2, 3)
    with pytest.raises(ValueError, match="TAKD"):
        T.takd_hops(["only"])


def test_loss_fn_adapter_reads_lambda_from_batch_or_example_state():
    rng = np.random.default_rng(2)
    logits = jnp.asarray(rng.normal(size=(5, 4)), jnp.float32)
    batch = {"label": jnp.asarray(rng.integers(0, 4, 5)),
             "teacher_logits": jnp.asarray(rng.normal(size=(5, 4)), jnp.float32)}
    lam = jnp.asarray(rng.uniform(size=5), jnp.float32)
    ref = L.student_loss(logits, batch["label"], batch["teacher_logits"], lam, 2.0)
    fn = L.make_student_loss(2.0)
    np.testing.assert_allclose(fn(logits, None, {**batch, "lambda": lam}), ref, rtol=1e-6)
    np.testing.assert_allclose(fn(logits, None, {**batch, "example_state": {"lambda": lam}}), ref,
                               rtol=1e-6)
    fixed = L.make_student_loss(2.0, lam=jnp.float32(0.3))
    np.testing.assert_allclose(fixed(logits, None, batch), L.student_loss(
        logits, batch["label"], batch["teacher_logits"], jnp.full((5,), 0.3), 2.0), rtol=1e-6)
