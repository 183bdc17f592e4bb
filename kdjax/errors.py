"""Failures a user can act on.

An `Error` says what went wrong with which field, file or path and what to do next; the entry
points print it as one line `error: <message>` (launch/failures.py). kdjax's own checks may also
raise plain `ValueError`/`OSError`/... from a `raise` statement in kdjax or launch: those are
expected too. Anything else (an error from inside numpy, jax, flax, orbax, or a failed
`assert`) is a bug and keeps its traceback. A method plug-in raises `Error` (or a subclass)
for a failure its user can fix.
"""
from __future__ import annotations


class Error(Exception):
    """An expected failure; its message is one line naming the field, file or path."""


class ConfigError(Error, ValueError):
    """A config value that cannot work (the message names the field)."""


class DiskFull(Error, OSError):
    """A write found no space left on the device (the message names the full path)."""
