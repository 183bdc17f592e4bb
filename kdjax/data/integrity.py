"""Identity of a prepared dataset folder: what `launch.prepare` records, what loading checks.

`kdjax_dataset.json` (format 2) lists, per split, every shard with its record count, size,
sha256 of its bytes and sha256 of its first and last 64 KiB ("edges"), and the labels
sidecar with its sha256 and class histogram. `fingerprint(meta)` is the sha256 of that
metadata (canonical JSON, without the fingerprint itself and the storage `root`), so it
identifies the content: the same files give the same fingerprint wherever they are.

Loading checks, in order, with one line naming the folder and what disagrees:
  * `num_classes` against `class_names` and the labels' histograms (larger or smaller);
  * the metadata against its fingerprint (an edited or mixed-up kdjax_dataset.json);
  * each labels file: shape, sha256 and histogram (every load: ImageNet's are 5 MB);
  * each shard: size and edges (every load: two 64 KiB reads), and its full sha256 once per
    file version: the result is kept in $KDJAX_VERIFIED_CACHE (default
    ~/.cache/kdjax/verified) keyed by the shard's path, size, inode and mtime, so a
    rewritten or replaced shard is hashed again; KDJAX_VERIFY_RECORDS=quick skips the full
    hash, =always repeats it at every load.

Cost: `file_sha256` ran at 740 MB/s on one core of the 2-core development machine (a 1 GB
page-cached file), `edges_sha256` took 0.3 ms. So every load costs milliseconds per shard,
and ImageNet's ~140 GB of shards are hashed once per host and file version: about 3 core-
minutes, spread over up to 8 threads (or the disk's read rate, if lower).
"""
from __future__ import annotations

import concurrent.futures
import hashlib
import io
import json
import os
from typing import Any, Iterable, Optional

import numpy as np

from kdjax import storage

EDGE = 1 << 16
MODES = ("once", "always", "quick")


class PreparedFolderError(ValueError):
    """A prepared folder whose metadata, shards and labels disagree."""


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_sha256(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def edges_sha256(path: str) -> str:
    """sha256 of the file's first and last EDGE bytes (the whole file when shorter)."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        head = f.read(EDGE)
        if size > 2 * EDGE:
            f.seek(size - EDGE)
        tail = f.read(EDGE) if size > EDGE else b""
    return sha256_bytes(head + tail)


def shard_entry(path: str, records: int) -> dict:
    """What the metadata records about one written shard."""
    return {"file": os.path.basename(path), "records": int(records),
            "bytes": os.path.getsize(path), "sha256": file_sha256(path),
            "edges": edges_sha256(path)}


def labels_entry(file: str, data: bytes, labels: np.ndarray, num_classes: int) -> dict:
    return {"file": file, "sha256": sha256_bytes(data),
            "counts": np.bincount(labels, minlength=num_classes).tolist()}


def fingerprint(meta: dict) -> str:
    """sha256 of the metadata's content (canonical JSON without 'fingerprint' and 'root')."""
    body = {k: v for k, v in meta.items() if k not in ("fingerprint", "root")}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return "sha256:" + sha256_bytes(text.encode())


def mode() -> str:
    value = os.environ.get("KDJAX_VERIFY_RECORDS", "once")
    if value not in MODES:
        raise ValueError(f"KDJAX_VERIFY_RECORDS={value!r} must be one of {', '.join(MODES)}")
    return value


def check_metadata(folder: str, meta: dict) -> None:
    """num_classes against the class names and the labels' histograms (the field named),
    then the whole metadata against its fingerprint."""
    where = f"{folder.rstrip('/')}/kdjax_dataset.json"
    n = int(meta["num_classes"])
    if len(meta["class_names"]) != n:
        raise PreparedFolderError(f"{where}: num_classes={n} but class_names lists "
                                  f"{len(meta['class_names'])} classes")
    for split, info in meta["splits"].items():
        prepared = len(info["labels"]["counts"])
        if prepared != n:
            raise PreparedFolderError(
                f"{where}: num_classes={n} is {'larger' if n > prepared else 'smaller'} than "
                f"the {prepared} classes the {split} labels were prepared with")
    want = meta.get("fingerprint")
    if want != fingerprint(meta):
        raise PreparedFolderError(
            f"{where}: the content fingerprint {str(want)[:19]}... does not match the "
            "metadata (edited by hand or from another prepare); prepare the folder again")


def check_labels(path: str, data: Optional[bytes], entry: dict, num_examples: int,
                 num_classes: int) -> np.ndarray:
    """The labels sidecar's bytes against its entry; returns the labels (int32)."""
    if data is None:
        raise PreparedFolderError(f"{path}: labels file missing")
    if sha256_bytes(data) != entry["sha256"]:
        raise PreparedFolderError(f"{path}: sha256 differs from the one in kdjax_dataset.json "
                                  "(labels replaced or damaged); prepare the folder again")
    labels = np.load(io.BytesIO(data), allow_pickle=False)
    if labels.shape != (num_examples,):
        raise PreparedFolderError(f"{path}: {labels.shape} labels for {num_examples} examples")
    if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
        raise PreparedFolderError(f"{path}: labels in [{labels.min()}, {labels.max()}] but "
                                  f"num_classes={num_classes}")
    if np.bincount(labels, minlength=num_classes).tolist() != entry["counts"]:
        raise PreparedFolderError(f"{path}: class counts differ from kdjax_dataset.json")
    return labels.astype(np.int32)


def check_shards(paths: Iterable[str], entries: Iterable[dict]) -> None:
    """Sizes and edges of every shard; full sha256 as `mode()` says (threads, cached)."""
    pairs = list(zip(paths, entries))
    for path, entry in pairs:
        if not os.path.exists(path):
            raise PreparedFolderError(f"{path}: shard missing")
        size = os.path.getsize(path)
        if size != entry["bytes"]:
            raise PreparedFolderError(f"{path}: {size} bytes, kdjax_dataset.json says "
                                      f"{entry['bytes']} (a shard of another prepare or "
                                      "truncated); prepare the folder again")
        if edges_sha256(path) != entry["edges"]:
            raise PreparedFolderError(f"{path}: content differs from kdjax_dataset.json "
                                      "(a shard of another prepare?); prepare the folder again")
    how = mode()
    if how == "quick":
        return
    todo = [(p, e) for p, e in pairs if how == "always" or not _verified(p, e["sha256"])]
    if not todo:
        return
    workers = min(len(todo), os.cpu_count() or 1, 8)
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        for (path, entry), got in zip(todo, pool.map(lambda pe: file_sha256(pe[0]), todo)):
            if got != entry["sha256"]:
                raise PreparedFolderError(
                    f"{path}: sha256 differs from kdjax_dataset.json (damaged or replaced "
                    "shard); prepare the folder again")
            remember(path, got)


def _stamp(path: str) -> dict[str, Any]:
    st = os.stat(path)
    return {"path": os.path.realpath(path), "bytes": st.st_size, "ino": st.st_ino,
            "mtime_ns": st.st_mtime_ns}


def _record_file(path: str) -> str:
    root = os.path.expanduser(os.environ.get("KDJAX_VERIFIED_CACHE", "~/.cache/kdjax/verified"))
    return os.path.join(root, sha256_bytes(os.path.realpath(path).encode())[:32] + ".json")


def _verified(path: str, sha: str) -> bool:
    try:
        with open(_record_file(path)) as f:
            seen = json.load(f)
    except (OSError, ValueError):
        return False
    return seen == dict(_stamp(path), sha256=sha)


def remember(path: str, sha: str) -> None:
    """Records that `path`, as it is now, hashed to `sha` (skipped on a read-only home)."""
    try:
        storage.write_json(_record_file(path), dict(_stamp(path), sha256=sha))
    except OSError:
        pass
