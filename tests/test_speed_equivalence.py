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
