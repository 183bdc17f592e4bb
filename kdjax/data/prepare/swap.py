"""A prepared folder is written aside and swapped in whole.

Locally the new folder is written to a hidden sibling `.<name>.prepare-<host>-<pid>` (same
filesystem) and exchanged with the old one in one `renameat2(RENAME_EXCHANGE)` call: a reader
sees the old folder or the new one, never a mix, and a prepare killed at any point leaves the
old folder as it was. Where the filesystem cannot exchange (e.g. NFS), the old folder is
renamed to `.<name>.old-<host>-<pid>` and the new one renamed in; a kill between those two
renames is undone by the next prepare (`recover`). Leftover siblings of dead processes on this
host are removed when the next prepare starts.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import errno
import glob
import os
import shutil
import socket

from kdjax.data.prepare.readers import SourceError

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2
# What a prepared folder may hold; anything else in --out is not ours to replace.
_OURS = ("kdjax_dataset.json", "labels-", "downloads")


def _tag() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


def _sibling(out: str, kind: str, tag: str = "*") -> str:
    parent, base = os.path.split(os.path.abspath(out))
    return os.path.join(parent, f".{base}.{kind}-{tag}")


def _alive(tag: str) -> bool:
    host, _, pid = tag.rpartition("-")
    if host != socket.gethostname():
        return True  # another host's: not ours to judge
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (ValueError, PermissionError):
        return True
    return True


def recover(out: str) -> None:
    """Undo a kill between the two renames of the fallback swap; drop dead leftovers."""
    for old in sorted(glob.glob(_sibling(out, "old"))):
        if not os.path.exists(out) and not _alive(old.rsplit(".old-", 1)[1]):
            os.rename(old, out)
    for kind in ("prepare", "old"):
        for left in glob.glob(_sibling(out, kind)):
            if not _alive(left.rsplit(f".{kind}-", 1)[1]):
                shutil.rmtree(left, ignore_errors=True)


def check_replaceable(out: str) -> None:
    """Refuses to replace an --out that holds files a prepare did not write."""
    if not os.path.exists(out):
        return
    if not os.path.isdir(out):
        raise SourceError(f"--out {out} is a file, not a folder")
    strangers = sorted(n for n in os.listdir(out) if not n.startswith(_OURS)
                       and ".array_record-" not in n and ".tmp" not in n)
    if strangers:
        raise SourceError(f"--out {out} holds {strangers[0]!r}, which launch.prepare did not "
                          "write; choose a new or empty folder (a prepared folder is replaced "
                          "whole)")


def aside(out: str) -> str:
    """A fresh hidden sibling folder of `out` to write the new dataset into."""
    path = _sibling(out, "prepare", _tag())
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    return path


def _exchange(a: str, b: str) -> bool:
    """Atomically swaps paths a and b; False where the system or filesystem cannot."""
    try:
        fn = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), b)


def swap_in(new: str, out: str) -> None:
    """Makes folder `new` the folder `out`; the old `out` (if any) is deleted."""
    downloads = os.path.join(out, "downloads")
    if os.path.isdir(downloads):  # the default download cache lives in --out: keep it
        os.rename(downloads, os.path.join(new, "downloads"))
    if not os.path.exists(out):
        os.rename(new, out)
        return
    if _exchange(new, out):
        shutil.rmtree(new, ignore_errors=True)  # now the old folder
        return
    old = _sibling(out, "old", _tag())
    os.rename(out, old)
    os.rename(new, out)
    shutil.rmtree(old, ignore_errors=True)
