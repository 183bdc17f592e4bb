"""Pieces shared by the model families: initialisers, BatchNorm, the input-size-aware stem, the head.

Input-size rule (one place for every family): images whose side is at most ``SMALL_INPUT_MAX`` (28x28
grey, 32x32 CIFAR, 64x64 Tiny-ImageNet) keep full resolution in the stem (a 3x3 stride-1 conv, as in
the CIFAR ResNets and the DiSK ResNet10/18/34, whose Tiny-ImageNet MACs are 4x their CIFAR MACs);
larger images (224x224 ImageNet) get the ImageNet stem: a 7x7 stride-2 conv and a 3x3 stride-2 max pool
(He et al. 2016).
"""
from __future__ import annotations

import functools
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

Dtype = Any

SMALL_INPUT_MAX = 64

# Kaiming-normal, fan-out (He et al. 2015), the init of torchvision / RepDistiller convolutions.
conv_init = nn.initializers.variance_scaling(2.0, "fan_out", "normal")
# Keras' `he_normal` (truncated normal, fan-in), used by the Keras CIFAR ResNet v2.
he_normal = nn.initializers.he_normal()


_CONV = {"fn": jax.lax.conv_general_dilated}


def set_conv(fn: Callable | None = None) -> Callable:
    """Run every zoo convolution (`conv`, `stem`) through `fn`, a drop-in for
    `lax.conv_general_dilated` (None: lax's, the default); returns the previous one. Platform
    code registers here (`kdjax.platform` gives the oneDNN convolution on a CPU); the library
    never does. Takes effect for steps traced afterwards."""
    previous = _CONV["fn"]
    _CONV["fn"] = fn or jax.lax.conv_general_dilated
    return previous


def get_conv() -> Callable:
    """The convolution `set_conv` installed (lax's by default)."""
    return _CONV["fn"]


def conv_general_dilated(*args, **kwargs):
    """flax `nn.Conv`'s `conv_general_dilated`: the one `set_conv` installed."""
    return _CONV["fn"](*args, **kwargs)


def batch_norm(train: bool, dtype: Dtype, name: str | None = None,
               scale_init: Callable = nn.initializers.ones, fused: bool = True) -> nn.Module:
    """BatchNorm with running averages in eval, batch statistics in training, momentum 0.9.
    fused: `FusedBatchNorm` for float32 (the variables and forward operations of nn.BatchNorm,
    a hand-written backward, channel sums as matrix-vector products on CPU; ~20% less CPU time
    per ResNet-20 train step than nn.BatchNorm there, docs/performance.md); False, or another dtype:
    flax's nn.BatchNorm."""
    if fused and jnp.dtype(dtype) == jnp.float32:
        return FusedBatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5,
                              scale_init=scale_init, name=name)
    return nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5,
                        dtype=dtype, param_dtype=jnp.float32, scale_init=scale_init, name=name)


def is_large_input(x: jnp.ndarray) -> bool:
    """True for images (B, H, W, C) with a side above SMALL_INPUT_MAX (ImageNet-sized)."""
    if x.ndim != 4:
        raise ValueError(f"expected NHWC images of rank 4, got shape {x.shape}")
    return max(x.shape[1], x.shape[2]) > SMALL_INPUT_MAX


def stem(x: jnp.ndarray, features: int, dtype: Dtype, *, use_bias: bool = False,
         norm_act: Callable[[jnp.ndarray], jnp.ndarray] | None = None,
         kernel_init: Callable = conv_init, name: str = "stem_conv") -> jnp.ndarray:
    """First convolution, chosen by input size (see module docstring).

    `norm_act` (e.g. BN + ReLU) runs right after the conv and before the ImageNet max pool; pass None
    for pre-activation nets whose first block normalises its input.
    Must be called inside an `nn.compact` method (it creates the conv there).
    """
    large = is_large_input(x)
    conv = nn.Conv(features, (7, 7) if large else (3, 3), strides=2 if large else 1,
                   padding=[(3, 3), (3, 3)] if large else [(1, 1), (1, 1)], use_bias=use_bias,
                   dtype=dtype, param_dtype=jnp.float32, kernel_init=kernel_init,
                   conv_general_dilated=conv_general_dilated, name=name)
    y = conv(x.astype(dtype))
    if norm_act is not None:
        y = norm_act(y)
    if large:
        y = nn.max_pool(y, (3, 3), strides=(2, 2), padding=[(1, 1), (1, 1)])
    return y


def conv(features: int, kernel: int, strides: int = 1, *, dtype: Dtype, use_bias: bool = False,
         kernel_init: Callable = conv_init, name: str | None = None, groups: int = 1) -> nn.Conv:
    """A square conv with 'same'-style symmetric padding (PyTorch's padding=k//2), through the
    convolution `set_conv` installed."""
    p = kernel // 2
    return nn.Conv(features, (kernel, kernel), strides=strides, padding=[(p, p), (p, p)],
                   use_bias=use_bias, feature_group_count=groups, dtype=dtype,
                   param_dtype=jnp.float32, kernel_init=kernel_init,
                   conv_general_dilated=conv_general_dilated, name=name)


def global_avg_pool(x: jnp.ndarray) -> jnp.ndarray:
    """(B, H, W, C) -> (B, C), averaged in float32."""
    return jnp.mean(x.astype(jnp.float32), axis=(1, 2))


def classifier(features: jnp.ndarray, num_classes: int, dtype: Dtype, name: str = "head",
               kernel_init: Callable = nn.linear.default_kernel_init
               ) -> tuple[jnp.ndarray, jnp.ndarray]:
    """Dense head; returns float32 (logits, features)."""
    logits = nn.Dense(num_classes, dtype=dtype, param_dtype=jnp.float32, kernel_init=kernel_init,
                      name=name)(features.astype(dtype))
    return logits.astype(jnp.float32), features.astype(jnp.float32)


def max_pool_2x2(x: jnp.ndarray) -> jnp.ndarray:
    """2x2, stride-2 max pool as reshape + max: the values of `nn.max_pool` (and its gradient
    wherever the maximum is unique). XLA:CPU lowers reduce_window-max's gradient to an expanded
    select-and-scatter that took ~60% of the small CNN's train step (docs/performance.md)."""
    b, h, w, c = x.shape
    if h % 2 or w % 2:
        return nn.max_pool(x, (2, 2), strides=(2, 2))
    return x.reshape(b, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))


def materialize(x: jnp.ndarray) -> jnp.ndarray:
    """x, written once to its own buffer: the same values (x / 1.0 is exact), as a divide by a
    run-time 1.

    XLA's fusion duplicates cheap elementwise producers (BatchNorm, ReLU, the residual add) into
    every consumer, so without this a residual block's output is recomputed inside the next
    block's convolution inputs, its backward ReLU masks and the weight-gradient transposes, back
    through earlier blocks (work that grows ~quadratically with the blocks per stage;
    docs/performance.md). A divide counts as expensive, and XLA never duplicates an expensive
    producer, so the chain ending here is computed once; the gradient (g / 1.0) is materialised
    the same way. The 1 is built from x's first element (a compile-time 1 would be folded away,
    and `optimization_barrier` is removed before fusion on CPU); a non-finite first element
    gives 1 too, so it never spreads NaNs.
    """
    first = jax.lax.stop_gradient(x.reshape(-1)[0])
    one = 1.0 + 0.0 * jnp.where(jnp.isfinite(first), first, 0.0).astype(x.dtype)
    return x / one


def _channel_sum_dot(x: jnp.ndarray) -> jnp.ndarray:
    c = x.shape[-1]
    if x.ndim > 2:
        # First sum each row of the second-minor (W) axis, viewed as (N·H, W, C): XLA:CPU fuses
        # that reduction into the fusion computing x (x², dy·x̂, ...), so x is never written out,
        # and the matrix-vector product below reads W times less. docs/performance.md, part 5.
        x = x.reshape(-1, x.shape[-2], c).sum(1)
    rows = x.reshape(x.shape[0], -1)
    s = jnp.dot(jnp.ones((x.shape[0],), x.dtype), rows, precision=jax.lax.Precision.HIGHEST)
    return s.reshape(-1, c).sum(0) if s.size > c else s


def channel_sum(x: jnp.ndarray) -> jnp.ndarray:
    """Sum over all but the last axis. On CPU as sums over W (fused into whatever computes x)
    and then a matrix-vector product over the remaining rows: XLA:CPU rewrites a reduction over
    (N, H, W) into a reduce-window tree that ran at ~1/3 of memory bandwidth, 166 of the 900 ms
    of a ResNet-20 train step, and a matrix-vector product alone needs x (x², dy·x̂) written out
    first (docs/performance.md, parts 3 and 5). As accurate as XLA's own float32 reduction
    (tests/test_speed_equivalence.py). Other backends reduce natively."""
    return jax.lax.platform_dependent(x, cpu=_channel_sum_dot,
                                      default=lambda v: v.sum(tuple(range(v.ndim - 1))))


def _bn_stats(x: jnp.ndarray):
    """flax's fast variance: (mean, max(0, E[x²] - mean²)) over all but the last axis."""
    n = x.size // x.shape[-1]
    mean = channel_sum(x) / n
    var = jnp.maximum(0.0, channel_sum(x * x) / n - mean * mean)
    return mean, var


@functools.partial(jax.custom_vjp, nondiff_argnums=(3,))
def batch_norm_train(x: jnp.ndarray, scale: jnp.ndarray, bias: jnp.ndarray,
                     epsilon: float) -> tuple[jnp.ndarray, jnp.ndarray, jnp.ndarray]:
    """Training-mode BatchNorm over all but the last axis: (y, batch mean, batch variance),
    the operations of flax's nn.BatchNorm (fast variance), with a hand-written backward:
    dx = scale·inv·(dy − mean(dy) − x̂·mean(dy·x̂)) in one pass after two reductions, instead
    of autodiff's chain through the mean, the second moment and the normalisation."""
    mean, var = _bn_stats(x)
    mul = jax.lax.rsqrt(var + epsilon) * scale
    return (x - mean) * mul + bias, mean, var


def _bn_train_fwd(x, scale, bias, epsilon):
    x, scale, bias = x.value, scale.value, bias.value   # symbolic_zeros wraps the primals
    mean, var = _bn_stats(x)
    inv = jax.lax.rsqrt(var + epsilon)
    y = (x - mean) * (inv * scale) + bias
    return (y, mean, var), (x, mean, inv, scale)


def _bn_train_bwd(epsilon, res, cts):
    del epsilon
    x, mean, inv, scale = res
    dy, dmean, dvar = cts
    n = x.size // x.shape[-1]
    if isinstance(dy, jax.custom_derivatives.SymbolicZero):
        dy = jnp.zeros_like(x)
    xhat = (x - mean) * inv
    dbias = channel_sum(dy)
    dscale = channel_sum(dy * xhat)
    dx = (scale * inv) * (dy - dbias / n - xhat * (dscale / n))
    if not isinstance(dmean, jax.custom_derivatives.SymbolicZero):
        dx = dx + dmean / n
    if not isinstance(dvar, jax.custom_derivatives.SymbolicZero):
        dx = dx + (2.0 / n) * dvar * (x - mean)
    return dx, dscale, dbias


batch_norm_train.defvjp(_bn_train_fwd, _bn_train_bwd, symbolic_zeros=True)


class FusedBatchNorm(nn.Module):
    """nn.BatchNorm over the last axis (same variables: params scale/bias, batch_stats
    mean/var; the same forward operations) whose training-mode gradient is
    `batch_norm_train`'s hand-written one. float32 only; `batch_norm` builds it by default."""
    use_running_average: bool
    momentum: float = 0.9
    epsilon: float = 1e-5
    scale_init: Callable = nn.initializers.ones

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        shape = (x.shape[-1],)
        ra_mean = self.variable("batch_stats", "mean", lambda s: jnp.zeros(s, jnp.float32),
                                shape)
        ra_var = self.variable("batch_stats", "var", lambda s: jnp.ones(s, jnp.float32), shape)
        scale = self.param("scale", self.scale_init, shape, jnp.float32)
        bias = self.param("bias", nn.initializers.zeros, shape, jnp.float32)
        if self.use_running_average:
            mul = jax.lax.rsqrt(ra_var.value + self.epsilon) * scale
            return (x - ra_mean.value) * mul + bias
        y, mean, var = batch_norm_train(x, scale, bias, self.epsilon)
        if not self.is_initializing():
            mean, var = jax.lax.stop_gradient(mean), jax.lax.stop_gradient(var)
            ra_mean.value = self.momentum * ra_mean.value + (1 - self.momentum) * mean
            ra_var.value = self.momentum * ra_var.value + (1 - self.momentum) * var
        return y
