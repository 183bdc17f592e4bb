"""The CIFAR ResNets' `materialize` option (issue 19) is an execution option only: the same
parameter tree, logits, features, BatchNorm statistics and gradients with it on or off."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from kdjax.models import get_model
from kdjax.models.layers import materialize
from tests.train_step_reference import rel_err, train_step


def _outputs_and_grads(model, variables, x, labels):
    def objective(params):
        (logits, feats), upd = model.apply({"params": params,
                                            "batch_stats": variables["batch_stats"]}, x,
                                           train=True, mutable=["batch_stats"])
        loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
        return loss, (logits, feats, upd["batch_stats"])

    grads, aux = jax.jit(jax.grad(objective, has_aux=True))(variables["params"])
    return aux, grads


@pytest.mark.slow  # ~69 s on 2 cores (2026-12-03): `make test-slow`
def test_materialize_keeps_parameters_outputs_and_gradients():
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(8, 32, 32, 3)), jnp.float32)
    labels = jnp.asarray(rng.integers(0, 10, 8))
    new = get_model("resnet14", 10)
    old = get_model("resnet14", 10, materialize=False, fused_bn=False)
    variables = new.init(jax.random.key(0), x[:1], train=False)
    old_vars = old.init(jax.random.key(0), x[:1], train=False)
    assert jax.tree.structure(variables) == jax.tree.structure(old_vars)
    for a, b in zip(jax.tree.leaves(variables), jax.tree.leaves(old_vars)):
        np.testing.assert_array_equal(a, b)
    (new_aux, new_g), (old_aux, old_g) = (_outputs_and_grads(m, variables, x, labels)
                                          for m in (new, old))
    for a, b in zip(jax.tree.leaves(new_aux), jax.tree.leaves(old_aux)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    assert jax.tree.structure(new_g) == jax.tree.structure(old_g)
    for a, b in zip(jax.tree.leaves(new_g), jax.tree.leaves(old_g)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    eval_new = new.apply(variables, x, train=False)[0]
    eval_old = old.apply(variables, x, train=False)[0]
    np.testing.assert_allclose(eval_new, eval_old, rtol=1e-5, atol=1e-5)


def test_materialize_is_the_identity_and_contains_non_finite_values():
    x = jnp.asarray([[np.inf, -2.0, 0.5], [3.0, np.nan, -0.0]], jnp.float32)
    y = jax.jit(materialize)(x)
    np.testing.assert_array_equal(np.asarray(y), np.asarray(x))  # NaN only where x has one
    g = jax.grad(lambda v: jnp.sum(materialize(v) * jnp.arange(3.0)))(jnp.ones(3))
    np.testing.assert_array_equal(g, np.arange(3.0))


def test_fused_batch_norm_keeps_variables_outputs_and_gradients():
    """CifarResNet (fused_bn=True, the default): the same variables, and the logits, features,
    BatchNorm statistics and gradients of flax's nn.BatchNorm (to float32 round-off)."""
    rng = np.random.default_rng(1)
    x = jnp.asarray(rng.normal(size=(8, 32, 32, 3)), jnp.float32)
    labels = jnp.asarray(rng.integers(0, 10, 8))
    fused, plain = get_model("resnet8", 10), get_model("resnet8", 10, fused_bn=False)
    variables = plain.init(jax.random.key(0), x[:1], train=False)
    fused_vars = fused.init(jax.random.key(0), x[:1], train=False)
    assert jax.tree.structure(variables) == jax.tree.structure(fused_vars)
    for a, b in zip(jax.tree.leaves(variables), jax.tree.leaves(fused_vars)):
        np.testing.assert_array_equal(a, b)
    # Non-trivial BN parameters, so that scale and bias enter the gradients.
    variables = jax.tree.map(lambda a: a * jnp.asarray(rng.uniform(0.5, 1.5, a.shape),
                                                       a.dtype), variables)
    (f_aux, f_g), (p_aux, p_g) = (_outputs_and_grads(m, variables, x, labels)
                                  for m in (fused, plain))
    for a, b in zip(jax.tree.leaves(f_aux), jax.tree.leaves(p_aux)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    for a, b in zip(jax.tree.leaves(f_g), jax.tree.leaves(p_g)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(fused.apply(variables, x, train=False)[0],
                               plain.apply(variables, x, train=False)[0], rtol=1e-5, atol=1e-5)


def test_batch_norm_train_gradient_covers_the_statistics():
    """batch_norm_train's backward, including cotangents of the returned mean and variance,
    against autodiff of the same forward."""
    from kdjax.models.layers import _bn_stats, batch_norm_train
    rng = np.random.default_rng(2)
    x = jnp.asarray(rng.normal(1.0, 2.0, size=(4, 3, 3, 5)), jnp.float32)
    scale = jnp.asarray(rng.uniform(0.5, 2, 5), jnp.float32)
    bias = jnp.asarray(rng.normal(size=5), jnp.float32)
    w = [jnp.asarray(rng.normal(size=s), jnp.float32) for s in (x.shape, (5,), (5,))]

    def reference(x, scale, bias):
        mean, var = _bn_stats(x)
        return (x - mean) * (jax.lax.rsqrt(var + 1e-5) * scale) + bias, mean, var

    def objective(fn):
        return lambda *a: sum(jnp.sum(o * c) for o, c in zip(fn(*a), w))

    got = jax.grad(objective(lambda *a: batch_norm_train(*a, 1e-5)), (0, 1, 2))(x, scale, bias)
    want = jax.grad(objective(reference), (0, 1, 2))(x, scale, bias)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_channel_sum_matches_a_float64_sum():
    """The CPU form of the BatchNorm channel sums (W-axis partial sums, then a matrix-vector
    product), jitted, for x and for x² (E[x²]), at the shapes of the CIFAR ResNets' stages and
    of a (batch, features) BatchNorm: against a float64 sum, as close as XLA's own float32
    reduction (what flax's nn.BatchNorm uses) within a factor of 2."""
    from kdjax.models.layers import channel_sum
    rng = np.random.default_rng(3)
    for shape in ((128, 32, 32, 16), (128, 16, 16, 32), (128, 8, 8, 64), (6, 5, 7, 3),
                  (40, 12)):
        x = rng.normal(0.5, 2.0, size=shape).astype(np.float32)
        axes = tuple(range(x.ndim - 1))
        for name, f in (("x", lambda v: v), ("x^2", lambda v: v * v)):
            want = f(x.astype(np.float64)).sum(axes)
            got = np.asarray(jax.jit(lambda v: channel_sum(f(v)))(jnp.asarray(x)), np.float64)
            xla = np.asarray(jax.jit(lambda v: f(v).sum(axes))(jnp.asarray(x)), np.float64)
            xla_err = np.max(np.abs(xla - want) / np.abs(want))
            np.testing.assert_allclose(got, want, rtol=max(2 * xla_err, 1e-6),
                                       err_msg=f"{shape} sum of {name}")


@pytest.mark.slow  # ~71 s on 2 cores (2026-12-03): `make test-slow`
def test_train_step_numbers_match_float64_as_closely_as_flax_batch_norm():
    """resnet20 at the bench's batch of 128: the loss, BatchNorm statistics and gradients of the
    shipped model (materialize, fused BatchNorm with CPU matrix-vector channel sums) and of
    flax's nn.BatchNorm without materialize, both in float32, against the same network in
    float64. Their differences are float32 round-off amplified through 20 layers (relative
    gradient error ~2e-3 for either), so the shipped model must be as close to float64 as the
    plain one, within a small factor, rather than bitwise equal to it."""
    rng = np.random.default_rng(4)
    x = rng.normal(size=(128, 32, 32, 3))
    labels = jnp.asarray(rng.integers(0, 100, 128))
    new = get_model("resnet20", 100)
    old = get_model("resnet20", 100, materialize=False, fused_bn=False)
    variables = new.init(jax.random.key(0), jnp.zeros((1, 32, 32, 3)), train=False)

    run = jax.jit(train_step, static_argnums=0)
    got = run(new, variables, jnp.asarray(x, jnp.float32), labels)
    plain = run(old, variables, jnp.asarray(x, jnp.float32), labels)
    with jax.enable_x64(True):
        exact = get_model("resnet20", 100, materialize=False, fused_bn=False, dtype=jnp.float64)
        ref = run(exact, jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), variables),
                  jnp.asarray(x, jnp.float64), labels)
        ref = jax.tree.map(lambda a: np.asarray(a, np.float64), ref)

    (loss, stats), grads = got
    (p_loss, p_stats), p_grads = plain
    (r_loss, r_stats), r_grads = ref
    np.testing.assert_allclose(loss, r_loss, rtol=1e-5)
    np.testing.assert_allclose(p_loss, r_loss, rtol=1e-5)
    assert rel_err(stats, r_stats) < 1e-5 and rel_err(p_stats, r_stats) < 1e-5
    new_err, plain_err = rel_err(grads, r_grads), rel_err(p_grads, r_grads)
    assert plain_err < 1e-2, plain_err
    assert new_err < 3 * plain_err + 1e-4, (new_err, plain_err)


def test_xla_cpu_defaults_respect_the_user(monkeypatch):
    from kdjax.platform import xla_cpu
    monkeypatch.setattr(xla_cpu, "jaxlib_minor", lambda: xla_cpu.MEASURED_JAXLIB[0])
    env = {"XLA_FLAGS": "--xla_force_host_platform_device_count=8"}
    assert xla_cpu.apply_defaults(env)
    assert env["XLA_FLAGS"] == ("--xla_force_host_platform_device_count=8 "
                                "--xla_cpu_experimental_ynn_fusion_type=individual_dot")
    assert not xla_cpu.apply_defaults(env)            # already there: unchanged
    mine = {"XLA_FLAGS": "--xla_cpu_experimental_ynn_fusion_type="}
    assert not xla_cpu.apply_defaults(mine) and mine["XLA_FLAGS"].endswith("type=")
    off = {"KDJAX_XLA_CPU_DEFAULTS": "0"}
    assert not xla_cpu.apply_defaults(off) and "XLA_FLAGS" not in off
    import pytest
    with pytest.raises(ValueError, match="KDJAX_XLA_CPU_DEFAULTS must be 0 or 1, got 'off'"):
        xla_cpu.apply_defaults({"KDJAX_XLA_CPU_DEFAULTS": "off"})
    monkeypatch.setattr(xla_cpu, "jaxlib_minor", lambda: "0.1")   # an unmeasured jaxlib
    assert not xla_cpu.apply_defaults({})
