"""Examples/s of the full KD train step (teacher forward + student forward/backward + SGD).

One run, one table: each teacher->student pair on 1 device and on 8 devices (on a CPU host the
8 are fake devices splitting the cores: `--xla_force_host_platform_device_count=8`), with
the teacher inside the step and with its soft labels cached. Median of `--repeats` timed
windows after warm-up.

    python bench/train_step.py                 # all pairs, batch 128
    python bench/train_step.py --pairs=cnn --repeats=3
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

PAIRS = {
    "cnn": dict(teacher="cnn_small", student="cnn_small", shape=(28, 28, 1),
                teacher_kw={"widths": (32, 64), "hidden": 256},
                student_kw={"widths": (8, 16), "hidden": 32}),
    "resnet56_resnet20": dict(teacher="resnet56", student="resnet20", shape=(32, 32, 3),
                              teacher_kw={}, student_kw={}),
    "resnet32x4_resnet8x4": dict(teacher="resnet32x4", student="resnet8x4", shape=(32, 32, 3),
                                 teacher_kw={}, student_kw={}),
}


def measure(pair: str, devices: int, cached: bool, batch: int, steps: int, repeats: int) -> dict:
    """Runs inside a child process whose XLA_FLAGS fix the device count."""
    from kdjax import platform
    platform.apply(persistent_cache=False)  # launch/'s CPU settings, no compilation cache
    import jax
    import numpy as np

    from kdjax.data import DatasetInfo
    from kdjax.methods.kd.method import make_kd_loss
    from kdjax.models import get_model
    from kdjax.train import mesh as mesh_lib
    from kdjax.train.state import create_train_state, init_variables
    from kdjax.train.method import Method
    from kdjax.train.step import make_train_step
    import optax

    spec = PAIRS[pair]
    info = DatasetInfo("bench", 100, spec["shape"], (0.5,) * spec["shape"][-1],
                       (0.25,) * spec["shape"][-1])
    mesh = mesh_lib.make_mesh()
    student = get_model(spec["student"], 100, **spec["student_kw"])
    teacher = get_model(spec["teacher"], 100, **spec["teacher_kw"])
    t_vars = init_variables(teacher, jax.random.key(1), spec["shape"])
    state = create_train_state(student, optax.sgd(0.01, momentum=0.9), jax.random.key(0),
                               spec["shape"], frozen={"teachers": None if cached else [t_vars]})
    rep = mesh_lib.replicated(mesh)
    shard = jax.tree.map(lambda _: rep, state)
    state = jax.device_put(state, shard)
    step = jax.jit(make_train_step(student, Method(loss=make_kd_loss(4.0, 0.9)), mean=info.mean,
                                   std=info.std, teachers=[] if cached else [teacher]),
                   in_shardings=(shard, mesh_lib.data_sharded(mesh), rep),
                   out_shardings=(shard, rep), donate_argnums=(0,))
    rng = np.random.default_rng(0)
    local = {"image": rng.integers(0, 256, (batch, *spec["shape"]), dtype=np.uint8),
             "label": rng.integers(0, 100, batch).astype(np.int32),
             "id": np.arange(batch, dtype=np.int32), "mask": np.ones(batch, np.float32)}
    if cached:
        local["teacher_logits"] = rng.normal(size=(batch, 100)).astype(np.float32)
    batch_arr = mesh_lib.to_global(local, mesh)
    key = jax.device_put(jax.random.key(0), rep)
    for _ in range(2):
        state, m = step(state, batch_arr, key)
    jax.block_until_ready(m)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(steps):
            state, m = step(state, batch_arr, key)
        jax.block_until_ready(m)
        times.append((time.perf_counter() - t) / steps)
    return {"pair": pair, "devices": jax.device_count(), "cached": cached,
            "examples_per_sec": batch / float(np.median(times))}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", default=",".join(PAIRS))
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--child", default="")
    args = ap.parse_args()
    if args.child:
        pair, devices, cached = args.child.split(",")
        print(json.dumps(measure(pair, int(devices), cached == "1", args.batch, args.steps,
                                 args.repeats)))
        return
    rows = []
    for pair in args.pairs.split(","):
        for cached in (False, True):
            for devices in (1, 8):
                env = dict(os.environ, JAX_PLATFORMS=os.environ.get("JAX_PLATFORMS", "cpu"),
                           XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}")
                out = subprocess.run(
                    [sys.executable, __file__, f"--child={pair},{devices},{int(cached)}",
                     f"--batch={args.batch}", f"--steps={args.steps}",
                     f"--repeats={args.repeats}"], env=env, capture_output=True, text=True,
                    cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
                if out.returncode:
                    raise SystemExit(out.stderr[-3000:])
                rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(f"KD train step, batch {args.batch}, float32, median of {args.repeats} windows of "
          f"{args.steps} steps")
    print("| pair | teacher | 1 device ex/s | 8 devices ex/s | 8 / 1 |")
    print("|---|---|---|---|---|")
    for pair in args.pairs.split(","):
        for cached in (False, True):
            one, eight = (next(r["examples_per_sec"] for r in rows if r["pair"] == pair
                               and r["cached"] == cached and r["devices"] == d) for d in (1, 8))
            print(f"| {pair} | {'cached soft labels' if cached else 'in the step'} | "
                  f"{one:.0f} | {eight:.0f} | {eight / one:.2f}x |")


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    main()
