"""ALM-KD Sec. 5 synthetic experiment (papers.alm.synthetic)."""
import json
import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from kdjax.methods.alm.meta import MetaConfig
from papers.alm import synthetic as S


def _small_data_cfg():
    d = S.default_data_config()
    d.n_train, d.n_val, d.n_test = 400, 60, 80
    return d


def test_make_data_flips_exactly_the_fraction():
    d = S.default_data_config()
    out = S.make_data(3, d)
    assert out["x_train"].shape == (8100, 14) and out["x_val"].shape == (900, 14)
    assert out["x_test"].shape == (1000, 14)
    assert out["flipped"].sum() == 810
    assert np.all(out["y_train"][out["flipped"]] != out["y_train_clean"][out["flipped"]])
    assert np.all(out["y_train"][~out["flipped"]] == out["y_train_clean"][~out["flipped"]])
    assert set(np.unique(out["y_train"])) == set(range(20))
    np.testing.assert_allclose(out["x_train"].mean(0), 0.0, atol=1e-4)
    again = S.make_data(3, d)
    np.testing.assert_array_equal(again["y_train"], out["y_train"])  # deterministic per seed


def test_make_data_rejects_too_few_informative_features():
    d = S.default_data_config()
    d.n_informative = 4  # 20 classes need 2**n_informative >= 20
    with pytest.raises(ValueError, match="n_informative"):
        S.make_data(0, d)


def test_fig3_table_and_summary_by_brute_force():
    rng = np.random.default_rng(0)
    s, n, c = 3, 50, 4
    lam = rng.normal(size=(s, n))
    t = rng.normal(size=(s, n, c)) * 3
    y = rng.integers(0, c, (s, n))
    fl = rng.random((s, n)) < 0.3
    rows = S.fig3_table(lam, t, y, fl, n_buckets=4)
    p = np.exp(t - t.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    for k, row in enumerate(rows):
        for name, grp in (("noisy", fl), ("clean", ~fl)):
            per = []
            for i in range(s):
                sel = [j for j in range(n) if grp[i, j] and min(int(p[i, j, y[i, j]] * 4), 3) == k]
                if sel:
                    per.append(np.mean([lam[i, j] for j in sel]))
            if per:
                assert row[f"lambda_{name}"]["mean"] == pytest.approx(np.mean(per), rel=1e-6)
                if len(per) > 1:
                    assert row[f"lambda_{name}"]["sem"] == pytest.approx(
                        np.std(per, ddof=1) / np.sqrt(len(per)), rel=1e-6)
    summ = S.lambda_summary(lam, t, y, fl)
    diff = [lam[i][fl[i]].mean() - lam[i][~fl[i]].mean() for i in range(s)]
    assert summ["noisy_minus_clean"]["mean"] == pytest.approx(np.mean(diff), rel=1e-6)
    assert summ["frac_seeds_noisy_gt_clean"] == pytest.approx(np.mean(np.array(diff) > 0))


def test_vmapped_training_equals_per_seed_runs_and_alm_moves_lambda():
    d = _small_data_cfg()
    t = S.default_recipe()
    t.epochs, t.batch_size = 2, 50
    data = S.make_data_stack([0, 1], d)
    dj = {k: jnp.asarray(data[k]) for k in ("x_train", "y_train", "x_val", "y_val", "x_test",
                                             "y_test")}
    rng = np.random.default_rng(0)
    ttr = jnp.asarray(rng.normal(size=(2, 400, 20)), jnp.float32)
    tv = jnp.asarray(rng.normal(size=(2, 60, 20)), jnp.float32)
    keys = jax.vmap(jax.random.PRNGKey)(jnp.arange(2))
    cfg = MetaConfig(lambda_lr=1e4, update_every=2)
    kw = dict(hidden=8, num_classes=20, t=t, lam_value=0.0, temperature=4.0, alm_cfg=cfg)
    _, lam, accs = S._run_vmapped(keys, dj, ttr, tv, **kw)
    assert accs.shape == (2, 2) and np.isfinite(np.asarray(accs)).all()
    assert float(jnp.abs(lam - 0.5).max()) > 0  # λ moved
    one = jax.jit(lambda k, dd, a, b: S.train_one(k, dd, a, b, **kw))
    _, lam1, acc1 = one(keys[1], jax.tree.map(lambda a: a[1], dj), ttr[1], tv[1])
    np.testing.assert_allclose(np.asarray(lam1), np.asarray(lam[1]), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(np.asarray(acc1), np.asarray(accs[1]), atol=1e-6)


def test_base_config_rejects_unknown_arg():
    with pytest.raises(ValueError, match="config arg"):
        S.base_config("gpu")


@pytest.mark.slow
def test_runners_smoke(tmp_path):
    cfg = S.base_config("smoke")
    cfg.method = "papers.alm.synthetic:run_fig4"
    out4 = S.run_fig4(cfg, str(tmp_path / "f4"))
    out3 = S.run_fig3(cfg, str(tmp_path / "f3"))
    for out, d, png in ((out4, "f4", "fig4.png"), (out3, "f3", "fig3.png")):
        assert os.path.exists(tmp_path / d / png)
        saved = json.load(open(tmp_path / d / "results.json"))
        assert saved["rows"] and saved["scale_note"] and out["rows"]
    sens = S.base_config("smoke")
    sens.variants = ml_collections.ConfigDict({"clip": {"alm": {"clip": "unit"}}})
    sens.variant_order = ["clip"]
    out = S.run_sensitivity(sens, str(tmp_path / "sens"))
    lo, hi = out["rows"][0]["lambda_range"]
    assert 0.0 <= lo and hi <= 1.0


def test_sec5_configs_validate_and_override_declared_fields():
    """The Sec. 5 configs pass the harness's check; every sensitivity variant and setting names
    fields the toy config has."""
    from kdjax import config as config_lib
    from kdjax.reproduce.spec import load_config
    for name in ("fig3", "fig4", "sensitivity", "settings"):
        config_lib.validate(load_config(f"experiments/alm/sec5_{name}.py", "cpu"))
    for path in ("experiments/alm/sec5_sensitivity.py", "experiments/alm/sec5_settings.py"):
        config = load_config(path, "cpu")
        overrides = config.variants if "variants" in config else config.settings
        for name, over in overrides.items():
            for section, fields in over.items():
                for field in fields:
                    assert field in config[section], (path, name, section, field)
            S.alm_config_from(S._override(config, over))   # builds a valid MetaConfig
