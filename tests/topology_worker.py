"""One process of a run on a chosen topology (processes x CPU devices), for the topology tests.

    python tests/topology_worker.py RANK PROCESSES DEVICES PORT ACTION [ARGS...]

DEVICES is the CPU device count of this process; PROCESSES > 1 joins RANK to a localhost
`jax.distributed` job on PORT (gloo collectives). Actions:

    eval PARAMS.npz OUT.json SIZES   summed eval metrics of the MLP `PARAMS` on `eval_split()`
                                     for each comma-separated eval batch size, and (process 0)
                                     the predicted logits in OUT.json's `logits` (first size)
    save WORKDIR                     `train_state()` as step 7 of `WORKDIR/checkpoints`
    restore WORKDIR                  restore it as `fit` resumes and as a teacher loads, and
                                     check values and shardings (exit 0 when they are right)
"""
import json
import os
import sys

RANK, PROCESSES, DEVICES = (int(a) for a in sys.argv[1:4])
os.environ["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={DEVICES}"
os.environ["JAX_PLATFORMS"] = "cpu"
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import numpy as np  # noqa: E402

from tests.topology_fixtures import (INFO, MODEL, eval_split, init_params, load_tree,  # noqa: E402
                                     restore_and_check, save_state)


def _eval(params_path: str, out: str, sizes: str) -> None:
    from kdjax.train import inference, loop
    from kdjax.train import mesh as mesh_lib
    from kdjax.train import compiled
    mesh = mesh_lib.make_mesh()
    split, params = eval_split(), load_tree(init_params(), params_path)
    step = compiled.eval_step(MODEL, INFO.mean, INFO.std)
    result = {"devices": jax.device_count(), "processes": jax.process_count(), "sums": {}}
    for size in (int(s) for s in sizes.split(",")):
        result["sums"][str(size)] = inference.evaluate(step, params, split, size, mesh)
    logits, _ = loop.predict_split(MODEL, params, split, INFO, int(sizes.split(",")[0]), mesh)
    result["logits"] = np.asarray(logits).tolist()
    if jax.process_index() == 0:
        with open(out, "w") as f:
            json.dump(result, f)


def main():
    port, action, args = sys.argv[4], sys.argv[5], sys.argv[6:]
    if PROCESSES > 1:
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        jax.distributed.initialize(coordinator_address=f"localhost:{port}",
                                   num_processes=PROCESSES, process_id=RANK)
    {"eval": _eval, "save": save_state, "restore": restore_and_check}[action](*args)


if __name__ == "__main__":
    main()
