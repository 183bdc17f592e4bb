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
"""
from __future__ import annotations

import logging
import os
from typing import Any, Optional

import numpy as np

from kdjax import storage
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
    except (ValueError, KeyError) as e:
        raise ValueError(f"{path}: malformed dataset metadata ({type(e).__name__}: {e})") from e
    return meta


def local_shards(folder: str, shards: list[str]) -> tuple[str, ...]:
    """Local paths of a split's shards (copied from a bucket into the cache once)."""
    if not storage.is_remote(folder):
        return tuple(os.path.join(folder, s) for s in shards)
    cache = os.path.expanduser(os.environ.get("KDJAX_RECORDS_CACHE", "~/.cache/kdjax/records"))
    local_dir = os.path.join(cache, folder.split("://", 1)[1].strip("/"))
    out = []
    for shard in shards:
        local = os.path.join(local_dir, shard)
        if not os.path.exists(local):  # storage.copy writes a local file atomically
            logging.info("copying %s/%s to %s", folder, shard, local)
            storage.copy(f"{folder.rstrip('/')}/{shard}", local)
        out.append(local)
    return tuple(out)


def _labels(folder: str, split: str, info: dict, source: ArrayRecordSource) -> np.ndarray:
    path = f"{folder.rstrip('/')}/{info.get('labels', f'labels-{split}.npy')}"
    labels = storage.load_npy(path)
    if labels is None:  # the records' label field: reads every record, decodes no image
        labels = np.array([source.example(i)["label"] for i in range(len(source))])
    if labels.shape != (info["num_examples"],):
        raise ValueError(f"{path}: {labels.shape} labels for {info['num_examples']} examples")
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
    for split, info in meta["splits"].items():
        source = ArrayRecordSource(local_shards(folder, info["shards"]))
        n = len(source)
        if n != info["num_examples"]:
            raise ValueError(f"{folder}: split {split!r} has {n} records, the metadata says "
                             f"{info['num_examples']} (an incomplete or mixed-up folder)")
        labels = _labels(folder, split, info, source)
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
