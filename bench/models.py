"""Model zoo table: parameters, MACs and CPU throughput beside the papers' published counts.

    python bench/models.py                  # every paper model at its paper's input size (~5 min)
    python bench/models.py --quick          # params + MACs for all, throughput for 8 rows
    python bench/models.py --models resnet20,wrn_16_2 --batch 32 --reps 5

Params: counted from `jax.eval_shape(model.init)` (no allocation). MACs: XLA's cost analysis of the
compiled eval-mode forward pass at batch 1, flops / 2. XLA counts a convolution's multiply-adds over
the taps that fall inside the image (zero-padding taps are not counted; the check printed at the end
verifies this on one conv by brute force), and it also counts element-wise ops (BN, ReLU, adds) as
flops. The papers' counters (thop/ptflops style) count every kernel tap, padding included, so our
MACs are lower on small feature maps (e.g. ResNet-18 at 32 px) and equal on 1x1-conv-heavy nets.
Throughput: examples/s of the jitted forward (eval) and forward+backward (train mode, CE loss) on
this machine's CPU, median of `--reps` timed calls after one warm-up call.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from kdjax import platform  # noqa: E402

platform.apply(persistent_cache=False)  # launch/'s CPU settings, no compilation cache

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

from kdjax.models import get_model  # noqa: E402

M, K = 1e6, 1e3
FAST_COMPILE = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}
# --quick measures throughput only for these (one per family's common KD student/teacher).
QUICK_THROUGHPUT = {"resnet20", "resnet8x4", "wrn_16_2", "resnetv2_20", "resnet10_m", "vgg8",
                    "shufflenetv2", "mobilenetv2_x2"}
# (name, num_classes, input side, published params, published MACs, source). None = not published
# (or lost in the paper's text extraction).
ROWS = [
    # CIFAR-100, 32 px: NOTES.md / DiSK Table 6 (small capacity mismatch) / RepDistiller pairs.
    ("resnet8", 100, 32, None, None, ""),
    ("resnet20", 10, 32, 0.27 * M, None, "He+16 Tab.6 (C10)"),
    ("resnet56", 100, 32, 0.86 * M, None, "NOTES.md"),
    ("resnet110", 10, 32, 1.7 * M, None, "He+16 Tab.6 (C10)"),
    ("resnet8x4", 100, 32, 1.2 * M, 177 * M, "DiSK Tab.6"),
    ("resnet32x4", 100, 32, 7.4 * M, 1083 * M, "DiSK Tab.6"),
    ("wrn_16_1", 100, 32, None, None, ""),
    ("wrn_16_2", 100, 32, 0.70 * M, 101 * M, "DiSK Tab.6"),
    ("wrn_16_8", 100, 32, 11.0 * M, None, "WRN paper"),
    ("wrn_40_1", 100, 32, 0.57 * M, 83 * M, "DiSK Tab.6"),
    ("wrn_40_2", 100, 32, 2.25 * M, 327 * M, "DiSK Tab.6"),
    ("vgg8", 100, 32, None, None, ""),
    ("vgg13", 100, 32, None, None, ""),
    ("shufflenetv2", 100, 32, 1.4 * M, 44.5 * M, "DiSK Tab.6"),
    ("mobilenetv2_x2", 100, 32, 2.4 * M, 22 * M, "DiSK Tab.6"),
    ("mobilenetv2_half", 100, 32, None, None, ""),
    ("densenet40_12", 10, 32, 1.0 * M, None, "Huang+17 Tab.2 (C10)"),
    # RAD students/teachers (CIFAR-10): ResNetV2-{11,20,29} / {56,110}, MobileNet x1 / x2.
    ("resnetv2_11", 10, 32, None, None, ""),
    ("resnetv2_20", 10, 32, None, None, ""),
    ("resnetv2_29", 10, 32, None, None, ""),
    ("resnetv2_56", 10, 32, None, None, ""),
    ("resnetv2_110", 10, 32, None, None, ""),
    ("mobilenet", 10, 32, None, None, ""),
    ("mobilenet_d2", 10, 32, None, None, ""),
    ("mobilenet_w2", 10, 32, None, None, ""),
    # DiSK Table 5 (large capacity mismatch), CIFAR-100 32 px.
    ("resnet10_xxs", 100, 32, 13 * K, None, "DiSK Tab.5"),
    ("resnet10_xs", 100, 32, 28 * K, 3 * M, "DiSK Tab.5"),
    ("resnet10_s", 100, 32, 84 * K, None, "DiSK Tab.5"),
    ("resnet10_m", 100, 32, 320 * K, 16 * M, "DiSK Tab.5"),
    ("resnet10_l", 100, 32, 1.25 * M, 64 * M, "DiSK Tab.5"),
    ("resnet10", 100, 32, 4.92 * M, 253 * M, "DiSK Tab.5"),
    ("resnet18", 100, 32, 11.22 * M, 555 * M, "DiSK Tab.5"),
    ("resnet34", 100, 32, 21.32 * M, 1159 * M, "DiSK Tab.5"),
    # DiSK Table 5, Tiny-ImageNet 64 px, 200 classes.
    ("resnet10_xxs", 200, 64, 15 * K, None, "DiSK Tab.5"),
    ("resnet10_xs", 200, 64, 31 * K, 12 * M, "DiSK Tab.5"),
    ("resnet10_s", 200, 64, 90 * K, 16 * M, "DiSK Tab.5"),
    ("resnet10_m", 200, 64, 333 * K, 64 * M, "DiSK Tab.5"),
    ("resnet10_l", 200, 64, 1.28 * M, 255 * M, "DiSK Tab.5"),
    ("resnet10", 200, 64, None, 1013 * M, "DiSK Tab.5"),
    ("resnet18", 200, 64, 11.27 * M, 2221 * M, "DiSK Tab.5"),
    ("resnet34", 200, 64, 21.38 * M, 4637 * M, "DiSK Tab.5"),
    # ImageNet 224 px, 1000 classes (RAD D.2: ResNet-50 -> ResNet-18; DiSK Tab.7).
    ("resnet18", 1000, 224, 11.7 * M, 1.8e9, "NOTES.md; He+16 Tab.1"),
    ("resnet34", 1000, 224, 21.8 * M, 3.6e9, "He+16 Tab.1"),
    ("resnet50", 1000, 224, 25.6 * M, 3.8e9, "NOTES.md; He+16 Tab.1"),
    ("mobilenet", 1000, 224, 4.2 * M, 569 * M, "Howard+17 Tab.8"),
    ("mobilenetv2", 1000, 224, 3.4 * M, 300 * M, "Sandler+18 Tab.4"),
]


def _fmt(v: float | None) -> str:
    if v is None:
        return "-"
    if v >= 1e9:
        return f"{v / 1e9:.2f}G"
    if v >= 1e6:
        return f"{v / 1e6:.2f}M"
    return f"{v / 1e3:.1f}K"


def _median_time(fn, *args, reps: int) -> float:
    jax.block_until_ready(fn(*args))  # warm-up (compile already done)
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts))


def measure(name: str, num_classes: int, side: int, *, batch: int, reps: int,
            throughput: bool) -> dict:
    model = get_model(name, num_classes)
    x1 = jax.ShapeDtypeStruct((1, side, side, 3), jnp.float32)
    shapes = jax.eval_shape(lambda x: model.init(jax.random.PRNGKey(0), x), x1)
    params = sum(math.prod(p.shape) for p in jax.tree.leaves(shapes["params"]))
    fwd = jax.jit(lambda v, x: model.apply(v, x)[0])
    # Cost analysis runs on the optimised HLO; skipping LLVM's expensive passes only saves time.
    cost = fwd.lower(shapes, x1).compile(compiler_options=FAST_COMPILE).cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    out = {"params": params, "macs": cost["flops"] / 2}
    if not throughput:
        return out
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(batch, side, side, 3)), jnp.float32)
    y = jnp.asarray(rng.integers(0, num_classes, size=batch), jnp.int32)
    variables = model.init(jax.random.PRNGKey(0), x[:1])

    def loss(p, v):
        (logits, _), upd = model.apply({**v, "params": p}, x, train=True, mutable=["batch_stats"])
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean(), upd

    grad = jax.jit(jax.value_and_grad(loss, has_aux=True))
    out["fwd_ips"] = batch / _median_time(fwd, variables, x, reps=reps)
    out["fwdbwd_ips"] = batch / _median_time(grad, variables["params"], variables, reps=reps)
    return out


def padding_check() -> str:
    """XLA MACs of one 3x3 'same' conv on a 4x4x2 map -> 3 channels vs a brute-force tap count."""
    h = w = 4
    cin, cout = 2, 3
    inside = sum(1 for i in range(h) for j in range(w) for di in (-1, 0, 1) for dj in (-1, 0, 1)
                 if 0 <= i + di < h and 0 <= j + dj < w)
    all_taps = h * w * 9
    f = jax.jit(lambda x, k: jax.lax.conv_general_dilated(
        x, k, (1, 1), [(1, 1), (1, 1)], dimension_numbers=("NHWC", "HWIO", "NHWC")))
    c = f.lower(jax.ShapeDtypeStruct((1, h, w, cin), jnp.float32),
                jax.ShapeDtypeStruct((3, 3, cin, cout), jnp.float32)).compile().cost_analysis()
    c = c[0] if isinstance(c, (list, tuple)) else c
    return (f"XLA conv check: XLA MACs {c['flops'] / 2:.0f}; brute force, taps inside the image "
            f"{inside * cin * cout}, all taps incl. padding {all_taps * cin * cout}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="", help="comma-separated names (default: all rows)")
    ap.add_argument("--quick", action="store_true",
                    help="params + MACs for all rows, throughput only for a few 32 px rows")
    ap.add_argument("--batch", type=int, default=16, help="batch for 32/64 px throughput")
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    wanted = set(filter(None, args.models.split(",")))
    rows = [r for r in ROWS if not wanted or r[0] in wanted]
    unknown = wanted - {r[0] for r in ROWS}
    rows += [(n, 100, 32, None, None, "") for n in sorted(unknown)]
    reps = 2 if args.quick else args.reps
    print(f"jax {jax.__version__}, backend {jax.default_backend()}, {os.cpu_count()} CPUs; "
          f"throughput batch {args.batch} (224 px: 4), median of {reps}")
    head = (f"{'model':<17}{'cls':>5}{'px':>5}{'params':>10}{'publ.':>9}{'ratio':>7}"
            f"{'MACs(XLA)':>11}{'publ.':>9}{'ratio':>7}{'fwd/s':>9}{'f+b/s':>9}  source")
    print(head)
    print("-" * len(head))
    t_start = time.perf_counter()
    for name, nc, side, p_pub, m_pub, src in rows:
        tp = not args.quick or (name in QUICK_THROUGHPUT and side == 32)
        r = measure(name, nc, side, batch=args.batch if side <= 64 else 4, reps=reps,
                    throughput=tp)
        pr = f"{r['params'] / p_pub:.3f}" if p_pub else "-"
        mr = f"{r['macs'] / m_pub:.3f}" if m_pub else "-"
        fwd = f"{r['fwd_ips']:.0f}" if tp else "-"
        fb = f"{r['fwdbwd_ips']:.0f}" if tp else "-"
        print(f"{name:<17}{nc:>5}{side:>5}{_fmt(r['params']):>10}{_fmt(p_pub):>9}{pr:>7}"
              f"{_fmt(r['macs']):>11}{_fmt(m_pub):>9}{mr:>7}{fwd:>9}{fb:>9}  {src}", flush=True)
    print(padding_check())
    print(f"total {time.perf_counter() - t_start:.0f} s")


if __name__ == "__main__":
    main()
