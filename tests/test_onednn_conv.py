"""kdjax.platform.onednn_conv: oneDNN convolutions inside XLA:CPU programs give lax's numbers, for
values, both gradients, forward mode, second order and vmap (issue 19 part 7)."""
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from kdjax.models import get_model, layers
from kdjax.platform import onednn_conv
from tests.train_step_reference import rel_err, train_step

pytestmark = pytest.mark.skipif(not onednn_conv._probe(),
                                reason="this jaxlib has no oneDNN convolution thunk")

# (input shape, kernel size, stride, padding): ResNet 3x3 / stride-2 / 1x1 shortcut, the
# ImageNet stem's 7x7 stride 2, and asymmetric and zero padding.
CASES = [((3, 8, 8, 3), 3, 1, ((1, 1), (1, 1))),
         ((3, 9, 8, 5), 3, 2, ((1, 1), (1, 1))),
         ((2, 8, 8, 4), 1, 2, ((0, 0), (0, 0))),
         ((2, 15, 13, 3), 7, 2, ((3, 3), (3, 3))),
         ((2, 9, 7, 4), 3, 1, ((0, 2), (1, 0))),
         ((2, 9, 9, 4), 5, 1, ((2, 2), (2, 2)))]


def _numpy_conv(x, w, stride, padding):
    """Float64 reference: the definition, one output pixel's patch at a time."""
    x = np.pad(np.asarray(x, np.float64), ((0, 0), *padding, (0, 0)))
    w = np.asarray(w, np.float64)
    k = w.shape[0]
    oh = (x.shape[1] - k) // stride + 1
    ow = (x.shape[2] - w.shape[1]) // stride + 1
    out = np.zeros((x.shape[0], oh, ow, w.shape[3]))
    for i in range(oh):
        for j in range(ow):
            patch = x[:, i * stride:i * stride + k, j * stride:j * stride + w.shape[1], :]
            out[:, i, j] = np.einsum("nhwc,hwco->no", patch, w)
    return out


def _lax(x, w, stride, padding):
    return lax.conv_general_dilated(x, w, (stride, stride), padding,
                                    dimension_numbers=onednn_conv.NHWC, precision="highest")


def _ours(x, w, stride, padding):
    return onednn_conv.conv(x, w, (stride, stride), padding)


def _data(shape, k, seed=0):
    rng = np.random.default_rng(seed)
    x = jnp.asarray(rng.standard_normal(shape), jnp.float32)
    w = jnp.asarray(rng.standard_normal((k, k, shape[-1], 6)), jnp.float32)
    return x, w


@pytest.mark.parametrize("shape,k,stride,padding", CASES)
def test_values_and_derivatives_match(shape, k, stride, padding):
    x, w = _data(shape, k)
    ours = jax.jit(lambda x, w: _ours(x, w, stride, padding))
    assert onednn_conv.TARGET in ours.lower(x, w).as_text()
    np.testing.assert_allclose(ours(x, w), _numpy_conv(x, w, stride, padding),
                               rtol=1e-5, atol=1e-4)

    def loss(conv):
        return lambda x, w: jnp.sum(jnp.sin(conv(x, w, stride, padding)))

    def close(a, b):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4 * float(jnp.max(jnp.abs(b))))

    for a, b in zip(jax.jit(jax.grad(loss(_ours), (0, 1)))(x, w),
                    jax.grad(loss(_lax), (0, 1))(x, w)):
        close(a, b)
    tangent = jnp.cos(x)
    close(jax.jit(lambda x: jax.jvp(lambda x: _ours(x, w, stride, padding), (x,),
                                    (tangent,))[1])(x),
          jax.jvp(lambda x: _lax(x, w, stride, padding), (x,), (tangent,))[1])

    def curvature(conv):  # a gradient of a gradient, as ALM-KD's look-ahead takes
        return jax.grad(lambda w: jnp.sum(jax.grad(loss(conv))(x, w) ** 2))
    close(jax.jit(curvature(_ours))(w), curvature(_lax)(w))
    batched = jax.jit(jax.vmap(lambda x: _ours(x, w, stride, padding)))(x[:, None])
    close(batched[:, 0], _lax(x, w, stride, padding))


@pytest.fixture
def installed():
    """The oneDNN convolution installed in the models, as kdjax.platform.apply does."""
    previous = layers.set_conv(onednn_conv.conv_general_dilated)
    yield
    layers.set_conv(previous)


def test_flax_conv_layers_take_it_only_when_enabled(monkeypatch, installed):
    model = get_model("resnet8", 10)
    x = jnp.zeros((2, 32, 32, 3))
    variables = model.init(jax.random.key(0), x, train=False)

    def hlo():
        return jax.jit(lambda v: model.apply(v, x, train=False)).lower(variables).as_text()
    monkeypatch.setenv("KDJAX_ONEDNN_CONV", "1")
    assert hlo().count(onednn_conv.TARGET) >= 7  # every conv of resnet8
    monkeypatch.setenv("KDJAX_ONEDNN_CONV", "0")
    assert onednn_conv.TARGET not in hlo()
    # The test session has 8 CPU devices: left to itself, the layer keeps XLA's convolution.
    monkeypatch.delenv("KDJAX_ONEDNN_CONV")
    assert not onednn_conv.enabled() and onednn_conv.TARGET not in hlo()
    monkeypatch.setattr(onednn_conv, "jax", type("J", (), {
        "default_backend": staticmethod(lambda: "cpu"), "device_count": staticmethod(lambda: 1)}))
    assert onednn_conv.enabled()  # one CPU device, this jaxlib
    monkeypatch.setattr(onednn_conv.xla_cpu, "jaxlib_minor", lambda: "0.1")
    assert not onednn_conv.enabled()  # a jaxlib whose XLA it was not measured with
    monkeypatch.setenv("KDJAX_ONEDNN_CONV", "on")
    with pytest.raises(ValueError, match="KDJAX_ONEDNN_CONV must be 0 or 1, got 'on'"):
        onednn_conv.enabled()


def test_the_platform_installs_it_on_a_single_cpu_device_without_the_persistent_cache():
    """`import kdjax` leaves lax's convolution; `kdjax.platform.apply` installs oneDNN's where
    no persistent compilation cache is used (it cannot store it), and it is then enabled on one
    CPU device; with the cache, or with KDJAX_ONEDNN_CONV=0, the models keep lax's."""
    code = """
import os, jax
from kdjax import platform
from kdjax.models import layers
print(jax.device_count(), layers.get_conv() is jax.lax.conv_general_dilated)
for cache, switch in ((False, ""), (True, ""), (False, "0"), (True, "1")):
    layers.set_conv(None)
    env = dict(os.environ, KDJAX_ONEDNN_CONV=switch)
    applied = platform.apply(persistent_cache=cache, environ=env)
    print(platform.settings()["convolution"], applied["persistent_cache"])
"""
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=1")
    env.pop("KDJAX_ONEDNN_CONV", None)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True).stdout.splitlines()
    assert out == ["1 True", "onednn False", "xla True", "xla False", "onednn False"]


def test_resnet_train_step_matches_float64_as_closely_as_xla(monkeypatch, installed):
    """resnet20 train step (loss, BatchNorm statistics, gradients) with oneDNN convolutions and
    with XLA's, both in float32, against the network in float64."""
    rng = np.random.default_rng(5)
    x = rng.normal(size=(16, 32, 32, 3))
    labels = jnp.asarray(rng.integers(0, 10, 16))
    model = get_model("resnet20", 10)
    variables = model.init(jax.random.key(0), jnp.zeros((1, 32, 32, 3)), train=False)

    def step(model, variables, x):
        return train_step(model, variables, x, labels)

    x32 = jnp.asarray(x, jnp.float32)
    monkeypatch.setenv("KDJAX_ONEDNN_CONV", "1")
    traced = jax.jit(step, static_argnums=0).lower(model, variables, x32)
    assert onednn_conv.TARGET in traced.as_text()
    ours = traced.compile()(variables, x32)
    monkeypatch.setenv("KDJAX_ONEDNN_CONV", "0")
    xla = jax.jit(step, static_argnums=0)(model, variables, x32)
    with jax.enable_x64(True):
        exact = get_model("resnet20", 10, materialize=False, fused_bn=False, dtype=jnp.float64)
        ref = jax.jit(step, static_argnums=0)(
            exact, jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), variables),
            jnp.asarray(x, jnp.float64))
        ref = jax.tree.map(lambda a: np.asarray(a, np.float64), ref)

    ours_err, xla_err = rel_err(ours, ref), rel_err(xla, ref)
    assert xla_err < 1e-2, xla_err
    assert ours_err < 3 * xla_err + 1e-5, (ours_err, xla_err)
