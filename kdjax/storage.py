"""One path layer for every file kdjax reads or writes: local paths and `gs://` buckets.

Built on `etils.epath` (what orbax and TFDS use): a `gs://bucket/dir` path goes through
fsspec's `gcsfs` (or TensorFlow's `tf.io.gfile` when TensorFlow is installed), a local path
through `os`. Install `pip install -e '.[gcp]'` for buckets (gcsfs for epath and orbax,
google-cloud-storage for tensorboardX's event writer).

Write semantics, so that a run killed at any instant leaves no torn file:

* local files are written to `<name>.tmp.<pid>` in the same folder and renamed over the
  target (`os.replace`, atomic on POSIX);
* a GCS object upload is atomic by itself (readers see the old object or the new one, never a
  part), so remote files are written in place. No rename is used on buckets: GCS has no
  rename, only copy + delete.
* GCS objects cannot be appended to. `JsonlWriter` keeps the file's lines in memory and
  uploads the whole object again at most every `flush_secs` and on `flush()`/`close()`
  ("buffered rewrite"); each upload replaces the object atomically, so a reader always sees a
  whole prefix of the lines. Cost: O(file size) per upload, fine for metrics files (kB-MB);
  lines written after the last upload are lost if the process dies, which is why the train
  loop flushes at every checkpoint. tensorboardX's own GCS event writer works the same way.
* folders do not exist on GCS: `makedirs` is a no-op there.
"""
from __future__ import annotations

import builtins
import fnmatch
import io
import json
import os
import time
import uuid
from typing import Any, Callable, Iterator, Mapping

import numpy as np
from etils import epath

PathLike = str | os.PathLike
_GCP_HINT = "pip install -e '.[gcp]' (gcsfs, google-cloud-storage)"


def is_remote(p: PathLike) -> bool:
    """True for a bucket URI (`gs://...`, `s3://...`), False for a local path."""
    return "://" in os.fspath(p)


def _check(p: PathLike) -> str:
    s = os.fspath(p)
    head = s.split("/", 1)[0]
    if head.endswith(":") and not is_remote(s) and len(head) > 2:  # 'gs:/b', not 'C:'
        raise ValueError(f"path {s!r} looks like a mistyped URI: write {head}//bucket/...")
    if s.startswith("gs://"):
        try:
            import gcsfs  # noqa: F401  (what epath's fsspec backend uses for gs://)
        except ImportError:
            import importlib.util
            if importlib.util.find_spec("tensorflow") is None:
                raise ImportError(f"path {s}: gs:// needs gcsfs; {_GCP_HINT}") from None
    return s


def path(p: PathLike) -> epath.Path:
    """`p` as an `epath.Path`; a local path is made absolute and `~` expanded."""
    s = _check(p)
    if is_remote(s):
        return epath.Path(s)
    return epath.Path(os.path.abspath(os.path.expanduser(s)))


def exists(p: PathLike) -> bool:
    return path(p).exists()


def isdir(p: PathLike) -> bool:
    return path(p).is_dir()


def makedirs(p: PathLike) -> None:
    """`mkdir -p` locally; nothing on a bucket (object names carry their folders)."""
    if not is_remote(p):
        path(p).mkdir(parents=True, exist_ok=True)
    else:
        _check(p)


def open(p: PathLike, mode: str = "r"):  # noqa: A001 - mirrors builtins.open
    """A file object for reading or writing `p` ('r', 'rb', 'w', 'wb'); a remote file opened
    for writing is uploaded when it is closed."""
    if "a" in mode and is_remote(p):
        raise ValueError(f"{p}: buckets cannot append; use storage.JsonlWriter")
    if "w" in mode or "a" in mode:
        makedirs(os.path.dirname(os.fspath(p)) or ".")
    return path(p).open(mode)


def glob(base: PathLike, pattern: str) -> list[str]:
    """Sorted files and folders under `base` matching the relative `pattern` ('*' within a
    name, '**' any number of folders; fnmatch rules)."""
    b = path(base)
    if not b.exists():
        return []
    if "**" in pattern:   # epath refuses '**' (one listing per folder on GCS): walk instead
        pat = pattern.split("/")
        found = []
        root, scheme = os.fspath(b), os.fspath(b).split("://")[0] + "://"
        for top, dirs, files in b.walk():
            top = os.fspath(top)
            if is_remote(root) and not top.startswith(scheme):
                top = scheme + top   # fsspec's walk drops the scheme
            rel = os.path.relpath(top, root)
            parts = [] if rel == "." else rel.split("/")
            found += [f"{top}/{n}" for n in list(dirs) + list(files) if _match(parts + [n], pat)]
        found = sorted(found)
    else:
        found = sorted(os.fspath(x) for x in b.glob(pattern))
    if is_remote(base):
        return found
    # keep the caller's spelling of local paths (relative stays relative)
    root = os.fspath(b)
    return [os.path.join(os.fspath(base), os.path.relpath(f, root)) for f in found]


def _match(parts: list[str], pat: list[str]) -> bool:
    if not pat:
        return not parts
    if pat[0] == "**":
        return _match(parts, pat[1:]) or (bool(parts) and _match(parts[1:], pat))
    return (bool(parts) and fnmatch.fnmatchcase(parts[0], pat[0])
            and _match(parts[1:], pat[1:]))


def write_bytes(p: PathLike, data: bytes) -> None:
    """Atomic write: tmp + rename locally, one object upload on a bucket."""
    if is_remote(p):
        path(p).write_bytes(data)
        return
    target = path(p)
    makedirs(target.parent)
    tmp = f"{os.fspath(target)}.tmp.{os.getpid()}.{uuid.uuid4().hex[:8]}"
    try:
        with builtins.open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_text(p: PathLike, text: str) -> None:
    write_bytes(p, text.encode("utf-8"))


def read_bytes(p: PathLike) -> bytes | None:
    """The file's bytes, or None if it does not exist."""
    q = path(p)
    try:
        return q.read_bytes()
    except FileNotFoundError:
        return None


def read_text(p: PathLike) -> str | None:
    data = read_bytes(p)
    return None if data is None else data.decode("utf-8")


def write_json(p: PathLike, obj: Any, *, indent: int | None = 1, default=str,
               sort_keys: bool = False) -> None:
    """Atomically write `obj` as JSON (non-JSON values via `default`, str by default)."""
    write_text(p, json.dumps(obj, indent=indent, default=default, sort_keys=sort_keys))


def read_json(p: PathLike) -> Any | None:
    """The parsed file, or None if it does not exist. A file that is not JSON raises
    ValueError naming it."""
    text = read_text(p)
    if text is None:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"{os.fspath(p)}: not valid JSON ({e})") from None


def save_npy(p: PathLike, array) -> None:
    """Atomically write one array (`np.save` format)."""
    buf = io.BytesIO()
    np.save(buf, np.asarray(array), allow_pickle=False)
    write_bytes(p, buf.getvalue())


def load_npy(p: PathLike) -> np.ndarray | None:
    data = read_bytes(p)
    return None if data is None else np.load(io.BytesIO(data), allow_pickle=False)


def save_npz(p: PathLike, **arrays) -> None:
    """Atomically write named arrays (`np.savez` format)."""
    buf = io.BytesIO()
    np.savez(buf, **{k: np.asarray(v) for k, v in arrays.items()})
    write_bytes(p, buf.getvalue())


def load_npz(p: PathLike) -> dict[str, np.ndarray] | None:
    """{name: array} of an `.npz` file, or None if it does not exist."""
    data = read_bytes(p)
    if data is None:
        return None
    with np.load(io.BytesIO(data), allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


def save_figure(fig, p: PathLike, dpi: int = 120) -> None:
    """Atomically write a matplotlib figure as PNG (local or gs://)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    write_bytes(p, buf.getvalue())


def copy(src: PathLike, dst: PathLike) -> None:
    """Copy one file, local or remote on either side (overwrites `dst`)."""
    data = read_bytes(src)
    if data is None:
        raise FileNotFoundError(f"copy: {os.fspath(src)} does not exist")
    write_bytes(dst, data)


def move(src: PathLike, dst: PathLike) -> None:
    """Rename one file: `os.replace` locally; copy then delete on a bucket (no rename there)."""
    if not is_remote(src) and not is_remote(dst):
        makedirs(os.path.dirname(os.fspath(path(dst))))
        os.replace(path(src), path(dst))
        return
    copy(src, dst)
    remove(src)


def remove(p: PathLike) -> None:
    """Delete a file if it exists."""
    path(p).unlink(missing_ok=True)


class JsonlWriter:
    """Appends JSON records, one a line, to `path` (see the module docstring for buckets).

    `keep(record) -> bool` filters the lines already in the file when it is opened (e.g. drop
    the steps a killed run logged after its last checkpoint); a torn last line is dropped.
    Locally every line is flushed as written; on a bucket the object is uploaded at most every
    `flush_secs` seconds, on `flush()` and on `close()`.
    """

    def __init__(self, p: PathLike, *, keep: Callable[[dict], bool] | None = None,
                 flush_secs: float = 30.0):
        self.path = os.fspath(p)
        self._remote = is_remote(self.path)
        self._flush_secs = flush_secs
        self._last_upload = time.monotonic()
        self._dirty = False
        self._file = None
        old = read_text(self.path)
        lines = list(_whole_lines(old or "", keep))
        if self._remote:
            self._lines = lines
            if old is not None and "".join(lines) != old:
                self.flush(force=True)
        else:
            if old is not None and "".join(lines) != old:
                write_text(self.path, "".join(lines))
            makedirs(os.path.dirname(path(self.path)))
            self._file = builtins.open(path(self.path), "a")

    def write(self, record: Mapping[str, Any]) -> None:
        self.write_line(json.dumps(dict(record), default=str))

    def write_line(self, text: str) -> None:
        line = text.rstrip("\n") + "\n"
        if self._file is not None:
            self._file.write(line)
            self._file.flush()
            return
        self._lines.append(line)
        self._dirty = True
        if time.monotonic() - self._last_upload >= self._flush_secs:
            self.flush()

    def flush(self, force: bool = False) -> None:
        """Make every line written so far durable (one upload on a bucket)."""
        if self._file is not None:
            self._file.flush()
        elif self._dirty or force:
            write_text(self.path, "".join(self._lines))
            self._dirty = False
            self._last_upload = time.monotonic()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        else:
            self.flush()

    def __enter__(self) -> "JsonlWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _whole_lines(text: str, keep: Callable[[dict], bool] | None) -> Iterator[str]:
    for line in text.splitlines(keepends=True):
        if not line.endswith("\n"):
            continue  # torn last line of a killed writer
        if keep is not None:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if not keep(record):
                continue
        yield line


def read_jsonl(p: PathLike) -> list[dict]:
    """Every whole line of a JSONL file as a dict ([] if the file does not exist)."""
    out = []
    for line in _whole_lines(read_text(p) or "", None):
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out
