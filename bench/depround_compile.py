"""Compile time of DepRound's jitted core (`kdjax.methods.rad.dependent_rounding`) per pool size,
for one or more checkouts side by side.

    python bench/depround_compile.py --sizes=5000,50000 --repeats=3
    python bench/depround_compile.py --roots=/path/to/old/checkout,. --sizes=5000

Each measurement is a fresh process (no in-memory or persistent compilation cache, XLA's own CPU
flags and malloc: KDJAX_XLA_CPU_DEFAULTS=0, KDJAX_HOST_HEAP=0, so checkouts from before
`kdjax.platform` apply nothing on import either) that imports the checkout at --roots[i] and
times `_depround_jit.lower(key, q)` (trace + lower) and `.compile()` (XLA) for q of each size,
wall and process CPU seconds (CPU time depends less on other jobs on the machine). Repeats
alternate between the checkouts, so they see the same machine load; medians are printed.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

_CHILD = r"""
import json, sys, time
import jax, jax.numpy as jnp
from kdjax.methods.rad import dependent_rounding as dr
out = {}
for n in map(int, sys.argv[1].split(",")):
    q, key = jnp.full((n,), 0.1, jnp.float32), jax.random.key(0)
    t0, c0 = time.perf_counter(), time.process_time()
    lowered = dr._depround_jit.lower(key, q)
    t1, c1 = time.perf_counter(), time.process_time()
    lowered.compile()
    out[n] = (t1 - t0, time.perf_counter() - t1, c1 - c0, time.process_time() - c1)
print(json.dumps(out))
"""


def measure(root: str, sizes: str) -> dict:
    env = dict(os.environ, PYTHONPATH=os.path.abspath(root), JAX_PLATFORMS="cpu",
               KDJAX_XLA_CPU_DEFAULTS="0", KDJAX_HOST_HEAP="0")
    env.pop("JAX_COMPILATION_CACHE_DIR", None)
    out = subprocess.run([sys.executable, "-c", _CHILD, sizes], env=env, check=True,
                         capture_output=True, text=True, cwd=os.path.abspath(root))
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--roots", default=".", help="comma-separated checkouts to compare")
    ap.add_argument("--sizes", default="5000,50000")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    roots = args.roots.split(",")
    runs: dict[str, list[dict]] = {r: [] for r in roots}
    for _ in range(args.repeats):
        for root in roots:
            runs[root].append(measure(root, args.sizes))
    print("| checkout | n | trace + lower s (CPU s) | XLA compile s (CPU s) |")
    print("|---|---|---|---|")
    for root in roots:
        for n in args.sizes.split(","):
            med = [statistics.median(r[n][i] for r in runs[root]) for i in range(4)]
            print(f"| {root} | {n} | {med[0]:.2f} ({med[2]:.2f}) | {med[1]:.2f} ({med[3]:.2f}) |")

if __name__ == "__main__":
    main()
