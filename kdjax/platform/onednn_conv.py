"""2-D float32 convolutions on XLA:CPU run as oneDNN direct convolutions (docs/performance.md).

XLA:CPU lowers `lax.conv_general_dilated` to Eigen's spatial convolution: an im2col copy of every
3x3 patch into a GEMM (a fifth of the ResNet-20 train step, docs/performance.md part 6). jaxlib
also carries oneDNN and XLA's `OneDnnOpThunk`, which runs an HLO custom call named
`__onednn$convolution` as a oneDNN convolution primitive (on AVX-512 hosts `brg_conv_fwd`, the
direct convolution PyTorch uses), but this jaxlib has no pass that rewrites convolutions into it.
`conv_general_dilated` below is a drop-in for lax's, which `kdjax.platform.apply` installs in
`kdjax.models.layers.set_conv` (flax's `nn.Conv` of every zoo model calls it): where `enabled()`
and the convolution is a plain one (float32, 2-D, NHWC x HWIO -> NHWC, no dilation, no groups),
it emits that custom call; otherwise lax's.

Not with the persistent compilation cache: jaxlib 0.10's XLA:CPU serialises every thunk of kind
`kCustomCall` as a `CustomCallThunk`, and `OneDnnOpThunk` is another class of that kind, so
serialising an executable that holds the call reads a vector as a string and fails with
`std::bad_alloc` (docs/performance.md). `kdjax.platform.apply` therefore installs it only where
the cache is off.

Differentiation: the primitive is bilinear in (input, kernel) like lax's convolution
(`ad.defbilinear`), so forward mode, reverse mode and higher orders (ALM-KD's look-ahead, LR+DS's
Hessian-vector products) all work. The input gradient of a stride-1 convolution is itself a
oneDNN convolution (of the output gradient with the kernel flipped and its channels swapped, pad
k - 1 - p); of a strided one, lax's transpose. The kernel gradient is lax's transpose (XLA's own
weight-gradient convolution). Under `vmap` the primitive falls back to lax's batching.

`enabled()`: a CPU backend with one device in total (XLA's SPMD partitioner knows nothing of the
custom call and would gather a sharded batch around it, so meshes of several devices keep XLA's
convolutions), a jaxlib it was measured on (`xla_cpu.MEASURED_JAXLIB`: the call's config is
XLA's internal JSON), and a probe convolution that compiles and matches lax's. `KDJAX_ONEDNN_CONV=0`
turns it off, 1 forces it (still subject to the probe).
"""
from __future__ import annotations

import functools
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax._src import dispatch
from jax._src.interpreters import ad, batching
from jax._src.interpreters import mlir
from jax.extend.core import Primitive

from kdjax.platform import xla_cpu

TARGET = "__onednn$convolution"
NHWC = ("NHWC", "HWIO", "NHWC")

onednn_conv_p = Primitive("onednn_conv")
onednn_conv_p.def_impl(functools.partial(dispatch.apply_primitive, onednn_conv_p))


def _lax_conv(x, w, *, strides, padding):
    return lax.conv_general_dilated(x, w, strides, padding, dimension_numbers=NHWC,
                                    precision=lax.Precision.HIGHEST)


def _abstract_eval(x, w, *, strides, padding):
    n, h, wd, _ = x.shape
    kh, kw, _, co = w.shape
    (pt, pb), (pl, pr) = padding
    out = (n, (h + pt + pb - kh) // strides[0] + 1, (wd + pl + pr - kw) // strides[1] + 1, co)
    return jax.core.ShapedArray(out, x.dtype)


def _config(strides, padding, kernel_size) -> str:
    """`xla.cpu.BackendConfig` JSON with the `OneDnnConvolutionConfig` of an NHWC x HWIO conv
    (field meanings: XLA's onednn_config.proto)."""
    data = {"batch_dim": 0, "feature_dim": 3, "spatial_dims": [1, 2]}
    return json.dumps({"onednn_conv_config": {
        "dims": 4, "feature_groups": 1,
        "input": {"dims": 4, "data": data},
        "kernel": {"dims": 4, "filter": {"input_feature_dim": 2, "output_feature_dim": 3,
                                         "spatial_dims": [0, 1]}},
        "output": {"dims": 4, "data": data},
        "window": {"size": list(kernel_size), "pad_left": [p[0] for p in padding],
                   "pad_right": [p[1] for p in padding], "strides": list(strides),
                   "window_dilations": [1, 1]}}})


def _lowering(ctx, x, w, *, strides, padding):
    out = ctx.avals_out[0]
    call = mlir.custom_call(
        TARGET, result_types=[mlir.aval_to_ir_type(ctx.module_context, out)], operands=[x, w],
        backend_config=_config(strides, padding, ctx.avals_in[1].shape[:2]), api_version=1)
    return call.results


def _transpose_input(g, x, w, *, strides, padding):
    """d(input): a stride-1 conv's is the conv of g with the flipped, channel-swapped kernel."""
    kh, kw = w.shape[:2]
    pads = [(k - 1 - lo, k - 1 - hi) for k, (lo, hi) in zip((kh, kw), padding)]
    if tuple(strides) == (1, 1) and all(lo >= 0 and hi >= 0 for lo, hi in pads):
        w_t = jnp.flip(w, (0, 1)).swapaxes(2, 3)
        return onednn_conv_p.bind(g, w_t, strides=(1, 1), padding=tuple(map(tuple, pads)))
    aval = x.aval
    return jax.linear_transpose(
        functools.partial(_lax_conv, w=w, strides=strides, padding=padding),
        jax.ShapeDtypeStruct(aval.shape, aval.dtype))(g)[0]


def _transpose_kernel(g, x, w, *, strides, padding):
    aval = w.aval
    return jax.linear_transpose(
        lambda w_: _lax_conv(x, w_, strides=strides, padding=padding),
        jax.ShapeDtypeStruct(aval.shape, aval.dtype))(g)[0]


def _batch(args, dims, *, strides, padding):
    conv = functools.partial(_lax_conv, strides=strides, padding=padding)
    axes = tuple(d if isinstance(d, int) else None for d in dims)  # None: not mapped
    return jax.vmap(conv, in_axes=axes)(*args), 0


onednn_conv_p.def_abstract_eval(_abstract_eval)
mlir.register_lowering(onednn_conv_p, _lowering, platform="cpu")
ad.defbilinear(onednn_conv_p, _transpose_input, _transpose_kernel)
batching.primitive_batchers[onednn_conv_p] = _batch


def conv(x, w, strides=(1, 1), padding=((0, 0), (0, 0))):
    """oneDNN NHWC x HWIO float32 convolution; the values of `lax.conv_general_dilated`."""
    return onednn_conv_p.bind(x, w, strides=tuple(strides),
                              padding=tuple(tuple(int(q) for q in p) for p in padding))


@functools.lru_cache(maxsize=None)
def _probe() -> bool:
    """Whether this jaxlib compiles and runs the custom call, with lax's values."""
    try:
        rng = np.random.default_rng(0)
        x = jnp.asarray(rng.standard_normal((2, 6, 5, 3)), jnp.float32)
        w = jnp.asarray(rng.standard_normal((3, 3, 3, 4)), jnp.float32)
        args = dict(strides=(2, 1), padding=((1, 1), (1, 0)))
        got = jax.jit(functools.partial(conv, **args))(x, w)
        want = _lax_conv(x, w, **args)
        return bool(jnp.allclose(got, want, rtol=1e-5, atol=1e-5))
    except Exception:  # noqa: BLE001 - any failure means: not available here
        return False


def enabled() -> bool:
    """Whether `conv_general_dilated` sends plain convolutions to oneDNN (module docstring)."""
    switch = os.environ.get("KDJAX_ONEDNN_CONV", "")
    if switch not in ("", "0", "1"):
        raise ValueError(f"KDJAX_ONEDNN_CONV must be 0 or 1, got {switch!r}")
    if switch == "0" or jax.default_backend() != "cpu":
        return False
    if switch != "1" and (jax.device_count() != 1
                          or xla_cpu.jaxlib_minor() not in xla_cpu.MEASURED_JAXLIB):
        return False
    return _probe()


def conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation=None,
                         rhs_dilation=None, dimension_numbers=None, feature_group_count=1,
                         batch_group_count=1, precision=None, preferred_element_type=None):
    """`lax.conv_general_dilated`, through oneDNN where `enabled()` and the conv is plain."""
    plain = (lhs.ndim == 4 and lhs.dtype == jnp.float32 and rhs.dtype == jnp.float32
             and not isinstance(padding, str) and feature_group_count == 1
             and batch_group_count == 1 and preferred_element_type in (None, jnp.float32)
             and all(d == 1 for d in (lhs_dilation or (1, 1)))
             and all(d == 1 for d in (rhs_dilation or (1, 1)))
             and _is_nhwc(dimension_numbers, lhs.ndim))
    if plain and enabled():
        return conv(lhs, rhs, window_strides, padding)
    return lax.conv_general_dilated(
        lhs, rhs, window_strides, padding, lhs_dilation, rhs_dilation, dimension_numbers,
        feature_group_count, batch_group_count, precision, preferred_element_type)


def _is_nhwc(dimension_numbers, ndim) -> bool:
    if dimension_numbers is None:
        return False
    dn = lax.conv_dimension_numbers((1,) * ndim, (1,) * ndim, dimension_numbers)
    want = lax.conv_dimension_numbers((1,) * ndim, (1,) * ndim, NHWC)
    return dn == want
