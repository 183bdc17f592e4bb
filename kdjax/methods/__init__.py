"""The methods: find one by the name `config.method` gives, and the config section it declares.

`config.method` names a package here (`'kd'`, `'disk'`: `kdjax/methods/<name>/method.py`), any
importable module (`'tests.test_fifth_method'`), or `'module:function'` for a driver that runs
itself (`function(config, workdir) -> dict`). A method declares its own settings as
`section() -> ConfigDict` (with optional `CHECKS`, `TEACHER_FIELDS` and `check_config(config) ->
str | None`, a rule over several fields returning its one-line error) in its package's
`config.py`, or in the method's own file; the section is mounted under the method's name (the
package, or the module's last name), or under `SECTION` when the declaring module sets it.
"""
from __future__ import annotations

import importlib
import os
import sys
import traceback
from types import ModuleType
from typing import Callable

from kdjax import errors

# Names kept for drivers that moved onto the method interface later.
_LEGACY = {"rad": "kdjax.methods.rad.loop:run",
           "rad_compare": "kdjax.methods.rad.compare:run"}


def known() -> list[str]:
    """The packages under kdjax/methods/ with a `method.py`, and the drivers' short names."""
    here = os.path.dirname(__file__)
    return sorted(p for p in os.listdir(here)
                  if os.path.isfile(os.path.join(here, p, "method.py"))) + sorted(_LEGACY)


def resolve(name: str) -> ModuleType | Callable:
    """The method module (or the driver function) `name` names."""
    if not name:
        raise ValueError("config.method is empty; name a method, e.g. 'kd'")
    name = _LEGACY.get(name, name)
    module_name, _, function = name.partition(":")
    candidates = ([module_name] if "." in module_name else
                  [f"kdjax.methods.{module_name}.method", f"kdjax.methods.{module_name}"])
    for candidate in candidates:
        try:
            module = importlib.import_module(candidate)
        except Exception as err:  # noqa: BLE001 - named below, the cause kept for --traceback
            if (isinstance(err, ModuleNotFoundError) and err.name
                    and candidate.startswith(err.name)):
                continue
            where = traceback.extract_tb(err.__traceback__)[-1]
            raise errors.ConfigError(
                f"config.method={name!r}: importing {candidate} failed at {where.filename}:"
                f"{where.lineno}: {type(err).__name__}: {err}") from err
        if function:
            if not hasattr(module, function):
                raise ValueError(f"config.method={name!r}: {candidate} has no {function!r}")
            return getattr(module, function)
        if hasattr(module, "make_method") or hasattr(module, "run"):
            return module
    raise ValueError(f"config.method={name!r} is unknown; known methods: {', '.join(known())} "
                     "(or a module path / 'module:function')")


def declaration(name: str) -> ModuleType | None:
    """The module declaring `section()` for method `name` (its package's `config.py`, or the
    method's own module), or None when the method has no settings of its own."""
    name = _LEGACY.get(name, name)
    module = module_of(name)
    if hasattr(module, "section"):
        return module
    package = module.__name__.rpartition(".")[0]
    if module.__name__.endswith(".method") or (":" in name and package):
        try:
            sibling = importlib.import_module(f"{package}.config")
        except ModuleNotFoundError as err:
            if err.name != f"{package}.config":
                raise
            return None
        return sibling if hasattr(sibling, "section") else None
    return None


def section_name(name: str) -> str | None:
    """The key of method `name`'s config section (None: it declares none)."""
    module = declaration(name)
    if module is None:
        return None
    if hasattr(module, "SECTION"):
        return module.SECTION
    path = _LEGACY.get(name, name).partition(":")[0]
    if path.endswith(".method"):
        path = path[: -len(".method")]
    return path.rpartition(".")[2]


def module_of(name: str) -> ModuleType:
    """The module of method `name` (a driver function's module)."""
    target = resolve(name)
    return target if isinstance(target, ModuleType) else sys.modules[target.__module__]
