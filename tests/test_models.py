"""Tests for kdjax.models: parameter counts against published tables, shapes of every registered
model, one short training run per family, dtype handling, bad input.

Parameter counts are taken with `jax.eval_shape` (no arrays allocated); published numbers come from
/work/shared/papers/NOTES.md, DiSK (Table 2/5/6 and App. A.4) and the architectures' own papers.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from kdjax.models import (cnn, densenet, get_model, list_models, mlp, mobilenet, mobilenet_v2,
                          resnet, resnet_cifar, resnet_v2, shufflenet_v2, vgg, wrn)
from kdjax.models.shufflenet_v2 import channel_shuffle


FAST_COMPILE = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}


def _shapes(name: str, num_classes: int, shape, **kw):
    """eval_shape of init_with_output: ((logits, features), variables) as ShapeDtypeStructs."""
    model = get_model(name, num_classes, **kw)
    x = jax.ShapeDtypeStruct(shape, jnp.float32)
    return jax.eval_shape(lambda x: model.init_with_output(jax.random.PRNGKey(0), x), x)


def _fast_jit(fn, *args):
    """jit + run, compiled without XLA's expensive CPU passes (test speed only)."""
    return jax.jit(fn).lower(*args).compile(compiler_options=FAST_COMPILE)(*args)


def _num_params(variables) -> int:
    return sum(math.prod(p.shape) for p in jax.tree.leaves(variables["params"]))


# (name, num_classes, input side, channels, published count, published rounding unit, source)
PUBLISHED = [
    ("resnet20", 10, 32, 3, 0.27e6, 0.01e6, "He et al. 2016 Table 6 (CIFAR-10)"),
    ("resnet56", 100, 32, 3, 0.86e6, 0.01e6, "NOTES.md"),
    ("resnet110", 10, 32, 3, 1.7e6, 0.1e6, "He et al. 2016 Table 6"),
    ("resnet8x4", 100, 32, 3, 1.2e6, 0.1e6, "NOTES.md; DiSK Table 6"),
    ("resnet32x4", 100, 32, 3, 7.4e6, 0.1e6, "NOTES.md; DiSK Table 6"),
    ("wrn_16_2", 100, 32, 3, 0.70e6, 0.01e6, "NOTES.md; DiSK Table 6"),
    ("wrn_40_1", 100, 32, 3, 0.57e6, 0.01e6, "DiSK Table 6"),
    ("wrn_40_2", 100, 32, 3, 2.25e6, 0.01e6, "NOTES.md; DiSK Table 6"),
    ("shufflenetv2", 100, 32, 3, 1.4e6, 0.1e6, "DiSK Table 6"),
    ("mobilenetv2_x2", 100, 32, 3, 2.4e6, 0.1e6, "DiSK Table 6"),
    ("densenet40_12", 10, 32, 3, 1.0e6, 0.1e6, "Huang et al. 2017 Table 2"),
    ("resnet18", 1000, 224, 3, 11.7e6, 0.1e6, "NOTES.md (ImageNet)"),
    ("resnet50", 1000, 224, 3, 25.6e6, 0.1e6, "NOTES.md (ImageNet)"),
    ("mobilenet", 1000, 224, 3, 4.2e6, 0.1e6, "Howard et al. 2017 Table 8"),
    # DiSK Table 5 (= Table 2), CIFAR-100 (32 px) and Tiny-ImageNet (64 px, 200 classes).
    ("resnet10_xxs", 100, 32, 3, 13e3, 1e3, "DiSK Table 5"),
    ("resnet10_xs", 100, 32, 3, 28e3, 1e3, "DiSK Table 5"),
    ("resnet10_s", 100, 32, 3, 84e3, 1e3, "DiSK Table 5"),
    ("resnet10_m", 100, 32, 3, 320e3, 1e3, "DiSK Table 5"),
    ("resnet10_l", 100, 32, 3, 1.25e6, 0.01e6, "DiSK Table 5"),
    ("resnet10", 100, 32, 3, 4.92e6, 0.01e6, "DiSK Table 5"),
    ("resnet18", 100, 32, 3, 11.22e6, 0.01e6, "DiSK Table 5"),
    ("resnet34", 100, 32, 3, 21.32e6, 0.01e6, "DiSK Table 5"),
    ("resnet10_xxs", 200, 64, 3, 15e3, 1e3, "DiSK Table 5 (Tiny-ImageNet)"),
    ("resnet10_xs", 200, 64, 3, 31e3, 1e3, "DiSK Table 5 (Tiny-ImageNet)"),
    ("resnet10_s", 200, 64, 3, 90e3, 1e3, "DiSK Table 5 (Tiny-ImageNet)"),
    ("resnet10_m", 200, 64, 3, 333e3, 1e3, "DiSK Table 5 (Tiny-ImageNet)"),
    ("resnet10_l", 200, 64, 3, 1.28e6, 0.01e6, "DiSK Table 5 (Tiny-ImageNet)"),
    ("resnet18", 200, 64, 3, 11.27e6, 0.01e6, "DiSK Table 5 (Tiny-ImageNet)"),
    ("resnet34", 200, 64, 3, 21.38e6, 0.01e6, "DiSK Table 5 (Tiny-ImageNet)"),
]


@pytest.mark.parametrize("name,nc,side,ch,published,unit,source", PUBLISHED,
                         ids=[f"{p[0]}-{p[1]}cls-{p[2]}px" for p in PUBLISHED])
def test_param_count_matches_published(name, nc, side, ch, published, unit, source):
    """Within 2% of the published count, or within the rounding of its last printed digit."""
    _, variables = _shapes(name, nc, (1, side, side, ch))
    n = _num_params(variables)
    tol = max(0.02 * published, unit / 2)
    assert abs(n - published) <= tol, f"{name}: {n} params vs {published} ({source})"


def test_param_count_by_brute_force_formula():
    """resnet8 (one BasicBlock per stage) counted by hand from its layer list."""
    conv = lambda k, i, o: k * k * i * o
    bn = lambda c: 2 * c
    expected = (conv(3, 3, 16) + bn(16)
                + 2 * (conv(3, 16, 16) + bn(16))                                   # stage 1
                + conv(3, 16, 32) + conv(3, 32, 32) + 2 * bn(32) + conv(1, 16, 32) + bn(32)
                + conv(3, 32, 64) + conv(3, 64, 64) + 2 * bn(64) + conv(1, 32, 64) + bn(64)
                + 64 * 10 + 10)
    _, variables = _shapes("resnet8", 10, (1, 32, 32, 3))
    assert _num_params(variables) == expected


FEATURE_DIMS = {"mlp": 256, "cnn_small": 128, "resnet20": 64, "resnet8x4": 256, "resnetv2_20": 256,
                "wrn_16_2": 128, "resnet18": 512, "resnet50": 2048, "resnet10_xs": 32,
                "mobilenet": 1024, "mobilenetv2": 1280, "shufflenetv2": 1024, "densenet40_12": 448,
                "vgg8": 512}


@pytest.mark.parametrize("name", list_models())
def test_every_model_builds_with_logits_and_features(name):
    (logits, feats), variables = _shapes(name, 7, (2, 32, 32, 3))
    assert logits.shape == (2, 7) and logits.dtype == jnp.float32
    assert feats.ndim == 2 and feats.shape[0] == 2 and feats.dtype == jnp.float32
    if name in FEATURE_DIMS:
        assert feats.shape[1] == FEATURE_DIMS[name]
    # Every conv net keeps running statistics; the MLP has none.
    assert ("batch_stats" in variables) == (name != "mlp")


@pytest.mark.parametrize("name,shape", [
    ("cnn_small", (2, 28, 28, 1)), ("resnet20", (2, 28, 28, 1)), ("wrn_16_2", (2, 64, 64, 3)),
    ("resnet18", (2, 64, 64, 3)), ("resnet18", (2, 224, 224, 3)), ("resnetv2_11", (2, 224, 224, 3)),
    ("mobilenetv2", (2, 224, 224, 3)), ("shufflenetv2", (2, 224, 224, 3)), ("vgg8", (2, 64, 64, 3)),
    ("mobilenet", (2, 28, 28, 1)), ("densenet40_12", (2, 64, 64, 3)), ("mlp", (2, 8, 8, 1)),
])
def test_input_sizes(name, shape):
    (logits, feats), _ = _shapes(name, 5, shape)
    assert logits.shape == (2, 5) and feats.shape[0] == 2


def test_stem_depends_on_input_size():
    """224 px gets the 7x7/2 ImageNet stem, 32/64 px the 3x3/1 stem (DiSK Tiny MACs = 4x CIFAR)."""
    _, small = _shapes("resnet18", 10, (1, 64, 64, 3))
    _, large = _shapes("resnet18", 10, (1, 224, 224, 3))
    assert small["params"]["stem_conv"]["kernel"].shape == (3, 3, 3, 64)
    assert large["params"]["stem_conv"]["kernel"].shape == (7, 7, 3, 64)


def test_bfloat16_compute_keeps_float32_params_and_logits():
    model = get_model("resnet8", 10, dtype=jnp.bfloat16)
    ref_model = get_model("resnet8", 10)
    x = jax.random.normal(jax.random.PRNGKey(1), (2, 16, 16, 3))
    variables = _fast_jit(model.init, jax.random.PRNGKey(0), x)
    assert all(p.dtype == jnp.float32 for p in jax.tree.leaves(variables["params"]))
    (logits, feats), (ref, _) = _fast_jit(
        lambda v: (model.apply(v, x), ref_model.apply(v, x)), variables)
    assert logits.dtype == jnp.float32 and feats.dtype == jnp.float32
    np.testing.assert_allclose(logits, ref, rtol=0.1, atol=0.1 * float(jnp.abs(ref).max()))


def test_batch_norm_train_vs_eval():
    """Train mode updates the running mean with momentum 0.9 from batch statistics (checked against
    a direct convolution); eval mode is the default and uses the running averages."""
    model = get_model("cnn_small", 3, widths=(4, 8), hidden=8)
    x = jax.random.normal(jax.random.PRNGKey(1), (4, 28, 28, 1)) * 3.0 + 2.0
    variables = _fast_jit(model.init, jax.random.PRNGKey(0), x)

    def run(v):
        _, upd = model.apply(v, x, train=True, mutable=["batch_stats"])
        conv0 = jax.lax.conv_general_dilated(
            x, v["params"]["conv_0"]["kernel"], (1, 1), [(1, 1), (1, 1)],
            dimension_numbers=("NHWC", "HWIO", "NHWC"))
        return upd, conv0.mean(axis=(0, 1, 2)), model.apply(v, x)[0], model.apply(v, x, False)[0]

    upd, conv_mean, out_default, out_eval = _fast_jit(run, variables)
    np.testing.assert_allclose(upd["batch_stats"]["bn_0"]["mean"], 0.1 * conv_mean,
                               rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(out_default, out_eval)


def test_channel_shuffle_matches_index_formula():
    x = jnp.arange(12.0).reshape(1, 1, 1, 12)
    y = channel_shuffle(x, 2)
    # output channel i*g + g_idx comes from input channel g_idx * (C/g) + i
    expected = [g * 6 + i for i in range(6) for g in range(2)]
    np.testing.assert_array_equal(y.ravel(), np.array(expected, np.float32))


# One tiny member per family (narrow, shallow configs of the registered classes) on an 8x8 batch:
# eight Adam steps on fixed random data must cut the loss. Compiled without XLA's expensive CPU
# passes (test speed only). Depthwise-conv families compile slowly on XLA:CPU, so they (and the
# bottleneck ResNet, whose shapes the build tests already cover) are `slow`.
FAMILIES = {
    "mlp": lambda: mlp.MLP(4, hidden=(32,)),
    "cnn": lambda: cnn.SmallCNN(4, widths=(8, 16), hidden=32),
    "resnet_cifar": lambda: resnet_cifar.CifarResNet(4, depth=8, filters=(8, 8, 16, 16)),
    "resnet_v2": lambda: resnet_v2.ResNetV2(4, depth=11),
    "wrn": lambda: wrn.WideResNet(4, depth=10, widen=1),
    "resnet_basic": lambda: resnet.ResNet(4, stage_sizes=(1, 1, 1, 1), filters=(8, 8, 16, 16)),
    "resnet_bottleneck": lambda: resnet.ResNet(4, stage_sizes=(1, 1, 1, 1), filters=(4, 4, 8, 8),
                                               bottleneck=True),
    "densenet": lambda: densenet.DenseNet(4, depth=10, growth=8),
    "vgg": lambda: vgg.VGG(4, blocks=((8,), (16,), (16,), (32,), (32,))),
    "mobilenet": lambda: mobilenet.MobileNet(4, alpha=0.25),
    "mobilenet_v2": lambda: mobilenet_v2.MobileNetV2(4, width=0.25),
    "shufflenet_v2": lambda: shufflenet_v2.ShuffleNetV2(4, net_size=0.5, num_blocks=(1, 1, 1)),
}
SLOW_FAMILIES = {"mobilenet", "mobilenet_v2", "shufflenet_v2", "resnet_bottleneck"}


@pytest.mark.parametrize("family", [
    pytest.param(f, marks=pytest.mark.slow) if f in SLOW_FAMILIES else f for f in FAMILIES])
def test_family_trains(family):
    model = FAMILIES[family]()
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(8, 8, 8, 3)), jnp.float32)
    y = jnp.asarray(rng.integers(0, 4, size=8), jnp.int32)
    tx = optax.adam(3e-3)

    def run():
        variables = model.init(jax.random.PRNGKey(0), x)
        params, stats = variables["params"], variables.get("batch_stats", {})

        def loss_fn(p, s):
            out, upd = model.apply({"params": p, "batch_stats": s}, x, train=True,
                                   mutable=["batch_stats"])
            loss = optax.softmax_cross_entropy_with_integer_labels(out[0], y).mean()
            return loss, upd.get("batch_stats", {})

        def step(carry, _):
            p, s, o = carry
            (loss, s), g = jax.value_and_grad(loss_fn, has_aux=True)(p, s)
            u, o = tx.update(g, o, p)
            return (optax.apply_updates(p, u), s, o), loss

        return jax.lax.scan(step, (params, stats, tx.init(params)), None, length=8)[1]

    losses = np.asarray(_fast_jit(run))
    assert np.all(np.isfinite(losses))
    assert losses[-1] < 0.7 * losses[0], f"{family}: losses {losses}"


def test_unknown_model_raises():
    with pytest.raises(ValueError, match=r"unknown model 'resnet21'.*resnet20"):
        get_model("resnet21", 10)
    with pytest.raises(ValueError, match="num_classes"):
        get_model("resnet20", 0)


def test_bad_inputs_raise():
    x = jax.ShapeDtypeStruct((1, 32, 32, 3), jnp.float32)
    for bad, msg in [(resnet_cifar.CifarResNet(10, depth=21), "6n\\+2"),
                     (resnet_v2.ResNetV2(10, depth=21), "9n\\+2"),
                     (wrn.WideResNet(10, depth=15), "6n\\+4"),
                     (densenet.DenseNet(10, depth=41), "3n\\+4"),
                     (shufflenet_v2.ShuffleNetV2(10, net_size=0.7), "net_size")]:
        with pytest.raises(ValueError, match=msg):
            jax.eval_shape(lambda x, m=bad: m.init(jax.random.PRNGKey(0), x), x)
    with pytest.raises(ValueError, match="NHWC"):
        _shapes("cnn_small", 10, (1, 28, 28))


def test_max_pool_2x2_matches_flax_max_pool():
    import flax.linen as nn
    import jax
    import jax.numpy as jnp
    import numpy as np
    from kdjax.models.layers import max_pool_2x2
    x = jax.random.normal(jax.random.PRNGKey(0), (2, 8, 6, 3))
    np.testing.assert_array_equal(max_pool_2x2(x), nn.max_pool(x, (2, 2), strides=(2, 2)))
    g1 = jax.grad(lambda v: jnp.sum(jnp.sin(max_pool_2x2(v))))(x)
    g2 = jax.grad(lambda v: jnp.sum(jnp.sin(nn.max_pool(v, (2, 2), strides=(2, 2)))))(x)
    np.testing.assert_allclose(g1, g2, rtol=1e-6)
    odd = x[:, :7]
    np.testing.assert_array_equal(max_pool_2x2(odd), nn.max_pool(odd, (2, 2), strides=(2, 2)))
