"""RAD distribution (Cor. 1) and DepRound: one run, one table, every variant side by side.

    python bench/rad.py                       # n = 1e5, 1e6, 1e7 (CPU: a few minutes)
    python bench/rad.py --sizes 1e5,1e6,1e7,1e8   # bigger pools (accelerator)

Columns (ms, best of --reps; XLA timings exclude compilation): `sort` = jitted Thm. 1 with a sort,
`newton` = the sort-free solver, `jnp.sort` = a bare sort of the same array, `numpy` = a NumPy
sort + float64 cumsum reference, `depround` = DepRound of q = min(b·p, 1) with b = n/100.
`ok` checks k* and OPT of both solvers against float64 NumPy on the same float32 pool.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kdjax import platform  # noqa: E402

platform.apply(persistent_cache=False)  # launch/'s CPU settings, no compilation cache

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from kdjax.methods.rad import dependent_rounding as dr  # noqa: E402
from kdjax.methods import rad  # noqa: E402


def numpy_rad(g: np.ndarray, m: float, w: float):
    """Cor. 1 in NumPy: sort, float64 prefix sums of 1/g, argmax, largest optimal prefix."""
    gs = -np.sort(-g[g > 0])
    h = np.cumsum(1.0 / gs.astype(np.float64))
    n_k = (np.arange(1, gs.size + 1) - (1.0 + w) * m) / h
    v = n_k.max()
    s = g >= v
    p = np.where(s, 1.0 / np.where(s, g, 1.0), 0.0)
    return p / p.sum(), int(s.sum()), float(v)


def timeit(fn, reps):
    jax.block_until_ready(fn())  # compile / warm up
    best = np.inf
    for _ in range(reps):
        t = time.perf_counter()
        jax.block_until_ready(fn())
        best = min(best, time.perf_counter() - t)
    return best * 1e3


def gains(kind, n, seed=0):
    u = np.random.default_rng(seed).random(n)
    return (u if kind == "uniform" else u ** 8).astype(np.float32)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1e5,1e6,1e7")
    ap.add_argument("--fractions", default="0.05,0.2,0.5", help="m/n values")
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    sizes = [int(float(s)) for s in args.sizes.split(",")]
    fracs = [float(f) for f in args.fractions.split(",")]
    print(f"# device: {jax.devices()[0].device_kind} x{len(jax.devices())}, jax {jax.__version__}")
    hdr = (f"{'n':>9} {'gains':>7} {'m/n':>5} | {'sort':>9} {'newton':>8} {'jnp.sort':>9} "
           f"{'numpy':>8} {'depround':>9} | {'numpy/newton':>12} {'sort/jnp.sort':>13} | ok")
    print(hdr)
    print("-" * len(hdr))
    sort_fn = jax.jit(jnp.sort)
    for n in sizes:
        slow_reps = 1 if n >= 5_000_000 else args.reps
        for kind in ("uniform", "skewed"):
            g = gains(kind, n)
            gj = jnp.asarray(g)
            t_bare = timeit(lambda: sort_fn(gj), slow_reps)
            for f in fracs:
                m = f * n
                w = 1 - m / n
                p_ref, k_ref, v_ref = numpy_rad(g, m, w)
                t_np = timeit(lambda: numpy_rad(g, m, w), slow_reps)
                t_new = timeit(lambda: rad.rad_distribution(gj, m, method="newton"), args.reps)
                t_sort = timeit(lambda: rad.rad_distribution(gj, m, method="sort"), slow_reps)
                s_new = rad.rad_distribution(gj, m, method="newton")
                s_sort = rad.rad_distribution(gj, m, method="sort")
                q = rad.inclusion_probabilities(s_new.p, n // 100)
                key = jax.random.key(0)
                t_dr = timeit(lambda: dr._depround_jit(key, q), args.reps)
                ok = all(int(s.k_star) == k_ref and abs(float(s.value) - v_ref) <= 1e-6 * abs(v_ref)
                         for s in (s_new, s_sort))
                print(f"{n:>9.0e} {kind:>7} {f:>5.2f} | {t_sort:>9.1f} {t_new:>8.1f} {t_bare:>9.1f} "
                      f"{t_np:>8.1f} {t_dr:>9.1f} | {t_np / t_new:>12.2f} {t_sort / t_bare:>13.2f} | "
                      f"{'yes' if ok else 'NO'}")


if __name__ == "__main__":
    main()
