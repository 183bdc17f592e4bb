"""kdjax/reproduce/model_stats.py: multiply-adds counted as papers count them (every kernel tap,
zero padding included; dense layers), checked by hand and against DiSK's Table 5."""
import jax
import jax.numpy as jnp
import pytest
from jax import lax

from kdjax.reproduce import model_stats


def _macs(fn, *shapes):
    args = [jax.ShapeDtypeStruct(s, jnp.float32) for s in shapes]
    return model_stats.jaxpr_macs(jax.make_jaxpr(fn)(*args).jaxpr)


def test_convolution_and_dense_by_hand():
    # 3x3 'SAME' conv, 5x5x2 -> 5x5x4: 25 outputs x 4 features x 3·3·2 taps (padding counted)
    conv = lambda x, w: lax.conv_general_dilated(x, w, (1, 1), "SAME",
                                                 dimension_numbers=("NHWC", "HWIO", "NHWC"))
    assert _macs(conv, (1, 5, 5, 2), (3, 3, 2, 4)) == 25 * 4 * 18
    # stride 2, 'VALID', OIHW kernel layout: 2x2 outputs x 4 x 3·3·2
    strided = lambda x, w: lax.conv_general_dilated(x, w, (2, 2), "VALID",
                                                    dimension_numbers=("NHWC", "OIHW", "NHWC"))
    assert _macs(strided, (1, 5, 5, 2), (4, 2, 3, 3)) == 4 * 4 * 18
    # depthwise (groups = 4): each output feature sees 3·3·1 taps
    depthwise = lambda x, w: lax.conv_general_dilated(
        x, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"),
        feature_group_count=4)
    assert _macs(depthwise, (1, 6, 6, 4), (3, 3, 1, 4)) == 36 * 4 * 9
    # dense 7 -> 3 at batch 2, inside a jitted call (nested jaxpr) and with elementwise work
    dense = jax.jit(lambda x, w: jnp.maximum(x @ w, 0.0) + 1.0)
    assert _macs(dense, (2, 7), (7, 3)) == 2 * 3 * 7


def test_onednn_convolution_is_counted():
    from kdjax.platform import onednn_conv
    prim = getattr(onednn_conv, "onednn_conv_p", None)
    if prim is None:
        pytest.skip("no oneDNN convolution primitive in this build")
    fn = lambda x, w: prim.bind(x, w, strides=(1, 1), padding=((1, 1), (1, 1)))
    assert _macs(fn, (1, 5, 5, 2), (3, 3, 2, 4)) == 25 * 4 * 18


def test_resnet18_matches_disk_table5():
    """DiSK Table 5, ResNet18 on CIFAR-100: 555 M MACs, 11.22 M parameters (XLA's cost
    analysis, which skips padded taps, gave 483 M)."""
    stats = model_stats.model_stats("resnet18", (32, 32, 3), 100)
    assert round(stats["macs"] / 1e6) == 555
    assert round(stats["params"] / 1e6, 2) == 11.22
