"""kdjax entry point: one config file, one workdir, one method.

    python -m launch.main --config=experiments/quickstart.py --workdir=runs/quickstart
    python -m launch.main --config=experiments/fashion_mnist_kd.py --config.train.epochs=3 \
        --workdir=runs/fmnist_kd

Re-running with the same --workdir resumes. On a multi-host slice every worker runs the same
command with --multihost (launch/tpu/ does that), which calls jax.distributed.initialize().
On a CPU, --cpu_devices=N splits the host into N XLA devices: the step then runs data-parallel
over them (the same numbers as one device), which was 1.2-1.8x faster for the CIFAR ResNets on
a 2-core machine and slower for the small CNN (docs/performance.md). Compiled steps persist in
--compilation_cache (default ~/.cache/kdjax/xla), so a resumed run or the next sweep point does
not compile them again.
"""
from __future__ import annotations

from absl import app, flags, logging
from ml_collections import config_flags

from kdjax import run as run_lib
from launch import runtime

_CONFIG = config_flags.DEFINE_config_file("config", None, "Path to an experiments/ config file.",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints, logs and results.")
_MULTIHOST = flags.DEFINE_bool("multihost", False,
                               "Call jax.distributed.initialize() (multi-host TPU/GPU slices).")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    if not flags.FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)  # orbax/absl INFO lines drown the progress bar
    import jax
    runtime.apply()
    if _MULTIHOST.value:
        jax.distributed.initialize()
    logging.info("JAX process %d/%d, devices: %s", jax.process_index(), jax.process_count(),
                 jax.devices())
    config = _CONFIG.value
    if config.get("scale_note") and jax.process_index() == 0:
        print(f"NOTE: {config.scale_note}", flush=True)
    run_lib.run(config, _WORKDIR.value)


if __name__ == "__main__":
    app.run(main)
