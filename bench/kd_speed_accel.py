"""KD training speed on a GPU: kdjax vs PyTorch eager and torch.compile, float32 and bf16 (issue 10).

The accelerator half of `bench/kd_speed.py`: the same teacher -> student pairs, the same KD step
(teacher forward without gradients, student forward + backward, Hinton KD loss T = 4, alpha = 0.9,
SGD momentum 0.9, uint8 images normalised inside the step), measured side by side in one run:

- kdjax: `kdjax.train.step.make_train_step` exactly as the trainer uses it, jitted with the
  state donated; `bf16` = the models' `dtype=bfloat16` (bf16 activations and matmul/conv inputs,
  float32 parameters, BatchNorm statistics, logits and loss: mixed precision);
- PyTorch eager: the torchdistill / mdistiller loop, channels_last, `SGD(fused=True)`; `bf16` =
  `torch.autocast(bfloat16)`; TF32 allowed for float32 matmuls and convolutions in both
  frameworks (XLA's and cuDNN's default on this chip);
- `torch.compile` of teacher and student (inductor, default mode) with the same loop, and
  `mode="reduce-overhead"` (CUDA graphs) where `--torch_modes` asks for it.

Achieved FLOP/s = XLA:CPU's cost analysis of the kdjax step as written (FLOPs per step, the same
work in both frameworks; the compiled GPU executable's analysis counts cuDNN convolutions as zero) x steps/s; the fraction is of the chip's datasheet dense peak for that
precision and of a bf16 / float32 8192^3 matrix product measured in the same run.

Each cell runs in its own subprocess (frameworks never share an allocator); the timed windows are
bracketed by device synchronisation, after warm-up (compilation excluded), median of
`--repeats` windows of `--steps` steps.

    python bench/kd_speed_accel.py                   # every pair, batch 128 and 1024, fp32 + bf16
    python bench/kd_speed_accel.py --pairs=cnn --batches=128 --precisions=bf16 --steps=5
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench.kd_speed import ALPHA, LR, MOMENTUM, PAIRS, TEMPERATURE, _fake_batch, _torch_model  # noqa: E402

# Dense peak TFLOP/s per chip from the vendors' datasheets (bf16 tensor core; float32 = TF32
# tensor core, the precision both frameworks use for float32 convs and matmuls here).
DATASHEET_TFLOPS = {
    "H100 SXM": {"bf16": 989.4, "fp32": 494.7},
    "H100 PCIe": {"bf16": 756.0, "fp32": 378.0},
    "H200": {"bf16": 989.4, "fp32": 494.7},
    "A100": {"bf16": 312.0, "fp32": 156.0},
}


def chip_peak(name: str, precision: str) -> float | None:
    """Datasheet dense TFLOP/s for a device name as the driver reports it, if known."""
    if "H100" in name:
        key = "H100 PCIe" if "PCIe" in name else "H100 SXM"
    else:
        key = next((k for k in DATASHEET_TFLOPS if k in name), None)
    return DATASHEET_TFLOPS[key][precision] if key else None


def _median_window(run_steps, steps: int, repeats: int, warmup: int) -> list[float]:
    """Seconds per step for `repeats` windows of `steps` steps, after `warmup` steps."""
    run_steps(warmup)
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        run_steps(steps)
        out.append((time.perf_counter() - t) / steps)
    return out


# ----------------------------------------------------------------------------- children


def measure_kdjax(pair: str, precision: str, batch: int, steps: int, repeats: int) -> dict:
    import jax
    import jax.numpy as jnp
    import optax

    from kdjax.methods.kd.method import make_kd_loss
    from kdjax.models import get_model
    from kdjax.train import mesh as mesh_lib
    from kdjax.train.state import create_train_state, init_variables
    from kdjax.train.method import Method
    from kdjax.train.step import make_train_step

    spec = PAIRS[pair]
    dtype = jnp.bfloat16 if precision == "bf16" else jnp.float32
    c = spec["shape"][-1]
    mean, std = (0.5,) * c, (0.25,) * c
    mesh = mesh_lib.make_mesh()
    student = get_model(spec["student"], spec["classes"], dtype=dtype, **spec["student_kw"])
    teacher = get_model(spec["teacher"], spec["classes"], dtype=dtype, **spec["teacher_kw"])
    t_vars = init_variables(teacher, jax.random.key(1), spec["shape"])
    state = create_train_state(student, optax.sgd(LR, momentum=MOMENTUM), jax.random.key(0),
                               spec["shape"], frozen={"teachers": [t_vars]})
    rep = mesh_lib.replicated(mesh)
    shard = jax.tree.map(lambda _: rep, state)
    state = jax.device_put(state, shard)
    fn = make_train_step(student, Method(loss=make_kd_loss(TEMPERATURE, ALPHA)), mean=mean,
                         std=std, teachers=[teacher])
    step = jax.jit(fn, in_shardings=(shard, mesh_lib.data_sharded(mesh), rep),
                   out_shardings=(shard, rep), donate_argnums=(0,))
    batches = [mesh_lib.to_global(_fake_batch(spec, batch, False, seed=s), mesh) for s in range(4)]
    key = jax.device_put(jax.random.key(0), rep)
    t0 = time.perf_counter()
    lowered = step.lower(state, batches[0], key)
    compiled = lowered.compile()
    compile_s = time.perf_counter() - t0
    # FLOPs of the step as written, from XLA:CPU's analysis of the same program: XLA:GPU's
    # compiled cost analysis counts convolutions lowered to cuDNN custom calls as zero.
    cpu = jax.sharding.SingleDeviceSharding(jax.devices("cpu")[0])
    abstract = jax.tree.map(lambda a: jax.ShapeDtypeStruct(jnp.shape(a), jax.dtypes.result_type(a),
                                                           sharding=cpu),
                            (state, batches[0], key))
    cost = jax.jit(fn).lower(*abstract).cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    box = {"state": state, "i": 0}

    def run_steps(n):
        m = None
        for _ in range(n):
            box["state"], m = compiled(box["state"], batches[box["i"] % 4], key)
            box["i"] += 1
        jax.block_until_ready((box["state"].params, m))
        if not jnp.isfinite(m["loss_sum"]):
            raise FloatingPointError(f"kdjax {pair} {precision}: non-finite loss")

    times = _median_window(run_steps, steps, repeats, warmup=3)
    return {"times": times, "compile_s": compile_s, "flops_per_step": float(cost["flops"]),
            "device": jax.devices()[0].device_kind, "version": f"jax {jax.__version__}"}


def measure_torch(pair: str, precision: str, batch: int, steps: int, repeats: int,
                  mode: str) -> dict:
    import torch
    from bench import torch_models

    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    torch.backends.cudnn.benchmark = True
    dev = torch.device("cuda")
    spec = PAIRS[pair]
    c = spec["shape"][-1]
    torch.manual_seed(0)
    fmt = torch.channels_last
    student = _torch_model(spec, "student").to(dev, memory_format=fmt).train()
    teacher = _torch_model(spec, "teacher").to(dev, memory_format=fmt).eval()
    opt = torch.optim.SGD(student.parameters(), lr=LR, momentum=MOMENTUM, fused=True)
    s_fwd, t_fwd = student, teacher
    if mode != "eager":
        s_fwd = torch.compile(student, mode=None if mode == "compile" else mode)
        t_fwd = torch.compile(teacher, mode=None if mode == "compile" else mode)
    data = [_fake_batch(spec, batch, False, seed=s) for s in range(4)]
    images = [torch.from_numpy(d["image"]).to(dev).permute(0, 3, 1, 2).contiguous(
        memory_format=fmt) for d in data]
    labels = [torch.from_numpy(d["label"]).to(dev).long() for d in data]
    mean = torch.full((1, c, 1, 1), 0.5, device=dev)
    std = torch.full((1, c, 1, 1), 0.25, device=dev)
    amp = precision == "bf16"

    def step(i):
        x = (images[i].float() / 255.0 - mean) / std
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
            with torch.no_grad():
                t_logits, _ = t_fwd(x)
            logits, _ = s_fwd(x)
        loss = torch_models.kd_loss(logits.float(), t_logits.float(), labels[i], TEMPERATURE,
                                    ALPHA)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss

    box = {"i": 0}

    def run_steps(n):
        loss = None
        for _ in range(n):
            if mode == "reduce-overhead":
                torch.compiler.cudagraph_mark_step_begin()
            loss = step(box["i"] % 4)
            box["i"] += 1
        torch.cuda.synchronize()
        if not torch.isfinite(loss):
            raise FloatingPointError(f"torch {pair} {precision} {mode}: non-finite loss")

    t0 = time.perf_counter()
    run_steps(3)  # compilation (torch.compile traces on the first calls)
    compile_s = time.perf_counter() - t0
    times = _median_window(run_steps, steps, repeats, warmup=3)
    return {"times": times, "compile_s": compile_s, "device": torch.cuda.get_device_name(),
            "version": f"torch {torch.__version__}"}


def measure_matmul(precision: str) -> dict:
    """TFLOP/s of an 8192^3 matrix product (random inputs), the chip's practical ceiling."""
    import jax
    import jax.numpy as jnp
    n = 8192
    dtype = jnp.bfloat16 if precision == "bf16" else jnp.float32
    a = jax.random.normal(jax.random.key(0), (n, n), dtype)
    b = jax.random.normal(jax.random.key(1), (n, n), dtype)
    f = jax.jit(lambda a, b: a @ b)
    f(a, b).block_until_ready()

    def run(k):
        out = None
        for _ in range(k):
            out = f(a, b)
        out.block_until_ready()

    times = _median_window(run, 10, 5, warmup=2)
    # Which float32 arithmetic the default precision gives (TF32: error near 1e-3).
    import numpy as np
    x, y = np.asarray(a[:512, :512], np.float64), np.asarray(b[:512, :512], np.float64)
    got = np.asarray(f(jnp.asarray(x, dtype), jnp.asarray(y, dtype)), np.float64)
    ref = np.asarray(jnp.asarray(x, dtype), np.float64) @ np.asarray(jnp.asarray(y, dtype),
                                                                      np.float64)
    return {"tflops": 2 * n ** 3 / statistics.median(times) / 1e12,
            "rel_err_vs_float64": float(np.linalg.norm(got - ref) / np.linalg.norm(ref))}


def child_main(args) -> None:
    from kdjax import platform
    platform.apply(persistent_cache=False)  # launch/'s CPU settings, no compilation cache
    fw, pair, precision, batch, mode = args.child.split(",")
    if fw == "kdjax":
        res = measure_kdjax(pair, precision, int(batch), args.steps, args.repeats)
    elif fw == "torch":
        res = measure_torch(pair, precision, int(batch), args.steps, args.repeats, mode)
    elif fw == "matmul":
        res = measure_matmul(precision)
    else:
        raise ValueError(f"unknown child {fw!r}")
    print("RESULT " + json.dumps(res), flush=True)


# ----------------------------------------------------------------------------- parent


def run_child(cell: str, args) -> dict | None:
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
               XLA_PYTHON_CLIENT_PREALLOCATE="false")
    cmd = [sys.executable, os.path.abspath(__file__), f"--child={cell}",
           f"--steps={args.steps}", f"--repeats={args.repeats}"]
    t = time.perf_counter()
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=ROOT,
                         timeout=args.cell_timeout)
    lines = [l for l in out.stdout.splitlines() if l.startswith("RESULT ")]
    if out.returncode or not lines:
        print(f"# {cell} FAILED:\n{out.stderr[-2000:]}", file=sys.stderr, flush=True)
        return None
    res = json.loads(lines[-1][len("RESULT "):])
    print(f"# {cell}: {json.dumps(res)} ({time.perf_counter() - t:.0f} s)", file=sys.stderr,
          flush=True)
    return res


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", default=",".join(PAIRS))
    ap.add_argument("--batches", default="128,1024")
    ap.add_argument("--precisions", default="fp32,bf16")
    ap.add_argument("--torch_modes", default="eager,compile",
                    help="comma list of eager, compile, reduce-overhead")
    ap.add_argument("--steps", type=int, default=20, help="steps per timed window")
    ap.add_argument("--repeats", type=int, default=5, help="timed windows per cell")
    ap.add_argument("--cell_timeout", type=int, default=300)
    ap.add_argument("--json", default="")
    ap.add_argument("--child", default="", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    for p in args.pairs.split(","):
        if p not in PAIRS:
            raise ValueError(f"unknown pair {p!r}; known: {list(PAIRS)}")
    for p in args.precisions.split(","):
        if p not in ("fp32", "bf16"):
            raise ValueError(f"unknown precision {p!r}; known: fp32, bf16")
    for m in args.torch_modes.split(","):
        if m not in ("eager", "compile", "reduce-overhead"):
            raise ValueError(f"unknown torch mode {m!r}")
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.child:
        child_main(args)
        return
    t_start = time.time()
    modes = args.torch_modes.split(",")
    precisions = args.precisions.split(",")
    ceiling = {p: run_child(f"matmul,-,{p},0,-", args) for p in precisions}
    rows, raw = [], []
    device = version_j = version_t = "?"
    for pair in args.pairs.split(","):
        for precision in precisions:
            for batch in map(int, args.batches.split(",")):
                j = run_child(f"kdjax,{pair},{precision},{batch},-", args)
                t = {m: run_child(f"torch,{pair},{precision},{batch},{m}", args) for m in modes}
                raw.append({"pair": pair, "precision": precision, "batch": batch, "kdjax": j,
                            "torch": t})
                if j:
                    device, version_j = j["device"], j["version"]
                version_t = next((r["version"] for r in t.values() if r), version_t)
                eps = lambda r: batch / statistics.median(r["times"]) if r else float("nan")
                j_eps = eps(j)
                row = [pair, precision, str(batch)]
                for m in modes:
                    row += [f"{eps(t[m]):,.0f}", f"{j_eps / eps(t[m]):.2f}x"]
                row.append(f"{j_eps:,.0f}")
                if j:
                    tflops = j["flops_per_step"] * j_eps / batch / 1e12
                    peak = chip_peak(device, precision)
                    meas = (ceiling.get(precision) or {}).get("tflops")
                    row += [f"{tflops:.1f}", f"{100 * tflops / peak:.1f}%" if peak else "?",
                            f"{100 * tflops / meas:.1f}%" if meas else "?",
                            f"{j['compile_s']:.0f}"]
                else:
                    row += ["failed"] * 4
                rows.append(row)
    print(f"\nKD step examples/s on {device} ({version_j}, {version_t}); SGD momentum, Hinton KD "
          f"T={TEMPERATURE} alpha={ALPHA}; median of {args.repeats} windows x {args.steps} "
          f"steps after warm-up; total {time.time() - t_start:.0f} s")
    print("matmul ceiling (8192^3, measured here): " + ", ".join(
        f"{p} {c['tflops']:.0f} TFLOP/s (rel. error vs float64 {c['rel_err_vs_float64']:.1e})"
        for p, c in ceiling.items() if c))
    head = ["pair", "precision", "batch"]
    for m in modes:
        head += [f"PyTorch {m} ex/s", f"kdjax / {m}"]
    head += ["kdjax ex/s", "kdjax TFLOP/s", "% datasheet peak", "% measured matmul",
             "kdjax compile s"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print("fp32 = TF32 tensor-core convs/matmuls in both frameworks; bf16 = bf16 compute, float32 "
          "parameters and loss; FLOPs from XLA:CPU's cost analysis of the kdjax step")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"ceiling": ceiling, "cells": raw}, f, indent=1)


if __name__ == "__main__":
    main()
