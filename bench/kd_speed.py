"""KD training speed, kdjax vs the PyTorch way, measured side by side in one run (issue 10).

For each teacher -> student pair, the same models in both frameworks (equal parameter counts are
asserted), the same batch, float32, the same CPU cores and thread count. Measured: examples/s of
the full KD step (teacher forward under no_grad / stop_gradient, student forward + backward, SGD
momentum update, uint8 -> normalised float input) after warm-up, median of `--repeats` timed
windows; the ratio kdjax / PyTorch per pair. Also: the same with the teacher's soft labels cached
(no teacher forward), kdjax on 1 vs 8 fake CPU devices, and the input pipeline alone
(`iterate_batches` + `to_global` on Fashion-MNIST), which must outrun every step.

Every measurement runs in a fresh subprocess (so the frameworks never share thread pools),
pinned to the same `--threads` cores (default: all cores the parent may use); PyTorch gets
`torch.set_num_threads(threads)`, XLA's CPU client sizes its intra-op (Eigen) pool from the
same affinity mask. The measurements of a cell (PyTorch, each kdjax variant, the multi-device
runs) start together, warm up together and then take turns window by window, one running while
the others wait idle (`run_interleaved`; `--no-interleave` runs them one after the other), over
`--rounds` rounds, so that drift in the host's speed hits all of them alike; the table reports
the median over all windows and the paired per-window ratio with its 95% interval.

    python bench/kd_speed.py                         # all pairs, batch 128, full table
    python bench/kd_speed.py --quick --pairs=cnn     # a smoke run in well under a minute
    python bench/kd_speed.py --pairs=resnet56_resnet20 --variants=default,lean

`--variants` adds kdjax step variants (see VARIANTS) measured side by side with the default;
see docs/performance.md for what they are and what they showed. `--torch-avx2` adds PyTorch with
its kernels held to AVX2 (`ONEDNN_MAX_CPU_ISA=AVX2`, `ATEN_CPU_CAPABILITY=avx2`): on an AVX-512
host it separates what the vector ISA of the convolution kernels is worth from the rest.
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

PAIRS = {
    "cnn": dict(teacher="cnn_small", student="cnn_small", shape=(28, 28, 1), classes=10,
                teacher_kw={"widths": (32, 64), "hidden": 256},
                student_kw={"widths": (8, 16), "hidden": 32}),
    "resnet56_resnet20": dict(teacher="resnet56", student="resnet20", shape=(32, 32, 3),
                              classes=100, teacher_kw={}, student_kw={}),
    "resnet32x4_resnet8x4": dict(teacher="resnet32x4", student="resnet8x4", shape=(32, 32, 3),
                                 classes=100, teacher_kw={}, student_kw={}),
}
TEMPERATURE, ALPHA, LR, MOMENTUM = 4.0, 0.9, 0.01, 0.9

# PyTorch measurements: child kind -> extra environment (oneDNN's and ATen's ISA caps are read
# when torch loads its kernels, so they must be set before the child starts).
TORCH_KINDS = {
    "torch": {},
    "torch_cl": {},  # channels_last tensors
    "torch_avx2": {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"},
}

# kdjax variants: extra XLA flags and/or a different step (see docs/performance.md).
VARIANTS = {
    "default": dict(flags="", step="kdjax"),  # kdjax.train.step.make_train_step as shipped
    "lean": dict(flags="", step="lean"),  # the same math, no grad-norm/accuracy metrics
    "onednn": dict(flags="--xla_cpu_use_onednn=true", step="kdjax"),
    "no_xnnpack": dict(flags="--xla_cpu_use_xnnpack=false", step="kdjax"),
    "xnnpack": dict(flags="--xla_cpu_use_xnnpack=true", step="kdjax"),
    "fast_math": dict(flags="--xla_cpu_enable_fast_math=true", step="kdjax"),
    "no_thunks": dict(flags="--xla_cpu_use_thunk_runtime=false", step="kdjax"),
    "single_thread_eigen": dict(flags="--xla_cpu_multi_thread_eigen=false", step="kdjax"),
    # BasicBlock output behind jax.lax.optimization_barrier: XLA may not re-fuse (recompute)
    # the residual stream into later consumers (see docs/performance.md).
    "barrier": dict(flags="", step="kdjax", patch="block_barrier"),
    "barrier_lean": dict(flags="", step="lean", patch="block_barrier"),
    # 2x2 max pool as reshape + max (kdjax.models.cnn); see docs/performance.md.
    "reshape_pool": dict(flags="", step="kdjax", patch="reshape_pool"),
    # the CIFAR ResNets without layers.materialize on block outputs (the pre-issue-19 model).
    "no_materialize": dict(flags="", step="kdjax", model_kw={"materialize": False}),
    # every BatchNorm as flax's nn.BatchNorm (the default is layers.FusedBatchNorm).
    "flax_bn": dict(flags="", step="kdjax", model_kw={"fused_bn": False}),
    # XLA's own CPU defaults (YNNPACK convolutions), not kdjax.platform.xla_cpu's.
    "xla_defaults": dict(flags="", step="kdjax", env={"KDJAX_XLA_CPU_DEFAULTS": "0"}),
    # the step before the fused-BatchNorm / Eigen-convolution change: both of the above.
    "before": dict(flags="", step="kdjax", model_kw={"fused_bn": False},
                   env={"KDJAX_XLA_CPU_DEFAULTS": "0"}),
    # BatchNorm channel sums without the fused W-axis partial sums (before part 5).
    "batch_sums": dict(flags="", step="kdjax", patch="batch_sums"),
    # glibc malloc as the C library ships it: kdjax.platform.host_heap off (before issue 19
    # part 6; the resnet20 step's 230 MiB temp buffer is mmap'ed and page-faulted in every step).
    "glibc_malloc": dict(flags="", step="kdjax", env={"KDJAX_HOST_HEAP": "0"}),
    # the same, with glibc's mmap'ed chunks as transparent huge pages (512x fewer faults).
    "glibc_thp": dict(flags="", step="kdjax", env={"KDJAX_HOST_HEAP": "0",
                                                   "GLIBC_TUNABLES": "glibc.malloc.hugetlb=1"}),
    # every convolution on XLA's Eigen kernels: kdjax.platform.onednn_conv off (before part 7).
    "xla_conv": dict(flags="", step="kdjax", env={"KDJAX_ONEDNN_CONV": "0"}),
    "no_fusion": dict(flags="--xla_disable_hlo_passes=fusion", step="kdjax"),
    "no_ynn": dict(flags="--xla_cpu_experimental_ynn_fusion_type=", step="kdjax"),
    "onednn_cc": dict(flags="--xla_cpu_use_onednn=true --xla_cpu_experimental_onednn_custom_call=true",
                      step="kdjax"),
}


# ----------------------------------------------------------------------------- children


def _pin(threads: int) -> None:
    cores = sorted(os.sched_getaffinity(0))[:threads]
    os.sched_setaffinity(0, cores)


def _fake_batch(spec: dict, batch: int, cached: bool, seed: int = 0):
    import numpy as np
    rng = np.random.default_rng(seed)
    out = {"image": rng.integers(0, 256, (batch, *spec["shape"]), dtype=np.uint8),
           "label": rng.integers(0, spec["classes"], batch).astype(np.int32),
           "id": np.arange(batch, dtype=np.int32), "mask": np.ones(batch, np.float32)}
    if cached:
        out["teacher_logits"] = rng.normal(size=(batch, spec["classes"])).astype(np.float32)
    return out


def _no_gate() -> None:
    pass


def _lockstep_gate() -> None:
    """Interleaved runs: say READY on stdout, then wait for the parent's go on stdin."""
    print("READY", flush=True)
    if not sys.stdin.readline():
        raise SystemExit("parent closed stdin")


_WINDOW_GATE = _no_gate


def _time(run_window, repeats: int, warmup: int = 2) -> tuple[list[float], list[float]]:
    """(wall seconds, process CPU seconds) per step for each timed window.

    CPU seconds of the whole process (all its threads) barely depend on how much of the shared
    machine other processes take, so they compare frameworks robustly on a loaded host.
    """
    for _ in range(warmup):
        run_window(1)
    times, cpu = [], []
    for _ in range(repeats):
        _WINDOW_GATE()
        c = time.process_time()
        t, steps = run_window(None)
        times.append(t / steps)
        cpu.append((time.process_time() - c) / steps)
    return times, cpu


def jax_param_count(pair: str) -> tuple[int, int]:
    """(teacher, student) trainable parameter counts of the kdjax models."""
    import jax
    from kdjax.models import get_model
    from kdjax.train.state import init_variables
    spec = PAIRS[pair]
    counts = []
    for role in ("teacher", "student"):
        model = get_model(spec[role], spec["classes"], **spec[f"{role}_kw"])
        shapes = jax.eval_shape(lambda: init_variables(model, jax.random.key(0), spec["shape"]))
        counts.append(sum(int(x.size) for x in jax.tree.leaves(shapes["params"])))
    return tuple(counts)


def torch_param_count(pair: str) -> tuple[int, int]:
    from bench import torch_models
    spec = PAIRS[pair]
    return tuple(torch_models.num_params(_torch_model(spec, role)) for role in
                 ("teacher", "student"))


def _torch_model(spec: dict, role: str):
    from bench import torch_models
    kw = dict(spec[f"{role}_kw"])
    if spec[role] == "cnn_small":
        kw.update(in_channels=spec["shape"][-1], image_size=spec["shape"][0])
    return torch_models.get_model(spec[role], spec["classes"], **kw)


def _lean_step(student, teacher, mean, std):
    """The KD step with nothing but the update: no metrics beyond the loss."""
    import jax
    import jax.numpy as jnp
    from kdjax import losses
    from kdjax.data.augment import normalize

    def step(state, batch, rng):
        del rng
        x = normalize(batch["image"], mean, std)
        if "teacher_logits" in batch:
            t_logits = batch["teacher_logits"]
        else:
            t_logits, _ = teacher.apply(state.frozen["teachers"][0], x, train=False)
            t_logits = jax.lax.stop_gradient(t_logits)

        def objective(params):
            (logits, _), upd = student.apply({"params": params, "batch_stats": state.batch_stats},
                                             x, train=True, mutable=["batch_stats"])
            loss = losses.kd_loss(logits, batch["label"], t_logits, temperature=TEMPERATURE,
                                  alpha=ALPHA)
            return jnp.mean(loss), upd

        (loss, upd), grads = jax.value_and_grad(objective, has_aux=True)(state.params)
        state = state.apply_gradients(grads=grads, batch_stats=upd["batch_stats"])
        return state, {"loss": loss}

    return step


def _patch_block_barrier() -> None:
    """Materialise every residual block's output (kdjax.models.resnet_cifar.BasicBlock)."""
    import jax
    from kdjax.models import resnet_cifar

    call = resnet_cifar.BasicBlock.__call__

    def barrier_call(self, x, train):
        return jax.lax.optimization_barrier(call(self, x, train))

    resnet_cifar.BasicBlock.__call__ = barrier_call


def reshape_max_pool(x, window_shape, strides=None, padding="VALID"):
    """Non-overlapping max pool (window == strides, sizes divisible, no padding) as a reshape
    and a max; its gradient is an elementwise select instead of XLA CPU's expanded
    select-and-scatter. Anything else falls back to flax's `max_pool`."""
    import flax.linen as nn
    strides = tuple(strides or window_shape)
    kh, kw = window_shape
    b, h, w, c = x.shape
    if (tuple(window_shape) != strides or padding != "VALID" or x.ndim != 4
            or h % kh or w % kw):
        return _FLAX_MAX_POOL[0](x, window_shape, strides=strides, padding=padding)
    return x.reshape(b, h // kh, kh, w // kw, kw, c).max(axis=(2, 4))


_FLAX_MAX_POOL: list = []


def _patch_reshape_pool() -> None:
    import flax.linen as nn
    from kdjax.models import cnn
    _FLAX_MAX_POOL.append(nn.max_pool)
    cnn.nn = type("nn_with_reshape_pool", (), {k: getattr(nn, k) for k in dir(nn)
                                               if not k.startswith("__")})
    cnn.nn.max_pool = staticmethod(reshape_max_pool)


def _patch_batch_sums() -> None:
    """BatchNorm channel sums as in part 3 of docs/performance.md: ones @ x.reshape(N, -1) on
    the whole tensor, without the W-axis partial sums fused into x's producer."""
    import jax
    import jax.numpy as jnp
    from kdjax.models import layers

    def batch_rows_sum(x):
        c = x.shape[-1]
        s = jnp.dot(jnp.ones((x.shape[0],), x.dtype), x.reshape(x.shape[0], -1),
                    precision=jax.lax.Precision.HIGHEST)
        return s.reshape(-1, c).sum(0) if s.size > c else s

    layers._channel_sum_dot = batch_rows_sum


PATCHES = {"block_barrier": _patch_block_barrier, "reshape_pool": _patch_reshape_pool,
           "batch_sums": _patch_batch_sums}


def measure_jax(pair: str, cached: bool, batch: int, steps: int, repeats: int,
                variant: str, dump_hlo: str = "") -> dict:
    import jax
    import numpy as np
    import optax

    from kdjax.methods.kd.method import make_kd_loss
    from kdjax.models import get_model
    from kdjax.train import mesh as mesh_lib
    from kdjax.train.state import create_train_state, init_variables
    from kdjax.train.method import Method
    from kdjax.train.step import make_train_step

    if VARIANTS[variant].get("patch"):
        PATCHES[VARIANTS[variant]["patch"]]()
    spec = PAIRS[pair]
    c = spec["shape"][-1]
    mean, std = (0.5,) * c, (0.25,) * c
    mesh = mesh_lib.make_mesh()
    extra_kw = VARIANTS[variant].get("model_kw", {}) if pair.startswith("resnet") else {}
    student = get_model(spec["student"], spec["classes"], **spec["student_kw"], **extra_kw)
    teacher = get_model(spec["teacher"], spec["classes"], **spec["teacher_kw"], **extra_kw)
    t_vars = init_variables(teacher, jax.random.key(1), spec["shape"])
    state = create_train_state(student, optax.sgd(LR, momentum=MOMENTUM), jax.random.key(0),
                               spec["shape"], frozen={"teachers": None if cached else [t_vars]})
    rep = mesh_lib.replicated(mesh)
    shard = jax.tree.map(lambda _: rep, state)
    state = jax.device_put(state, shard)
    if VARIANTS[variant]["step"] == "lean":
        fn = _lean_step(student, teacher, mean, std)
    else:
        fn = make_train_step(student, Method(loss=make_kd_loss(TEMPERATURE, ALPHA)), mean=mean,
                             std=std, teachers=[] if cached else [teacher])
    step = jax.jit(fn, in_shardings=(shard, mesh_lib.data_sharded(mesh), rep),
                   out_shardings=(shard, rep), donate_argnums=(0,))
    batch_arr = mesh_lib.to_global(_fake_batch(spec, batch, cached), mesh)
    key = jax.device_put(jax.random.key(0), rep)
    t0 = time.perf_counter()
    compiled = step.lower(state, batch_arr, key).compile()
    compile_s = time.perf_counter() - t0
    if dump_hlo:
        with open(dump_hlo, "w") as f:
            f.write(compiled.as_text())
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    flops = float(cost.get("flops", 0.0)) if cost else 0.0
    box = {"state": state}

    def window(n):
        n = n or steps
        t = time.perf_counter()
        for _ in range(n):
            box["state"], m = compiled(box["state"], batch_arr, key)
        jax.block_until_ready(m)
        return time.perf_counter() - t, n

    times, cpu = _time(window, repeats)
    # No recompiles or host round-trips in the loop: the compiled executable ran every step.
    return {"framework": "kdjax", "variant": variant, "devices": jax.device_count(),
            "times": times, "cpu": cpu, "compile_s": compile_s, "flops_per_step": flops,
            "params": jax_param_count(pair)}


def measure_torch(pair: str, cached: bool, batch: int, steps: int, repeats: int,
                  threads: int, channels_last: bool = False) -> dict:
    import numpy as np
    import torch
    from bench import torch_models

    torch.set_num_threads(threads)
    spec = PAIRS[pair]
    c = spec["shape"][-1]
    torch.manual_seed(0)
    student, teacher = _torch_model(spec, "student"), _torch_model(spec, "teacher")
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    student, teacher = student.to(memory_format=fmt), teacher.to(memory_format=fmt)
    teacher.eval()
    student.train()
    opt = torch.optim.SGD(student.parameters(), lr=LR, momentum=MOMENTUM)
    data = _fake_batch(spec, batch, cached)
    images = torch.from_numpy(data["image"]).permute(0, 3, 1, 2).contiguous(memory_format=fmt)
    labels = torch.from_numpy(data["label"]).long()
    cached_logits = torch.from_numpy(data["teacher_logits"]) if cached else None
    mean = torch.full((1, c, 1, 1), 0.5)
    std = torch.full((1, c, 1, 1), 0.25)

    def step():
        x = (images.float() / 255.0 - mean) / std
        if cached_logits is None:
            with torch.no_grad():
                t_logits, _ = teacher(x)
        else:
            t_logits = cached_logits
        logits, _ = student(x)
        loss = torch_models.kd_loss(logits, t_logits, labels, TEMPERATURE, ALPHA)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss

    def window(n):
        n = n or steps
        t = time.perf_counter()
        for _ in range(n):
            loss = step()
        loss.item()
        return time.perf_counter() - t, n

    times, cpu = _time(window, repeats)
    return {"framework": "torch" + ("_cl" if channels_last else ""), "variant": "",
            "devices": 1, "times": times, "cpu": cpu, "torch_threads": torch.get_num_threads(),
            "torch_isa": torch.backends.cpu.get_cpu_capability(),
            "params": torch_param_count(pair)}


def measure_pipeline(batch: int, repeats: int, devices_note: str = "") -> dict:
    """Input pipeline alone: fashion_mnist -> iterate_batches -> to_global, batches on device."""
    import jax

    from kdjax.data import iterate_batches, load_dataset
    from kdjax.train import mesh as mesh_lib

    splits, _ = load_dataset("fashion_mnist")
    mesh = mesh_lib.make_mesh()
    train = splits["train"]
    n_batches = min(100, len(train) // batch)
    times = []
    for r in range(repeats + 1):
        t = time.perf_counter()
        out = None
        for i, local in enumerate(iterate_batches(train, batch, seed=r, drop_remainder=True)):
            if i == n_batches:
                break
            out = mesh_lib.to_global(local, mesh)
        jax.block_until_ready(out)
        if r:  # the first pass warms up
            times.append((time.perf_counter() - t) / n_batches)
    return {"framework": "pipeline", "variant": "", "devices": jax.device_count(),
            "times": times}


def child_main(args) -> None:
    global _WINDOW_GATE
    from kdjax import platform
    platform.apply(persistent_cache=False)  # launch/'s CPU settings, no compilation cache
    _pin(args.threads)
    if args.lockstep:
        _WINDOW_GATE = _lockstep_gate
    kind, pair, cached, variant = args.child.split(",")
    cached = cached == "1"
    if kind == "kdjax":
        res = measure_jax(pair, cached, args.batch, args.steps, args.repeats, variant,
                          args.dump_hlo)
    elif kind in TORCH_KINDS:
        res = measure_torch(pair, cached, args.batch, args.steps, args.repeats, args.threads,
                            channels_last=kind == "torch_cl")
        res["framework"] = kind
    elif kind == "pipeline":
        res = measure_pipeline(args.batch, args.repeats)
    else:
        raise ValueError(f"unknown child kind {kind!r}")
    res.update(pair=pair, cached=cached, threads=len(os.sched_getaffinity(0)),
               xla_flags=os.environ.get("XLA_FLAGS", ""))  # as kdjax.platform.apply left them
    print("RESULT " + json.dumps(res))


# ----------------------------------------------------------------------------- parent


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            lines = f.read().splitlines()
        name = next((l.split(":", 1)[1].strip() for l in lines if l.startswith("model name")), "?")
        flags = next((l.split() for l in lines if l.startswith("flags")), [])
        return f"{name} ({'avx512f' if 'avx512f' in flags else 'avx2' if 'avx2' in flags else 'no avx2'})"
    except OSError:
        return "?"


def _child_command(kind: str, pair: str, cached: bool, variant: str, devices: int, args,
                   lockstep: bool = False) -> tuple[list[str], dict]:
    flags = [f"--xla_force_host_platform_device_count={devices}"]
    if kind == "kdjax" and VARIANTS[variant]["flags"]:
        flags.append(VARIANTS[variant]["flags"])
    env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS=" ".join(flags),
               PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    if kind == "kdjax":
        env.update(VARIANTS[variant].get("env", {}))
    env.update(TORCH_KINDS.get(kind, {}))
    cmd = [sys.executable, os.path.abspath(__file__),
           f"--child={kind},{pair},{int(cached)},{variant}", f"--batch={args.batch}",
           f"--steps={args.steps}", f"--repeats={args.repeats}", f"--threads={args.threads}"]
    return cmd + (["--lockstep"] if lockstep else []), env


def _child_result(kind: str, pair: str, cached: bool, variant: str, devices: int, args,
                  cmd: list[str], env: dict, returncode: int, stdout: str, stderr: str) -> dict:
    lines = [l for l in stdout.splitlines() if l.startswith("RESULT ")]
    if returncode or not lines:
        raise SystemExit(f"child {cmd[2:]} with XLA_FLAGS={env['XLA_FLAGS']!r} failed:\n"
                         f"{stderr[-3000:]}")
    res = json.loads(lines[-1][len("RESULT "):])
    eps = [round(args.batch / t, 1) for t in res["times"]]
    cpu = [round(1e3 * c, 1) for c in res.get("cpu", [])]
    print(f"# {kind} {pair} cached={cached} {variant} devices={devices}: {eps} ex/s, "
          f"{cpu} CPU ms/step",
          file=sys.stderr, flush=True)
    return res


def run_child(kind: str, pair: str, cached: bool, variant: str, devices: int, args) -> dict:
    """One measurement in its own subprocess, alone on the pinned cores."""
    cmd, env = _child_command(kind, pair, cached, variant, devices, args)
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=ROOT)
    return _child_result(kind, pair, cached, variant, devices, args, cmd, env, out.returncode,
                         out.stdout, out.stderr)


def run_interleaved(specs: list[tuple], args) -> list[dict]:
    """The measurements of one cell as concurrent subprocesses that take turns: every child
    warms up (compiles) while the others do, then the parent lets one child at a time run its
    next timed window (the others wait on stdin, idle), in the order of `specs`, window after
    window. Window i of every child is thus taken within seconds of the others', so drift in
    the host's speed (other tenants, frequency) hits all of them alike and the per-window
    ratios pair up (`paired_ratio`). specs: (kind, pair, cached, variant, devices) tuples."""
    import tempfile
    procs = []
    for spec in specs:
        cmd, env = _child_command(*spec, args, lockstep=True)
        err = tempfile.TemporaryFile(mode="w+")
        proc = subprocess.Popen(cmd, env=env, cwd=ROOT, text=True, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=err)
        procs.append((spec, cmd, env, proc, err, []))

    def wait_line(entry) -> str:
        """The child's next READY or RESULT line ('' once it exited without one)."""
        proc, seen = entry[3], entry[5]
        for line in proc.stdout:
            seen.append(line)
            if line.startswith(("READY", "RESULT ")):
                return line
        return ""

    try:
        for entry in procs:  # warm-up of all children: none is timed while another compiles
            wait_line(entry)
        for _ in range(args.repeats):
            for entry in procs:
                if entry[3].poll() is None:
                    time.sleep(0.1)  # let the previous child's worker threads go idle
                    entry[3].stdin.write("go\n")
                    entry[3].stdin.flush()
                    wait_line(entry)
    finally:
        outputs = []
        for spec, cmd, env, proc, err, seen in procs:
            rest, _ = proc.communicate()  # closes stdin: a child still waiting exits
            err.seek(0)
            outputs.append((spec, cmd, env, proc.returncode, "".join(seen) + (rest or ""),
                            err.read()))
            err.close()
    for o in outputs:  # a child that failed on its own, before those it left waiting
        if o[3] and "parent closed stdin" not in o[5]:
            _child_result(*o[0], args, *o[1:])  # raises
    return [_child_result(*o[0], args, *o[1:]) for o in outputs]


def paired_ratio(torch_times: list[float], kdjax_times: list[float]):
    """kdjax / PyTorch examples/s over paired windows (window i of each taken back to back):
    the geometric mean of t_torch,i / t_kdjax,i with its 95% t-interval (on the logs), n."""
    import math
    from kdjax.reproduce.stats import paired
    d = paired([math.log(t) for t in torch_times], [math.log(t) for t in kdjax_times])
    return math.exp(d.mean), math.exp(d.lo), math.exp(d.hi), d.n


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", default=",".join(PAIRS), help=f"comma list of {list(PAIRS)}")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--steps", type=int, default=3, help="steps per timed window")
    ap.add_argument("--repeats", type=int, default=3, help="timed windows per subprocess")
    ap.add_argument("--rounds", type=int, default=2,
                    help="alternating kdjax/PyTorch subprocess rounds per cell")
    ap.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    ap.add_argument("--variants", default="default",
                    help=f"kdjax variants, comma list of {list(VARIANTS)}")
    ap.add_argument("--no-cached", action="store_true", help="skip the cached-teacher rows")
    ap.add_argument("--no-devices", action="store_true", help="skip the multi-device rows")
    ap.add_argument("--devices", default="8",
                    help="comma list of XLA CPU device counts to split the host into (besides 1)")
    ap.add_argument("--no-pipeline", action="store_true", help="skip the input-pipeline row")
    ap.add_argument("--torch-channels-last", action="store_true",
                    help="also time PyTorch with channels_last tensors")
    ap.add_argument("--torch-avx2", action="store_true",
                    help="also time PyTorch with oneDNN and ATen held to AVX2 kernels")
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: 1 round, 1 window of 1 step, batch <= 32, no 8-device rows")
    ap.add_argument("--json", default="", help="also write all raw results to this file")
    ap.add_argument("--no-interleave", dest="interleave", action="store_false",
                    help="run each measurement alone, one after the other (default: the "
                         "measurements of a cell take turns window by window; run_interleaved)")
    ap.add_argument("--child", default="", help=argparse.SUPPRESS)
    ap.add_argument("--lockstep", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--dump-hlo", default="", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    for p in args.pairs.split(","):
        if p not in PAIRS:
            raise ValueError(f"unknown pair {p!r}; known: {list(PAIRS)}")
    for v in args.variants.split(","):
        if v not in VARIANTS:
            raise ValueError(f"unknown variant {v!r}; known: {list(VARIANTS)}")
    if args.quick:
        args.rounds, args.repeats, args.steps = 1, 1, 1
        args.batch = min(args.batch, 32)
        args.no_devices = True
    args.device_counts = [int(n) for n in args.devices.split(",")]
    if any(n < 2 for n in args.device_counts):
        raise ValueError(f"--devices must list counts >= 2, got {args.devices!r}")
    if args.batch < 1 or args.repeats < 1 or args.steps < 1 or args.rounds < 1:
        raise ValueError("--batch, --steps, --repeats and --rounds must be >= 1")
    return args


def _eps(results: list[dict], batch: int, key: str = "times", **match) -> float:
    """Examples/s from the median wall (key='times') or CPU (key='cpu') seconds per step over
    every window of the matching results."""
    times = [t for r in results if all(r.get(k) == v for k, v in match.items())
             for t in r[key]]
    if not times:
        raise ValueError(f"no results match {match}")
    return batch / statistics.median(times)


def _fmt_paired(results: list[dict], variant: str, pair: str, cached: bool,
                reference: str = "torch") -> str:
    """Paired window ratio of a kdjax variant (1 device) against a PyTorch kind (`reference`,
    a TORCH_KINDS key) or another kdjax variant (`reference` = "kdjax:VARIANT") over all rounds."""
    torch_times, kdjax_times = [], []
    ref_variant = reference[len("kdjax:"):] if reference.startswith("kdjax:") else None
    for r in results:
        if (r["framework"] == "kdjax" and r["variant"] == variant
                and r["devices"] == 1 and r["pair"] == pair and r["cached"] == cached):
            ref = next(t for t in results if t["pair"] == pair and t["cached"] == cached
                       and t.get("round") == r.get("round") and (
                           t["framework"] == reference if ref_variant is None else
                           (t["framework"] == "kdjax" and t["variant"] == ref_variant
                            and t["devices"] == 1)))
            torch_times += ref["times"]
            kdjax_times += r["times"]
    mean, lo, hi, n = paired_ratio(torch_times, kdjax_times)
    return f"{mean:.2f}x, n={n}" if n < 2 else f"{mean:.2f}x [{lo:.2f}, {hi:.2f}], n={n}"


def main(argv=None) -> list[dict]:
    args = parse_args(argv)
    if args.child:
        child_main(args)
        return []
    pairs = args.pairs.split(",")
    variants = args.variants.split(",")
    results: list[dict] = []
    t_start = time.time()
    torch_kinds = (["torch"] + (["torch_cl"] if args.torch_channels_last else [])
                   + (["torch_avx2"] if args.torch_avx2 else []))
    for pair in pairs:
        for cached in (False,) if args.no_cached else (False, True):
            for round_index in range(args.rounds):
                specs = ([(kind, pair, cached, "", 1) for kind in torch_kinds]
                         + [("kdjax", pair, cached, v, 1) for v in variants]
                         + [("kdjax", pair, cached, variants[0], n)
                            for n in ([] if args.no_devices else args.device_counts)])
                cell = (run_interleaved(specs, args) if args.interleave
                        else [run_child(*spec, args) for spec in specs])
                for res in cell:
                    res["round"] = round_index
                results += cell
        jp, tp = results[-1]["params"], next(r for r in results
                                             if r["framework"] == "torch" and r["pair"] == pair
                                             )["params"]
        if tuple(jp) != tuple(tp):
            raise SystemExit(f"{pair}: parameter counts differ, kdjax {jp} vs torch {tp}")
    if not args.no_pipeline:
        for devices in (1,) if args.no_devices else (1, 8):
            results.append(run_child("pipeline", "-", False, "", devices, args))

    print(f"KD step examples/s: batch {args.batch}, float32, SGD momentum, {args.threads} "
          f"core(s) pinned, torch.set_num_threads({args.threads}), XLA intra-op pool = pinned "
          f"cores; median of {args.rounds} round(s) x {args.repeats} window(s) x {args.steps} "
          f"step(s); total {time.time() - t_start:.0f} s; CPU: {_cpu_model()}; PyTorch kernels: "
          f"{next((r.get('torch_isa', '?') for r in results if r['framework'] == 'torch'), '?')}"
          f"; kdjax XLA_FLAGS: "
          f"{next((r['xla_flags'] for r in results if r['framework'] == 'kdjax'), '')!r}")
    print("| pair (teacher/student params) | teacher | PyTorch ex/s | " +
          " | ".join(f"kdjax {v} ex/s | ratio | CPU-time ratio | paired window ratio [95% CI], n"
                     for v in variants) +
          "".join(f" | kdjax {variants[0]} {n} dev ex/s | {n}/1 dev | {n} dev / PyTorch"
                  for n in ([] if args.no_devices else args.device_counts)) + " |")
    ncol = 3 + 4 * len(variants) + (0 if args.no_devices else 3 * len(args.device_counts))
    print("|" + "---|" * ncol)
    for pair in pairs:
        params = next(r["params"] for r in results if r["pair"] == pair)
        for cached in (False,) if args.no_cached else (False, True):
            sel = dict(pair=pair, cached=cached)
            pt = _eps(results, args.batch, framework="torch", **sel)
            pt_cpu = _eps(results, args.batch, "cpu", framework="torch", **sel)
            row = [f"{pair} ({params[0]:,}/{params[1]:,})",
                   "cached soft labels" if cached else "forward in step", f"{pt:.0f}"]
            for v in variants:
                j = _eps(results, args.batch, framework="kdjax", variant=v, devices=1, **sel)
                j_cpu = _eps(results, args.batch, "cpu", framework="kdjax", variant=v,
                             devices=1, **sel)
                row += [f"{j:.0f}", f"{j / pt:.2f}x", f"{j_cpu / pt_cpu:.2f}x",
                        _fmt_paired(results, variant=v, **sel)]
            j1 = _eps(results, args.batch, framework="kdjax", variant=variants[0], devices=1,
                      **sel)
            for n in ([] if args.no_devices else args.device_counts):
                jn = _eps(results, args.batch, framework="kdjax", variant=variants[0],
                          devices=n, **sel)
                row += [f"{jn:.0f}", f"{jn / j1:.2f}x", f"{jn / pt:.2f}x"]
            print("| " + " | ".join(row) + " |")
            for v in variants[1:]:
                print(f"|   kdjax {v} / kdjax {variants[0]}, paired window ratio: "
                      f"{_fmt_paired(results, variant=v, reference='kdjax:' + variants[0], **sel)} |")
            if args.torch_channels_last:
                cl = _eps(results, args.batch, framework="torch_cl", **sel)
                print(f"|   PyTorch channels_last: {cl:.0f} ex/s |")
            if args.torch_avx2:
                a2 = _eps(results, args.batch, framework="torch_avx2", **sel)
                isa = next(r.get("torch_isa", "?") for r in results
                           if r["framework"] == "torch_avx2")
                print(f"|   PyTorch, kernels held to AVX2 (reports {isa}): {a2:.0f} ex/s; "
                      f"kdjax {variants[0]} / it: {j1 / a2:.2f}x, paired window ratio "
                      f"{_fmt_paired(results, variant=variants[0], reference='torch_avx2', **sel)}"
                      " |")
    print("ratio = kdjax / PyTorch examples/s (wall clock); CPU-time ratio = PyTorch / kdjax "
          "process CPU seconds per step (robust when other processes load the machine); "
          "paired window ratio = geometric mean over windows i of t_PyTorch,i / t_kdjax,i with "
          "its 95% t-interval, windows " + ("taken in turn (interleaved)" if args.interleave
                                            else "of separate runs (--no-interleave)"))
    if not args.no_pipeline:
        for r in results:
            if r["framework"] == "pipeline":
                eps = args.batch / statistics.median(r["times"])
                print(f"input pipeline alone (fashion_mnist, iterate_batches + to_global, "
                      f"{r['devices']} device(s)): {eps:.0f} examples/s")
    comp = [(r["pair"], r["cached"], r["compile_s"]) for r in results
            if r["framework"] == "kdjax" and r["devices"] == 1]
    if comp:
        print("kdjax compile s (first round): " + ", ".join(
            f"{p}{'/cached' if c else ''} {s:.1f}" for p, c, s in dict(
                ((p, c), (p, c, s)) for p, c, s in reversed(comp)).values()))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return results


if __name__ == "__main__":
    sys.path.insert(0, ROOT)
    main()
