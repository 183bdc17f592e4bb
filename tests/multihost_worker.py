"""One process of a real multi-process run on localhost (JAX CPU collectives over gloo).

    python tests/multihost_worker.py PROCESS_ID NUM_PROCESSES PORT WORKDIR OUT.npz [DIE_AT]
With NUM_PROCESSES=1 it is the single-process reference. With DIE_AT, every process exits
(code 3) after DIE_AT training batches, as a preempted slice would; re-running resumes.
"""
import os
import sys

os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
os.environ["JAX_PLATFORMS"] = "cpu"
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import numpy as np  # noqa: E402


def main():
    pid, nproc, port, workdir, out = sys.argv[1:6]
    die_at = int(sys.argv[6]) if len(sys.argv) > 6 else None
    pid, nproc = int(pid), int(nproc)
    if nproc > 1:
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        jax.distributed.initialize(coordinator_address=f"localhost:{port}",
                                   num_processes=nproc, process_id=pid)
    from kdjax import experiment
    from kdjax.methods.ce.method import ce_loss
    from kdjax.train import loop
    from kdjax.train.method import Method
    from tests.configs import tiny

    if die_at is not None:
        real_iterate, served = loop.iterate_batches, []

        def dying_iterate(*args, **kwargs):
            for batch in real_iterate(*args, **kwargs):
                if len(served) == die_at:
                    os._exit(3)
                served.append(1)
                yield batch

        loop.iterate_batches = dying_iterate

    config = tiny.get_config("ce")
    config.train.epochs = 2
    config.train.momentum = 0.0
    splits, info = experiment.load_splits(config.data)
    model = experiment.build_model(config.model, info.num_classes)
    result = loop.fit(config, workdir, model=model, method=Method(loss=ce_loss),
                      train=splits["train"], info=info, evals={"test": splits["test"]})
    params = jax.device_get(result.state.params)
    if jax.process_index() == 0:
        flat = {jax.tree_util.keystr(k): np.asarray(v)
                for k, v in jax.tree_util.tree_leaves_with_path(params)}
        flat["test_accuracy"] = np.asarray(result.history[-1]["test/accuracy"])
        flat["history_epochs"] = np.asarray([h["epoch"] for h in result.history])
        flat["devices"] = np.asarray(jax.device_count())
        np.savez(out, **flat)


if __name__ == "__main__":
    main()
