"""The CIFAR ResNets' `materialize` option (issue 19) is an execution option only: the same
parameter tree, logits, features, BatchNorm statistics and gradients with it on or off."""
import jax
import jax.numpy as jnp
import numpy as np
import optax

from kdjax.models import get_model
from kdjax.models.layers import materialize


def _outputs_and_grads(model, variables, x, labels):
    def objective(params):
        (logits, feats), upd = model.apply({"params": params,
                                            "batch_stats": variables["batch_stats"]}, x,
                                           train=True, mutable=["batch_stats"])
        loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
        return loss, (logits, feats, upd["batch_stats"])

    grads, aux = jax.jit(jax.grad(objective, has_aux=True))(variables["params"])
    return aux, grads


def test_materialize_keeps_parameters_outputs_and_gradients():
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(8, 32, 32, 3)), jnp.float32)
    labels = jnp.asarray(rng.integers(0, 10, 8))
    new, old = get_model("resnet14", 10), get_model("resnet14", 10, materialize=False)
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
    """CifarResNet(fused_bn=True): the same variables, and the logits, features, BatchNorm
    statistics and gradients of flax's nn.BatchNorm (to float32 round-off)."""
    rng = np.random.default_rng(1)
    x = jnp.asarray(rng.normal(size=(8, 32, 32, 3)), jnp.float32)
    labels = jnp.asarray(rng.integers(0, 10, 8))
    fused, plain = get_model("resnet8", 10, fused_bn=True), get_model("resnet8", 10)
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
