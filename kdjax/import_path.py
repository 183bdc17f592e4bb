"""'package.module:name' -> the object it names, for what a config names by import path (your
own model, `model.name`; your own dataset reader, `data.name`). One-line `errors.ConfigError`
when the module is not found, lacks the name, or the object is not callable; an error raised
while the user's module itself imports keeps its traceback (it is a bug there)."""
from __future__ import annotations

import importlib
from typing import Callable

from kdjax import errors


def is_path(name: str) -> bool:
    """Whether `name` is meant as an import path 'package.module:name' (it has a ':')."""
    return ":" in name


def resolve(path: str, what: str) -> Callable:
    """The callable `path` names; `what` (e.g. 'model', 'data.name') starts the error message."""
    module_name, _, attr = path.partition(":")
    if not module_name or not attr:
        raise errors.ConfigError(f"{what} {path!r}: an import path is "
                                 "'package.module:name'")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        if err.name and module_name.startswith(err.name):
            raise errors.ConfigError(f"{what} {path!r}: module {module_name!r} "
                                     f"does not import (no module named {err.name!r}; is its "
                                     "folder on PYTHONPATH?)") from None
        raise
    target = module
    for part in attr.split("."):
        if not hasattr(target, part):
            raise errors.ConfigError(f"{what} {path!r}: module {module_name} "
                                     f"has no {attr!r}")
        target = getattr(target, part)
    if not callable(target):
        raise errors.ConfigError(f"{what} {path!r}: {attr} is not callable (it is a "
                                 f"{type(target).__name__})")
    return target
