"""Storage (parameters) and compute (multiply-adds) of a zoo model, counted as papers count them.

Parameters are counted from `jax.eval_shape` of `init` (no weights allocated). MACs are counted
from the forward pass's jaxpr at batch 1 (eval mode), the convention of the counters papers use
(thop, ptflops): a convolution costs (output elements) x (kernel elements per output feature),
every kernel tap counted, zero padding included; a dense layer (`dot_general`) costs (output
elements) x (contracted size); BatchNorm, activations, pooling and additions cost nothing.
(XLA's cost analysis counts only the taps that touch the unpadded input, 8-15% fewer on CIFAR
ResNets, and nothing inside custom calls such as kdjax/platform/onednn_conv.py's.)
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax.extend import core as jcore

from kdjax.models import get_model


def _kernel_taps(eqn) -> int:
    """Kernel elements per output feature of a convolution equation."""
    kernel = eqn.invars[1].aval.shape
    if eqn.primitive.name == "conv_general_dilated":
        out_dim = eqn.params["dimension_numbers"].rhs_spec[0]
    else:                                   # kdjax's oneDNN convolution: HWIO
        out_dim = len(kernel) - 1
    return math.prod(kernel) // kernel[out_dim]


def jaxpr_macs(jaxpr) -> int:
    """Multiply-adds of convolutions and dense products in a jaxpr and the jaxprs it calls."""
    total = 0
    for eqn in jaxpr.eqns:
        name, out = eqn.primitive.name, eqn.outvars[0].aval.shape
        if name in ("conv_general_dilated", "onednn_conv"):
            total += math.prod(out) * _kernel_taps(eqn)
        elif name == "dot_general":
            (contract, _), _ = eqn.params["dimension_numbers"]
            lhs = eqn.invars[0].aval.shape
            total += math.prod(out) * math.prod(lhs[i] for i in contract)
        for value in eqn.params.values():
            for sub in value if isinstance(value, (list, tuple)) else (value,):
                if isinstance(sub, jcore.ClosedJaxpr):
                    total += jaxpr_macs(sub.jaxpr)
                elif isinstance(sub, jcore.Jaxpr):
                    total += jaxpr_macs(sub)
    return total


def model_stats(name: str, input_shape: tuple[int, ...], num_classes: int) -> dict:
    """{'params': count, 'macs': multiply-adds of one example's forward pass (eval mode)}."""
    model = get_model(name, num_classes)
    x = jax.ShapeDtypeStruct((1, *input_shape), jnp.float32)
    variables = jax.eval_shape(lambda x: model.init(jax.random.PRNGKey(0), x), x)
    params = sum(int(a.size) for a in jax.tree.leaves(variables["params"]))
    forward = jax.make_jaxpr(lambda v, x: model.apply(v, x))(variables, x)
    return {"params": params, "macs": jaxpr_macs(forward.jaxpr)}
