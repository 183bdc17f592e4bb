"""A workdir knows the config it was run with.

The first run writes `<workdir>/config.json`; a re-run with a different config fails in one line
naming the fields that differ, so a resumed run never mixes two settings silently. Cosmetic
fields (progress bar, logging cadence) may always change; the changes that make sense for
continuing a run (more epochs, another checkpoint cadence) are allowed when the user names them
(`launch.main --allow_changes=train.epochs`); anything else needs a new workdir.
"""
from __future__ import annotations

import json
import os
from typing import Sequence

import jax
import ml_collections

from kdjax import config as config_lib
from kdjax import storage
from kdjax.train import sync

COSMETIC = ("progress_bar", "tensorboard", "train.log_every_steps", "data.eval_batch_size")
CONTINUABLE = ("train.epochs", "train.eval_every_epochs",
               "train.checkpoint_every_steps", "train.keep_checkpoints")


class WorkdirError(ValueError):
    """The workdir holds a run with another config (the message names the fields)."""


def _jsonable(config: ml_collections.ConfigDict) -> dict:
    return json.loads(json.dumps(config.to_dict(), default=str))


def differences(old: dict, new: dict) -> dict[str, tuple]:
    """{field: (old value, new value)} over the union of both configs' fields."""
    a, b = config_lib.flat_fields(old), config_lib.flat_fields(new)
    return {k: (a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)}


def check_config(workdir: str, config: ml_collections.ConfigDict,
                 allow: Sequence[str] = ()) -> None:
    """Record `config` in a new workdir, or check it against the one recorded there."""
    path = os.path.join(workdir, "config.json")
    new = _jsonable(config)
    problem, old = "", {}
    if sync.agree_flag(storage.exists(path)):
        old = storage.read_json(path)
        diffs = {k: v for k, v in differences(old, new).items() if k not in COSMETIC}
        refused = {k: v for k, v in diffs.items() if k not in allow}
        if refused:
            listed = ", ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in list(refused.items())[:6])
            more = f" (+{len(refused) - 6} more)" if len(refused) > 6 else ""
            continuable = [k for k in refused if k in CONTINUABLE]
            hint = (f"pass --allow_changes={','.join(continuable)} to continue with them"
                    if continuable and len(continuable) == len(refused) else
                    "use a new --workdir (or move this one away) to run this config")
            problem = (f"workdir {workdir} holds a run with a different config: {listed}{more}; "
                       f"{hint}")
        bad = [k for k in diffs if k in allow and k not in CONTINUABLE]
        if not problem and bad:
            problem = (f"--allow_changes={','.join(bad)}: only {', '.join(CONTINUABLE)} can "
                       "change for a run to continue")
    if not sync.agree_flag(not problem):
        raise WorkdirError(problem or f"workdir {workdir}: process 0 refused the config")
    changed = problem == "" and bool(old) and any(k in allow for k in differences(old, new))
    if jax.process_index() == 0:
        results = os.path.join(workdir, "results.json")
        if changed and storage.exists(results):
            # The finished run continues under the new setting: keep its results aside.
            storage.move(results, os.path.join(workdir, "results.before-change.json"))
        storage.write_json(path, new, indent=1, sort_keys=True)
