"""Which function runs a config: `config.runner`, else the method's entry in RUNNERS.

Shared by `launch.main` (one run) and `launch.reproduce` (sweeps of runs).
"""
from __future__ import annotations

import importlib
import os
import sys
from typing import Any, Callable

import ml_collections

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# config.method -> "module:function" running the whole method from (config, workdir).
RUNNERS = {
    "ce": "kdjax.methods.kd:run",
    "kd": "kdjax.methods.kd:run",
    "rad": "kdjax.active.loop:run",
    "rad_compare": "kdjax.active.compare:run",
    "disk": "kdjax.methods.disk_train:run",
    "alm": "kdjax.methods.alm_train:run",
    "lrds": "kdjax.methods.lrds_train:run",
}


def resolve(target: str) -> Callable:
    """'package.module:function' -> the function."""
    module, _, name = target.partition(":")
    if not module or not name:
        raise ValueError(f"runner must look like 'package.module:function', got {target!r}")
    if REPO_ROOT not in sys.path:
        sys.path.insert(0, REPO_ROOT)
    return getattr(importlib.import_module(module), name)


def runner_target(config: ml_collections.ConfigDict) -> str:
    """config.runner, else RUNNERS[config.method]."""
    if config.get("runner"):
        return config.runner
    method = config.get("method")
    if method not in RUNNERS:
        raise ValueError(f"config.method={method!r} is unknown; known methods: "
                         f"{', '.join(sorted(RUNNERS))}")
    return RUNNERS[method]


def get_runner(config: ml_collections.ConfigDict) -> Callable[[Any, str], dict]:
    return resolve(runner_target(config))
