"""Where a jitted ResNet step's CPU time goes, by native code, from Linux `perf` samples.

    python bench/perf_attribution.py [VARIANT DEPTH STEPS]      # default: default 20 8

Runs `taskset -c 0 python bench/resnet_variants.py VARIANT DEPTH STEPS` under `perf record -g`
(clock CLOCK_MONOTONIC, so that only samples inside the timed steps, whose window
resnet_variants prints, are counted; compilation is left out) with `ONEDNN_JIT_PROFILE=2`, which
makes oneDNN write a perf map naming the kernels it generates at run time. Each sample goes to
one category by its innermost frame (and, for XLA's own generated code, which has no symbols,
by its caller, a KernelThunk); the table gives the share of the window's samples and CPU ms per
step. `bench/op_profile.py` (PROFILE=1 in resnet_variants) attributes time to HLO ops; this
script attributes it to the libraries below them. Needs `perf` (Debian: linux-perf) and a
kernel that lets this user sample (perf_event_paranoid <= 2, or root). docs/performance.md,
issue 19 part 6.
"""
from __future__ import annotations

import collections
import os
import re
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# (name, test on (innermost symbol, caller symbols)); the first that holds wins.
CATEGORIES = (
    ("oneDNN JIT sgemm, AVX-512 (xbyak_gemm)",
     lambda leaf, up: leaf.startswith("jit_avx512") and "gemm_f32_xbyak_gemm" in leaf),
    ("oneDNN JIT sgemm, AVX2", lambda leaf, up: leaf.startswith("jit_avx2_kernel_sgemm")),
    ("oneDNN JIT direct convolution (brgemm; kdjax.platform.onednn_conv)",
     lambda leaf, up: leaf.startswith("jit_") and "brg" in leaf),
    ("oneDNN JIT copy (GEMM packing) and gemv", lambda leaf, up: leaf.startswith("jit_")),
    ("oneDNN sgemm drivers", lambda leaf, up: "dnnl" in leaf),
    ("Eigen im2col packing (TensorImagePatchOp)",
     lambda leaf, up: "gemm_pack" in leaf and "ImagePatch" in leaf),
    ("XLA Pack2DPatches (input-gradient conv)", lambda leaf, up: "Pack2DPatches" in leaf),
    ("other Eigen convolution code", lambda leaf, up: "Eigen::" in leaf or any(
        "ConvolutionThunk" in s for s in up)),
    ("XLA fusion kernels (generated code)", lambda leaf, up: leaf == "[unknown]" and any(
        "KernelThunk" in s for s in up)),
    ("kernel: page faults, zeroing, memory accounting", lambda leaf, up: leaf.startswith("[k]")),
    ("libc malloc / free / memset / memcpy", lambda leaf, up: leaf.startswith(
        ("_int_", "malloc", "cfree", "free", "__mem", "_mid_memalign", "unlink_chunk",
         "malloc_consolidate", "__libc_"))),
)


def parse(script_text: str) -> list[tuple[float, list[str]]]:
    """`perf script -F time,ip,sym,dso` output -> [(time s, [symbol per frame, innermost first])]."""
    samples = []
    for block in script_text.split("\n\n"):
        lines = [l for l in block.splitlines() if l.strip()]
        if not lines:
            continue
        head = re.search(r"(\d+\.\d+):", lines[0])
        if head is None:
            continue
        frames = []
        for line in lines[1:]:
            parts = line.split(None, 1)
            sym = parts[1] if len(parts) > 1 else "[unknown]"
            kernel = "[kernel.kallsyms]" in sym
            sym = re.sub(r"\s*\([^()]*\)\s*$", "", sym)  # drop " (dso)"
            frames.append(("[k] " if kernel else "") + sym)
        samples.append((float(head.group(1)), frames))
    return samples


def categorize(samples, start: float, end: float) -> collections.Counter:
    counts = collections.Counter()
    for time, frames in samples:
        if not start <= time <= end:
            continue
        leaf, up = (frames[0], frames[1:]) if frames else ("[unknown]", [])
        name = next((n for n, test in CATEGORIES if test(leaf, up)), "everything else")
        counts[name] += 1
    return counts


def main(argv):
    variant, depth, steps = (argv + ["default", "20", "8"][len(argv):])[:3]
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "perf.data")
        env = dict(os.environ, ONEDNN_JIT_PROFILE="2")
        run = subprocess.run(
            ["perf", "record", "-q", "-k", "CLOCK_MONOTONIC", "-F", "1000", "-g", "-o", data,
             "--", "taskset", "-c", "0", sys.executable,
             os.path.join(ROOT, "bench", "resnet_variants.py"), variant, depth, steps],
            env=env, capture_output=True, text=True, check=True)
        print(run.stdout.strip())
        start, end = map(float, re.search(r"CLOCK_MONOTONIC s: (\S+) (\S+)", run.stdout).groups())
        script = subprocess.run(["perf", "script", "-i", data, "-F", "time,ip,sym,dso"],
                                capture_output=True, text=True, check=True).stdout
    counts = categorize(parse(script), start, end)
    total = sum(counts.values())
    ms_per_sample = 1.0 / int(steps)  # -F 1000 on the cpu-clock event: a sample per CPU ms
    print(f"\n{total} samples in the timed window ({end - start:.2f} s, {steps} steps, 1 core)")
    print(f"{'category':50s} {'share':>7s} {'ms/step':>8s}")
    for name, n in counts.most_common():
        print(f"{name:50s} {100 * n / total:6.1f}% {n * ms_per_sample:8.0f}")


if __name__ == "__main__":
    main(sys.argv[1:])
