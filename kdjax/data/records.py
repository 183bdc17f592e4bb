"""Loading folders written by `python -m launch.prepare` (kdjax array_record shards).

`load_records(dir)` reads `kdjax_dataset.json` and returns ({split: Split | LazySplit},
DatasetInfo). Labels come from the `labels-<split>.npy` sidecars (the records' label field is
the fallback), never from decoding images. Splits stored raw (CIFAR, SVHN) are materialised
into in-memory `Split`s unless lazy=True; encoded ones (JPEG folders) are `LazySplit`s whose
images the grain loader decodes with the folder's recipe.

Metadata and sidecars are read through `kdjax.storage` (local or gs://). array_record reads
local files only, so shards of a folder on a bucket are copied once into
$KDJAX_RECORDS_CACHE (default ~/.cache/kdjax/records) on every host that loads them; for
ImageNet-sized sets prefer a persistent disk or a gcsfuse mount (a local path).

Every load checks that metadata, shards and labels agree (`kdjax.data.integrity`: the
content fingerprint, num_classes, labels' sha256, shard sizes and edges, each shard's full
sha256 once per file version); a disagreement is one `PreparedFolderError` line naming the
folder or file. Folders of format 1 (before fingerprints) get the count and label-range
checks only, with a warning to prepare them again.
"""
from __future__ import annotations

import logging
import os
from typing import Any, Optional

import numpy as np

from kdjax import storage
from kdjax.data import integrity
from kdjax.data.integrity import PreparedFolderError
from kdjax.data.lazy import ArrayRecordSource, LazySplit
from kdjax.data.transforms import Recipe
from kdjax.data.types import DatasetInfo, make_split

META_FILE = "kdjax_dataset.json"


def find_prepared(name: str, data_dir: Optional[str]) -> Optional[str]:
    """The prepared folder for registry name `name`: 'records:DIR' -> DIR; else data_dir
    itself or data_dir/<name> (data_dir defaulting to $KDJAX_DATA_DIR) when it holds
    kdjax_dataset.json; None otherwise."""
    if name.startswith("records:"):
        return name[len("records:"):]
    for root in (data_dir, os.environ.get("KDJAX_DATA_DIR")):
        if not root:
            continue
        for cand in (f"{root.rstrip('/')}/{name}", root):
            meta = storage.read_json(f"{cand.rstrip('/')}/{META_FILE}")
            if meta is not None and (cand != root or meta.get("name") == name):
                return cand
    return None


def read_meta(folder: str) -> dict:
    path = f"{folder.rstrip('/')}/{META_FILE}"
    meta = storage.read_json(path)
    if meta is None:
        raise FileNotFoundError(
            f"{path} not found: not a prepared dataset folder. Write one with "
            "`python -m launch.prepare --dataset=NAME --source=FILES --out=DIR`")
    try:
        for key in ("num_classes", "image_shape", "recipe", "mean", "std", "splits"):
            meta[key]  # pylint: disable=pointless-statement
        if meta.get("format_version", 1) >= 2:
            integrity.check_metadata(folder, meta)
        else:
            logging.warning("%s: prepared by an older kdjax (no content fingerprint, so mixed "
                            "or replaced files are not detected); prepare it again", path)
    except (ValueError, KeyError, TypeError) as e:
        if isinstance(e, PreparedFolderError):
            raise
        raise PreparedFolderError(
            f"{path}: malformed dataset metadata ({type(e).__name__}: {e})") from e
    return meta


def _root(folder: str, meta: dict) -> str:
    """Where the metadata's files are: the folder, or its committed prefix on a bucket."""
    return f"{folder.rstrip('/')}/{meta['root']}" if meta.get("root") else folder.rstrip("/")


def _name(entry) -> str:
    return entry["file"] if isinstance(entry, dict) else entry


def local_shards(folder: str, shards: list) -> tuple[str, ...]:
    """Local paths of a split's shards (copied from a bucket into the cache once; a copy is
    checked against the shard's sha256 when the metadata has one)."""
    names = [_name(s) for s in shards]
    if not storage.is_remote(folder):
        return tuple(os.path.join(folder, s) for s in names)
    cache = os.path.expanduser(os.environ.get("KDJAX_RECORDS_CACHE", "~/.cache/kdjax/records"))
    local_dir = os.path.join(cache, folder.split("://", 1)[1].strip("/"))
    out = []
    for shard, name in zip(shards, names):
        local = os.path.join(local_dir, name)
        if not os.path.exists(local):  # written atomically
            logging.info("copying %s/%s to %s", folder, name, local)
            data = storage.read_bytes(f"{folder.rstrip('/')}/{name}")
            if data is None:
                raise PreparedFolderError(f"{folder.rstrip('/')}/{name}: shard missing")
            sha = integrity.sha256_bytes(data)
            if isinstance(shard, dict) and sha != shard["sha256"]:
                raise PreparedFolderError(f"{folder.rstrip('/')}/{name}: sha256 differs from "
                                          "kdjax_dataset.json; prepare the folder again")
            storage.write_bytes(local, data)
            integrity.remember(local, sha)
        out.append(local)
    return tuple(out)


def _labels(folder: str, split: str, info: dict, source: ArrayRecordSource,
            num_classes: int) -> np.ndarray:
    entry = info.get("labels", f"labels-{split}.npy")
    path = f"{folder.rstrip('/')}/{_name(entry)}"
    if isinstance(entry, dict):
        return integrity.check_labels(path, storage.read_bytes(path), entry,
                                      info["num_examples"], num_classes)
    labels = storage.load_npy(path)
    if labels is None:  # the records' label field: reads every record, decodes no image
        labels = np.array([source.example(i)["label"] for i in range(len(source))])
    if labels.shape != (info["num_examples"],):
        raise PreparedFolderError(f"{path}: {labels.shape} labels for {info['num_examples']} "
                                  "examples")
    if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
        raise PreparedFolderError(f"{path}: labels in [{labels.min()}, {labels.max()}] but "
                                  f"num_classes={num_classes}")
    return labels.astype(np.int32)


def load_records(folder: str, *, lazy: Optional[bool] = None,
                 image_size: Optional[int] = None) -> tuple[dict[str, Any], DatasetInfo]:
    """({split: Split | LazySplit}, DatasetInfo) of a prepared folder.

    lazy=None: raw-stored splits in memory, encoded ones lazy; True/False forces either.
    image_size overrides the model input size of the 'imagenet' recipe.
    """
    meta = read_meta(folder)
    shape = tuple(int(d) for d in meta["image_shape"])
    if image_size and meta["recipe"] == "imagenet":
        shape = (int(image_size), int(image_size), shape[-1])
    recipe = Recipe(meta["recipe"], size=shape[0], channels=shape[-1])
    splits: dict[str, Any] = {}
    root = _root(folder, meta)
    for split, info in meta["splits"].items():
        paths = local_shards(root, info["shards"])
        if isinstance(info.get("labels"), dict):  # format 2: sizes, edges, sha256
            integrity.check_shards(paths, info["shards"])
        source = ArrayRecordSource(paths)
        n = len(source)
        if n != info["num_examples"]:
            raise PreparedFolderError(
                f"{folder}: split {split!r} has {n} records, the metadata says "
                f"{info['num_examples']} (an incomplete or mixed-up folder)")
        labels = _labels(root, split, info, source, int(meta["num_classes"]))
        in_memory = (info.get("stored") == "raw") if lazy is None else not lazy
        if in_memory:
            images = np.empty((n,) + shape, np.uint8)
            for i in range(n):
                images[i] = recipe(source.example(i)["image"], None, False)
            splits[split] = make_split(images, labels)
        else:
            splits[split] = LazySplit(source, np.arange(n, dtype=np.int32), labels, recipe,
                                      shape)
    info = DatasetInfo(meta.get("name", os.path.basename(folder.rstrip("/"))),
                       int(meta["num_classes"]), shape, tuple(meta["mean"]), tuple(meta["std"]))
    return splits, info
