"""Cost of ALM-KD's λ meta-step vs a plain KD train step, measured side by side in one run.

For each model: (a) plain KD step (student forward/backward + SGD), (b) the exact meta-gradient
update of λ (autodiff through the whole network's one-step look-ahead, Eq. 7-10), (c) the paper's
last-layer approximation (Sec. 4.2). Prints ms per call (median of --repeats timed windows after
warm-up), ratios to (a), and the amortised cost of an ALM step with λ updated every L steps.

    python bench/alm_meta.py                      # mlp and cnn_small, batch 128
    python bench/alm_meta.py --models=mlp --batch=64 --repeats=3
"""
from __future__ import annotations

import argparse
import statistics
import time

from kdjax import platform

platform.apply(persistent_cache=False)  # launch/'s CPU settings, no compilation cache

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

from kdjax.methods.alm import meta  # noqa: E402
from kdjax.methods.alm.loss import student_loss  # noqa: E402
from kdjax.models import get_model  # noqa: E402

MODELS = {
    "mlp": dict(name="mlp", shape=(784,), kw={"hidden": (256, 256)}),
    "cnn_small": dict(name="cnn_small", shape=(28, 28, 1), kw={}),
}


def _time(fn, args, iters: int, repeats: int) -> float:
    out = fn(*args)
    jax.block_until_ready(out)  # compile + warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(iters):
            out = fn(*args)
        jax.block_until_ready(out)
        times.append((time.perf_counter() - t0) / iters)
    return statistics.median(times) * 1e3


def bench_model(key: str, batch: int, iters: int, repeats: int, num_classes: int = 10) -> dict:
    spec = MODELS[key]
    model = get_model(spec["name"], num_classes, **spec["kw"])
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(batch,) + spec["shape"]), jnp.float32)
    variables = model.init(jax.random.PRNGKey(0), x[:2])
    params = variables["params"]
    extra = {k: v for k, v in variables.items() if k != "params"}
    forward = meta.flax_forward(model, extra, train=True)
    b = {"image": x, "label": jnp.asarray(rng.integers(0, num_classes, batch), jnp.int32),
         "id": jnp.arange(batch),
         "teacher_logits": jnp.asarray(rng.normal(size=(batch, num_classes)), jnp.float32)}
    v = {"image": x[::-1], "label": b["label"][::-1], "teacher_logits": b["teacher_logits"][::-1]}
    lam = meta.init_lambdas(batch * 10, value=0.5)
    _, feats = forward(params, x[:2])
    head = meta.find_head_path(params, feats.shape[-1], num_classes)
    tx = optax.sgd(0.01, momentum=0.9)
    opt_state = tx.init(params)

    @jax.jit
    def kd_step(params, opt_state):
        def loss(p):
            logits, _ = forward(p, b["image"])
            return jnp.mean(student_loss(logits, b["label"], b["teacher_logits"], lam[b["id"]],
                                         4.0))
        g = jax.grad(loss)(params)
        upd, opt_state = tx.update(g, opt_state, params)
        return optax.apply_updates(params, upd), opt_state

    def meta_step(mode):
        cfg = meta.MetaConfig(meta_grad=mode)
        return jax.jit(lambda p, l: meta.meta_update(forward, p, l, b, v, 0.01, cfg, head)[0])

    t_kd = _time(kd_step, (params, opt_state), iters, repeats)
    t_ex = _time(meta_step("exact"), (params, lam), iters, repeats)
    t_ll = _time(meta_step("last_layer"), (params, lam), iters, repeats)
    n_params = sum(p.size for p in jax.tree.leaves(params))
    return dict(model=key, params=n_params, kd_ms=t_kd, exact_ms=t_ex, last_layer_ms=t_ll)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="mlp,cnn_small")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--update_every", type=int, default=10, help="L of Alg. 1")
    a = ap.parse_args()
    print(f"devices: {jax.devices()}  batch {a.batch}  L={a.update_every}")
    print(f"{'model':10s} {'params':>9s} {'KD ms':>8s} {'exact ms':>9s} {'last ms':>8s} "
          f"{'exact/KD':>9s} {'last/KD':>8s} {'exact/last':>10s} {'ALM(L) exact/KD':>16s} "
          f"{'ALM(L) last/KD':>15s}")
    for key in a.models.split(","):
        r = bench_model(key, a.batch, a.iters, a.repeats)
        L = a.update_every
        print(f"{r['model']:10s} {r['params']:9d} {r['kd_ms']:8.2f} {r['exact_ms']:9.2f} "
              f"{r['last_layer_ms']:8.2f} {r['exact_ms'] / r['kd_ms']:9.2f} "
              f"{r['last_layer_ms'] / r['kd_ms']:8.2f} {r['exact_ms'] / r['last_layer_ms']:10.2f} "
              f"{1 + r['exact_ms'] / (L * r['kd_ms']):16.2f} "
              f"{1 + r['last_layer_ms'] / (L * r['kd_ms']):15.2f}", flush=True)


if __name__ == "__main__":
    main()
