"""kdjax entry point: one config file, one workdir, one run.

    python -m launch.main --config=experiments/quickstart.py --workdir=runs/quickstart
    python -m launch.main --config=experiments/fashion_mnist_kd.py --config.train.epochs=3 \
        --workdir=runs/fmnist_kd

Re-running with the same --workdir resumes; a different config there is refused unless the
changed fields are named in --allow_changes (e.g. more epochs). On a multi-host slice every
worker runs the same command with --multihost (launch/tpu/ and launch/slurm/ do that), which
calls jax.distributed.initialize(). On a CPU, --cpu_devices=N splits the host into N XLA
devices: the step then runs data-parallel over them (docs/performance.md). Compiled steps
persist in --compilation_cache (default ~/.cache/kdjax/xla).

Expected failures (a config field, a data file, a checkpoint, a workdir) print one line
`error: ...` and exit 1; --traceback (or --verbosity=1) shows the Python traceback too. On
several processes a failing process ends every other one within seconds, each printing its
line (kdjax/train/failure.py). SIGTERM saves a checkpoint at the next training step and exits
143; the same command resumes (kdjax/train/preemption.py).
"""
from __future__ import annotations

import os
import re
import sys

import ml_collections
from absl import app, flags, logging
from ml_collections import config_flags

from launch import failures
from launch import runtime


def overrides(argv: list[str]) -> list[str]:
    """The config paths `--config.<path>=...` overrides in `argv` (flag files expanded)."""
    argv = flags.FLAGS.read_flags_from_files(argv, force_gnu=False)
    return [m.group(1) for m in map(re.compile(r"^--?(?:no)?config\.([^=]+)").match, argv) if m]


class _MountFlagged:
    """The parser of --config (config_flags' own, wrapped): the file's config with the section
    of each method whose fields `--config.<section>.<field>` sets mounted
    (kdjax.config.mount_flagged) before config_flags applies the overrides, e.g.
    `--config.lrds.base=disk --config.disk.top_k=5`."""

    def __init__(self, parser):
        self._parser = parser

    def parse(self, path):
        config = self._parser.parse(path)
        if isinstance(config, ml_collections.ConfigDict):
            from kdjax import config as config_lib
            config_lib.mount_flagged(config, overrides(sys.argv))
        return config

    def __getattr__(self, name):
        return getattr(self._parser, name)


_CONFIG = config_flags.DEFINE_config_file("config", None, "Path to an experiments/ config file.",
                                          lock_config=True)
flags.FLAGS["config"].parser = _MountFlagged(flags.FLAGS["config"].parser)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints, logs and results.")
_MULTIHOST = flags.DEFINE_bool("multihost", False,
                               "Call jax.distributed.initialize() (multi-host TPU/GPU slices).")
_ALLOW_CHANGES = flags.DEFINE_list(
    "allow_changes", [], "Config fields that may differ from the run recorded in --workdir "
    "for it to continue (train.epochs, which may grow but not shrink, train.eval_every_epochs, "
    "train.checkpoint_every_steps, train.keep_checkpoints).")
_TRACEBACK = flags.DEFINE_bool("traceback", False, "Show the traceback of an expected error.")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    verbose = flags.FLAGS["verbosity"].present
    if not verbose:
        logging.set_verbosity(logging.ERROR)  # orbax/absl INFO and WARNING lines drown the bar
        failures.quiet_orbax_threads()
    failures.guarded(lambda: run(_CONFIG.value, _WORKDIR.value), _WORKDIR.value,
                     show_traceback=_TRACEBACK.value or verbose)


def run(config, workdir: str) -> dict:
    from kdjax import config as config_lib
    from kdjax import run as run_lib
    from kdjax import workdir as workdir_lib
    if not workdir.strip():
        raise workdir_lib.WorkdirError("--workdir is empty; name a folder for the run's "
                                       "checkpoints and results")
    runtime.apply()
    runtime.start(_MULTIHOST.value)   # join the job; failures and SIGTERM end every process
    config_lib.check_flagged(config, overrides(sys.argv))   # no override silently dropped
    config = config_lib.selected(config)   # the base + the sections of the method it runs
    config_lib.validate(config)
    from kdjax import placement
    print("\n".join(placement.lines(placement.describe(config))), flush=True)   # where it runs
    with workdir_lib.claim(workdir):   # one writer per workdir
        workdir_lib.check_config(workdir, config, _ALLOW_CHANGES.value)
        return run_lib.run(config, workdir)


def parse_flags(argv: list[str]) -> list[str]:
    """absl's flag parsing, with a bad config file, field or value as one `error:` line."""
    show = any(a in ("--traceback", "-v", "--verbosity") or a.startswith("--verbosity=")
               for a in argv)
    try:
        for arg in argv[1:]:
            if arg.startswith("--config="):
                path = arg.split("=", 1)[1].split(":", 1)[0]
                if not os.path.exists(path):
                    raise FileNotFoundError(f"config file {path} does not exist")
        return flags.FLAGS(argv)
    except (flags.Error, AttributeError, KeyError, TypeError, ValueError, OSError) as err:
        if show:
            raise
        message = failures.one_line(err)
        typo = re.search(r'Did you mean "(\w+)" instead of "(\w+)"', str(err))
        if typo:
            flag = next((a.split("=")[0] for a in argv if a.startswith("--config.")
                         and typo.group(2) in a.split("=")[0].split(".")), "--config")
            message = (f"{flag}: the config has no field {typo.group(2)!r}; did you mean "
                       f"{typo.group(1)!r}?")
        print(f"error: {message}", file=sys.stderr, flush=True)
        sys.exit(1)


if __name__ == "__main__":
    app.run(main, flags_parser=parse_flags)
