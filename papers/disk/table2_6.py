"""DiSK Tables 2 / 5 / 6: parameters and multiply-adds of every model the paper uses, beside the
paper's (papers/paper_numbers.py DISK['table2_6']); counts by kdjax/reproduce/model_stats.py."""
from __future__ import annotations

import os
import time

import ml_collections

from kdjax import storage
from kdjax.reproduce.model_stats import model_stats
from papers import paper_numbers

DATASETS = {"cifar100": ((32, 32, 3), 100), "tiny_imagenet": ((64, 64, 3), 200)}


def run(config: ml_collections.ConfigDict, workdir: str) -> dict:
    """Runner of experiments/reproduce/disk_table2_6.py: one row per (table, model, dataset)."""
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
