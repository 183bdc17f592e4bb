"""Paired trials of RAD's active loop (Alg. 1): the arms of a trial share its split, teacher
and round 0, so any two arms are compared by their per-trial differences (`paired.py`).

Trial k runs with seed config.seed + k: it draws the hard-labeled set A (`split_active`), trains
one teacher on A with the trial's seed, and runs the loop once per arm in
`<workdir>/trial_<k>/<arm.subdir>`; the CE-only round 0 is trained once per trial
(`active.round0_workdir`) and read by every arm. An arm is a set of `config.active` overrides:
a selection strategy (`compare.py`), or a strategy and a retraining loss
(papers/rad/compose_active.py).
"""
from __future__ import annotations

import copy
import dataclasses
import os

import ml_collections

from kdjax import experiment
from kdjax.data import split_active
from kdjax.methods.rad import loop as active_loop
from kdjax.train import mesh as mesh_lib


@dataclasses.dataclass(frozen=True)
class Arm:
    name: str      # its key in each trial's runs
    subdir: str    # its loop's directory under trial_<k>/
    active: dict   # config.active fields it sets (strategy, w, m_estimate, retrain, ...)


def run_trials(config: ml_collections.ConfigDict, workdir: str,
               arms: list[Arm]) -> tuple[list[dict], list[float]]:
    """([{arm name: the loop's results} per trial], [teacher test accuracy per trial])."""
    mesh = mesh_lib.make_mesh(config.mesh.axes)
    splits, info = experiment.load_splits(config.data)
    per_trial, teacher_acc = [], []
    for trial in range(config.active.num_trials):
        seed = config.seed + trial
        trial_dir = os.path.join(workdir, f"trial_{trial}")
        labeled, _ = split_active(splits["train"], config.active.num_labeled, seed=seed)
        tcfg = copy.deepcopy(config)
        with tcfg.unlocked():
            tcfg.seed = seed
            tcfg.teacher.seed = seed   # each trial trains its own teacher with the trial's seed
        teacher = experiment.get_teacher(tcfg, trial_dir, {**splits, "train": labeled}, info,
                                         mesh)
        teacher_acc.append(teacher[1]["test_accuracy"])
        runs, cache = {}, {"data": (splits, info), "teacher": teacher}
        for arm in arms:
            cfg = copy.deepcopy(tcfg)
            with cfg.unlocked():
                cfg.method = "rad"
                for key, value in arm.active.items():
                    cfg.active[key] = value
                cfg.teacher.checkpoint = os.path.join(trial_dir, "teacher")
                cfg.active.round0_workdir = trial_dir  # the CE-only round 0 is trained once
            runs[arm.name] = active_loop.run(cfg, os.path.join(trial_dir, arm.subdir),
                                             trial_cache=cache)
        per_trial.append(runs)
    return per_trial, teacher_acc
