"""`--multihost` for the kdjax entry points inside a launcher's shell command.

Every host of a TPU slice (launch/tpu) and every task of a SLURM job (launch/slurm) runs the
same command; `python -m launch.main` / `launch.reproduce` then need `--multihost`, which calls
`jax.distributed.initialize()` (it finds the other hosts from the TPU metadata or from the
SLURM_* variables by itself).
"""
from __future__ import annotations

import re

_ENTRY_RE = re.compile(r"(-m\s+launch\.(?:main|reproduce))(?=\s|$|[;&|)])")


def with_multihost(command: str) -> str:
    """`command` with `--multihost` after each `-m launch.main` / `-m launch.reproduce` (left
    as is when it already says --multihost)."""
    if "--multihost" in command:
        return command
    return _ENTRY_RE.sub(r"\1 --multihost", command)


def runs_kdjax(command: str) -> bool:
    """Whether `command` calls a kdjax entry point that understands --multihost."""
    return bool(_ENTRY_RE.search(command))
