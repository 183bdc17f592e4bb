"""DiSK Tables 2 / 5 / 6: storage (parameters) and compute (multiply-adds) of the model zoo.

Parameters are counted from `jax.eval_shape` of `init` (no weights allocated); MACs are XLA's
own cost analysis of the lowered forward pass at batch 1 (`flops / 2`, which counts every
convolution and dense multiply-add; BatchNorm, ReLU and pooling add a little on top).
"""
from __future__ import annotations

import os
import time

import jax
import jax.numpy as jnp
import ml_collections

from kdjax import storage
from kdjax.models import get_model

DATASETS = {"cifar100": ((32, 32, 3), 100), "tiny_imagenet": ((64, 64, 3), 200)}


def model_stats(name: str, input_shape: tuple[int, ...], num_classes: int) -> dict:
    """{'params': count, 'macs': multiply-adds of one example's forward pass (eval mode)}."""
    model = get_model(name, num_classes)
    x = jax.ShapeDtypeStruct((1, *input_shape), jnp.float32)
    variables = jax.eval_shape(lambda x: model.init(jax.random.PRNGKey(0), x), x)
    params = sum(int(a.size) for a in jax.tree.leaves(variables["params"]))
    cost = jax.jit(lambda v, x: model.apply(v, x)[0]).lower(variables, x).cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    flops = float(cost.get("flops", float("nan"))) if cost else float("nan")
    return {"params": params, "macs": flops / 2}


def run(config: ml_collections.ConfigDict, workdir: str) -> dict:
    """Runner of experiments/reproduce/disk_table2_6.py: one row per (table, model, dataset)."""
    from kdjax.reproduce import paper_numbers

    paper = paper_numbers.DISK.get("table2_6", {})
    t0 = time.time()
    rows = []
    for table, role, arch, datasets in config.rows:
        for ds in datasets:
            shape, classes = DATASETS[ds]
            ours = model_stats(arch, shape, classes)
            ref = paper.get(ds, {}).get(arch, {})
            rows.append({"table": table, "role": role, "model": arch, "dataset": ds,
                         "params_M": round(ours["params"] / 1e6, 4),
                         "paper_params_M": ref.get("params_M"),
                         "MACs_M": round(ours["macs"] / 1e6, 1),
                         "paper_MACs_M": ref.get("macs_M")})
    result = {"rows": rows, "scale_note": "full setting (exact counts; no training)",
              "wall_time": time.time() - t0}
    storage.write_json(os.path.join(workdir, "results.json"), result)
    return result
