"""Issue 20's ALM-KD switches (OURS): confidence-pooled λ, the Eq. 16 term on a separate batch /
against the plain teacher target, the [0, 1] clip, the confidence-threshold rule; the paper
default unchanged; the Sec. 5 variants runner's AUC and claim verdict."""
import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np
import pytest

from kdjax.methods.alm import config as alm_config
from kdjax.methods.alm import meta as M
from kdjax.methods.alm import pooled as P
from kdjax.methods.alm.loss import kl, perturbed_target
from papers.alm import synthetic_report as R
from papers.alm import variants as V
from tests.test_alm import _batches, _central_fd, _mlp_forward, _mlp_params


def _setup(k=None):
    params = _mlp_params(jax.random.PRNGKey(0))
    batch, val = _batches(jax.random.PRNGKey(1), k=k)
    other, _ = _batches(jax.random.PRNGKey(5), k=k)
    return params, batch, val, other


@pytest.mark.parametrize("hidden", [0, 4])
def test_pooled_lambda_is_a_function_of_confidence_only(hidden):
    phi = P.init_phi(hidden, 0.3)
    phi = jax.tree.map(lambda a: a + 0.5, phi)  # away from the constant initialisation
    # rows 0 and 1: same teacher row and label, other ids and images; row 2: other logits and
    # label, the same p_T(label) = 0.2 (up to rounding); row 3: p_T(label) = 0.7
    p = jnp.array([[0.2, 0.5, 0.3], [0.2, 0.5, 0.3], [0.6, 0.2, 0.2], [0.1, 0.2, 0.7]])
    batch = {"teacher_logits": jnp.log(p), "label": jnp.array([0, 0, 1, 2]),
             "id": jnp.array([4, 9, 1, 0]), "image": jnp.arange(8.0).reshape(4, 2)}
    cfg = M.MetaConfig(lambda_model="confidence", pool_hidden=hidden)
    lam = M.batch_lambda({"phi": phi, "table": jnp.zeros(10)}, batch, cfg)
    np.testing.assert_allclose(P.teacher_confidence(batch["teacher_logits"], batch["label"]),
                               [0.2, 0.2, 0.2, 0.7], rtol=1e-6)
    assert float(lam[0]) == float(lam[1]) and float(lam[0]) != float(lam[3])
    np.testing.assert_allclose(lam[2], lam[0], rtol=1e-6)
    np.testing.assert_allclose(P.pooled_lambda(P.init_phi(hidden, 0.3), jnp.linspace(0, 1, 5)),
                               0.3, rtol=1e-6)  # φ starts at λ = lambda_init everywhere


@pytest.mark.parametrize("hidden,k", [(0, None), (3, None), (0, 2)])
def test_pooled_meta_gradient_matches_finite_differences(hidden, k):
    with jax.enable_x64(True):
        params, batch, val, _ = _setup(k)
        cfg = M.MetaConfig(temperature=2.0, lambda_model="confidence", pool_hidden=hidden,
                           pool_lr=0.7)
        phi = jax.tree.map(lambda a: a.astype(jnp.float64) + 0.3, P.init_phi(hidden, 0.4))
        conf = P.teacher_confidence(batch["teacher_logits"], batch["label"])
        lr = 0.5
        flat, unravel = jax.flatten_util.ravel_pytree(phi)
        f = jax.jit(lambda v: M.meta_objective(_mlp_forward, params,
                                               P.pooled_lambda(unravel(v), conf), batch, val,
                                               lr, cfg))
        fd = _central_fd(f, flat)
        shape = (12,) if k is None else (12, k)
        state = {"phi": phi, "table": jnp.zeros(shape, jnp.float64)}
        new, m = jax.jit(lambda st: M.meta_update(_mlp_forward, params, st, batch, val, lr,
                                                  cfg))(state)
        step = (jax.flatten_util.ravel_pytree(new["phi"])[0] - flat) / -0.7
        np.testing.assert_allclose(step, fd, rtol=1e-5, atol=1e-9)
        assert np.abs(fd).max() > 1e-6  # a real gradient
        # the batch's table rows record g_φ of the new φ; other rows untouched
        np.testing.assert_allclose(new["table"][batch["id"]],
                                   P.pooled_lambda(new["phi"], conf), rtol=1e-12)
        assert float(jnp.abs(new["table"][6:]).max()) == 0.0


def _outer_by_hand(params, batch, val, term, alpha_t, beta=0.1, alpha=0.2):
    c = 3
    lv, _ = _mlp_forward(params, val["image"])
    lt, _ = _mlp_forward(params, term["image"])
    tv = perturbed_target(val["teacher_logits"], val["label"], c, alpha)
    tt = perturbed_target(term["teacher_logits"], term["label"], c, alpha_t)
    return jnp.mean(kl(lv, tv)) + beta * jnp.mean(kl(lt, tt))


def test_outer_train_switches_use_the_named_batch_and_target():
    with jax.enable_x64(True):
        params, batch, val, other = _setup()
        own = M.MetaConfig(outer_train="own")
        sep = M.MetaConfig(outer_train="separate")
        tea = M.MetaConfig(outer_train="teacher")
        o_own = M.outer_objective(_mlp_forward, params, batch, val, own, other)[0]
        o_sep = M.outer_objective(_mlp_forward, params, batch, val, sep, other)[0]
        o_tea = M.outer_objective(_mlp_forward, params, batch, val, tea)[0]
        np.testing.assert_allclose(o_own, _outer_by_hand(params, batch, val, batch, 0.2))
        np.testing.assert_allclose(o_sep, _outer_by_hand(params, batch, val, other, 0.2))
        np.testing.assert_allclose(o_tea, _outer_by_hand(params, batch, val, batch, 0.0))
        assert len({float(o_own), float(o_sep), float(o_tea)}) == 3
        with pytest.raises(ValueError, match="outer_batch"):
            M.outer_objective(_mlp_forward, params, batch, val, sep)
        # the separate term's gradient reaches λ only through θ'(λ): the λ-batch's own
        # targets are no longer in the outer objective
        lam = jnp.full((6,), 0.5, jnp.float64)
        g_sep = M.meta_gradient(_mlp_forward, params, lam, batch, val, 0.5, sep,
                                outer_batch=other)[1]
        g_own = M.meta_gradient(_mlp_forward, params, lam, batch, val, 0.5, own)[1]
        assert not np.allclose(g_sep, g_own)
        g_ll = M.meta_gradient(_mlp_forward, params, lam, batch, val, 0.5,
                               M.MetaConfig(outer_train="separate", meta_grad="last_layer"),
                               head_path=("head",), outer_batch=other)[1]
        assert np.isfinite(np.asarray(g_ll)).all()


def test_clip_keeps_lambda_in_unit_interval():
    cfg = M.MetaConfig(clip="unit", lambda_lr=1.0)
    lam = jnp.full((5,), 0.5)
    new = M.update_lambdas(lam, jnp.array([0, 1, 2]), jnp.array([-10.0, 10.0, 0.1]), cfg)
    np.testing.assert_allclose(new, [1.0, 0.0, 0.4, 0.5, 0.5], rtol=1e-6)


def test_threshold_rule_is_exact():
    conf = jnp.array([0.0, 0.05, 0.0999, 0.1, 0.5, 1.0])
    np.testing.assert_array_equal(P.threshold_lambda(conf, 0.1, 0.9),
                                  np.array([1, 1, 1, 0.9, 0.9, 0.9], np.float32))
    assert P.rule_else(-1.0, 0.9) == 0.9 and P.rule_else(0.0, 0.9) == 0.0


def test_default_is_the_paper_meta_update():
    """The defaults (table λ, Eq. 16 on the λ-batch's own p'_T) give exactly the update written
    out from the paper's formulas (Eq. 6-10, 16)."""
    with jax.enable_x64(True):
        params, batch, val, other = _setup()
        cfg = M.MetaConfig(temperature=2.0, lambda_lr=3.0)
        assert (cfg.lambda_model, cfg.outer_train, cfg.clip) == ("table", "own", "none")
        lam = jax.random.uniform(jax.random.PRNGKey(3), (8,), jnp.float64, 0.1, 0.9)

        def by_hand(lam_b):
            new = M.lookahead(_mlp_forward, params, batch, lam_b, 0.5, 2.0)
            return _outer_by_hand(new, batch, val, batch, 0.2)

        want = lam.at[batch["id"]].add(-3.0 * jax.grad(by_hand)(lam[batch["id"]]))
        got, _ = M.meta_update(_mlp_forward, params, lam, batch, val, 0.5, cfg, None, other)
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want))


def test_config_switches_validate():
    sec = alm_config.section()
    assert (sec.lambda_model, sec.outer_train, sec.clip) == ("table", "own", "none")
    for field, bad in (("lambda_model", "mlp"), ("outer_train", "other"), ("pool_hidden", -1),
                       ("conf_threshold", 1.5)):
        with pytest.raises(ValueError, match=f"alm.{field}"):
            M.MetaConfig(**{field: bad}) if field != "conf_threshold" else \
                _check(field, bad)
    with pytest.raises(ValueError, match="lambda_init"):
        P.init_phi(0, 1.0)


def _check(field, value):
    ok, what = alm_config.CHECKS[field]
    if not ok(value):
        raise ValueError(f"alm.{field}={value!r} must be {what}")


def test_lambda_auc_and_fig4_claim():
    rng = np.random.default_rng(0)
    flipped = rng.random((3, 40)) < 0.3
    lam = rng.random((3, 40))
    auc = V.lambda_auc(lam, flipped)
    for s in range(3):  # brute force: P(λ_flipped > λ_clean) + ½ P(tie)
        a, b = lam[s][flipped[s]], lam[s][~flipped[s]]
        want = np.mean((a[:, None] > b[None]) + 0.5 * (a[:, None] == b[None]))
        assert auc[s] == pytest.approx(want)
    np.testing.assert_allclose(V.lambda_auc(np.ones((3, 40)), flipped), 0.5)
    np.testing.assert_allclose(V.lambda_auc(flipped.astype(float), flipped), 1.0)
    ce = rng.random(10)
    worse = R.fig4_claim(ce - 0.01 + 1e-3 * rng.random(10), ce, ce + 0.001, "claim")
    assert worse["status"] == "claim not reproduced" and worse["on"] == "last"
    assert set(worse) == {"status", "detail", "text", "kind", "on"} and "n=10" in worse["detail"]
    better = R.fig4_claim(ce + 0.02 + 1e-3 * rng.random(10), ce, ce + 0.001, "claim")
    assert better["status"] == "claim reproduced"


@pytest.mark.slow
def test_method_path_runs_each_switch(tmp_path):
    """kdjax.run end to end (tiny digits, 1 epoch): the threshold variant and ALM-KD with the
    confidence-pooled λ, the separate Eq. 16 batch and the clip."""
    from kdjax import run as run_lib
    from tests.test_alm_method import _config
    common = {"data.label_noise": 0.3, "alm.update_every": 2, "loss.kd_weight": 0.5}
    thr = run_lib.run(_config(**common, **{"alm.variant": "threshold",
                                           "alm.conf_threshold": 0.2}), str(tmp_path / "thr"))
    assert 0.0 < thr["test_accuracy"] <= 1.0
    res = run_lib.run(_config(**common, **{"alm.lambda_model": "confidence",
                                           "alm.outer_train": "separate", "alm.pool_lr": 30.0,
                                           "alm.clip": "unit"}), str(tmp_path / "conf"))
    lam = np.load(tmp_path / "conf" / "lambda.npy")
    assert 0.0 < res["test_accuracy"] <= 1.0
    assert ((lam > 0) & (lam < 1)).all() and not np.allclose(lam, 0.5)


def test_sec5_variants_configs_validate():
    from kdjax import config as config_lib
    from kdjax.reproduce.spec import load_config
    for arg in ("cpu", "cpu:combined", "smoke"):
        c = load_config("experiments/alm/sec5_variants.py", arg)
        config_lib.validate(c)
        assert set(c.arm_order) == set(c.arms) and {"ce", "kd", "alm"} <= set(c.arm_order)
        for name in c.arm_order:
            arm = c.arms[name]
            assert arm.kind in V.KINDS, name
            for field in list(arm.get("alm", {})) + list(arm.get("select", {})):
                assert field in c.alm, (name, field)
        assert c.selection.seed0 >= c.seed0 + c.num_seeds  # selection seeds are not reported
    with pytest.raises(ValueError, match="combined"):
        load_config("experiments/alm/sec5_variants.py", "cpu:other")


@pytest.mark.slow
def test_variants_runner_smoke(tmp_path):
    from experiments.alm import sec5_variants
    out = V.run_variants(sec5_variants.get_config("smoke"), str(tmp_path), log=lambda *a: None)
    assert [r["arm"] for r in out["rows"]] == list(sec5_variants.ARMS)
    assert set(out["selection"]) == {"alm_confidence", "threshold"}
    assert out["claim"]["status"].startswith("claim ") and out["paired_rows"]
    oracle = next(r for r in out["rows"] if r["arm"] == "oracle")
    assert oracle["auc_lambda_flipped"].startswith("1.000") and oracle["lambda_flipped"] == 1.0
