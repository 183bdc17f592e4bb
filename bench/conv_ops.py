"""The ResNet-20 student's 3x3 convolutions alone, kdjax (XLA:CPU) vs PyTorch, in one process.

    taskset -c 0 python bench/conv_ops.py [--batch=128] [--repeats=5]

Per CIFAR ResNet stage shape (batch, H=W, C -> C, 3x3, stride 1, SAME), the process CPU ms of
the forward convolution and of forward + input gradient + weight gradient: XLA as kdjax runs it
(`kdjax.platform.apply`: the XLA:CPU flags), PyTorch 2.x with `torch.set_num_threads` = the cores
this process may use. Minimum and median over `--repeats` windows of 5 calls each; the ratio is
PyTorch / kdjax medians (> 1: kdjax faster). kdjax also times the input and weight gradients
as separate programs and together in one, and the transpose XLA:CPU puts in front of each weight
gradient against an elementwise pass over the same tensor. docs/performance.md, issue 19 parts
4 and 5.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import numpy as np  # noqa: E402
from jax import lax  # noqa: E402

from kdjax import platform  # noqa: E402

platform.apply(persistent_cache=False)  # launch/'s CPU settings, no compilation cache

SHAPES = ((32, 16), (16, 32), (8, 64))  # (H = W, channels) of the three stages


def _cpu_ms(call, repeats: int, calls: int = 5) -> tuple[float, float]:
    call()
    windows = []
    for _ in range(repeats):
        start = time.process_time()
        for _ in range(calls):
            call()
        windows.append((time.process_time() - start) * 1e3 / calls)
    return min(windows), float(np.median(windows))


def _conv(x, w):
    return lax.conv_general_dilated(x, w, (1, 1), "SAME",
                                    dimension_numbers=("NHWC", "HWIO", "NHWC"))


def kdjax_times(batch: int, hw: int, ch: int, repeats: int) -> dict:
    rng = np.random.default_rng(0)
    x = jax.numpy.asarray(rng.normal(size=(batch, hw, hw, ch)), jax.numpy.float32)
    w = jax.numpy.asarray(rng.normal(size=(3, 3, ch, ch)), jax.numpy.float32)
    fwd = jax.jit(_conv)
    def forward_and_grads(x, w, g):
        y, vjp = jax.vjp(_conv, x, w)
        return y, vjp(g)  # y returned, so the forward convolution is not dead code

    both = jax.jit(forward_and_grads)
    dx = jax.jit(lambda x, w, g: jax.vjp(lambda a: _conv(a, w), x)[1](g)[0])
    dw = jax.jit(lambda x, w, g: jax.vjp(lambda b: _conv(x, b), w)[1](g)[0])
    dx_dw = jax.jit(lambda x, w, g: jax.vjp(_conv, x, w)[1](g))
    to_cHWN = jax.jit(lambda x: x.transpose(3, 1, 2, 0))
    scale = jax.jit(lambda x: x * 1.0001)
    return {"forward": _cpu_ms(lambda: fwd(x, w).block_until_ready(), repeats),
            "forward + dx + dw": _cpu_ms(lambda: jax.block_until_ready(both(x, w, x)), repeats),
            "dx alone": _cpu_ms(lambda: dx(x, w, x).block_until_ready(), repeats),
            "dw alone": _cpu_ms(lambda: dw(x, w, x).block_until_ready(), repeats),
            "dx + dw in one program": _cpu_ms(lambda: jax.block_until_ready(dx_dw(x, w, x)),
                                              repeats),
            # what XLA:CPU adds in front of every weight-gradient convolution, against one
            # elementwise pass over the same tensor
            "x to (C, H, W, N), the weight-gradient layout": _cpu_ms(
                lambda: to_cHWN(x).block_until_ready(), repeats),
            "one elementwise pass over x": _cpu_ms(lambda: scale(x).block_until_ready(), repeats)}


def torch_times(batch: int, hw: int, ch: int, repeats: int) -> dict:
    import torch
    torch.set_num_threads(len(os.sched_getaffinity(0)))
    x = torch.randn(batch, ch, hw, hw, requires_grad=True)
    w = torch.randn(ch, ch, 3, 3, requires_grad=True)
    g = torch.randn(batch, ch, hw, hw)

    def forward():
        with torch.no_grad():
            torch.nn.functional.conv2d(x, w, padding=1)

    def backward():
        torch.nn.functional.conv2d(x, w, padding=1).backward(g)

    return {"forward": _cpu_ms(forward, repeats), "forward + dx + dw": _cpu_ms(backward, repeats)}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args(argv)
    print(f"3x3 convolutions, batch {args.batch}, float32, {len(os.sched_getaffinity(0))} "
          f"core(s); process CPU ms per call, min / median of {args.repeats} windows")
    print("| H=W x C | op | kdjax (XLA:CPU) | PyTorch | PyTorch / kdjax |")
    print("|---|---|---|---|---|")
    for hw, ch in SHAPES:
        j = kdjax_times(args.batch, hw, ch, args.repeats)
        t = torch_times(args.batch, hw, ch, args.repeats)
        for op in j:
            if op not in t:
                print(f"| {hw}x{hw} x {ch} | {op} | {j[op][0]:.1f} / {j[op][1]:.1f} | | |")
                continue
            print(f"| {hw}x{hw} x {ch} | {op} | {j[op][0]:.1f} / {j[op][1]:.1f} | "
                  f"{t[op][0]:.1f} / {t[op][1]:.1f} | {t[op][1] / j[op][1]:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
