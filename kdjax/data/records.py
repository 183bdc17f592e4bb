"""Loading folders written by `python -m launch.prepare` (kdjax array_record shards).

`load_records(dir)` reads `kdjax_dataset.json` and returns ({split: Split | LazySplit},
DatasetInfo). Labels come from the `labels-<split>.npy` sidecars (the records' label field is
the fallback), never from decoding images. Splits stored raw (CIFAR, SVHN) are materialised
into in-memory `Split`s unless lazy=True; encoded ones (JPEG folders) are `LazySplit`s whose
images the grain loader decodes with the folder's recipe.
"""
from __future__ import annotations

import json
import os
from typing import Any, Optional

import numpy as np

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
        for cand in (os.path.join(root, name), root):
            meta = os.path.join(cand, META_FILE)
            if os.path.exists(meta):
                with open(meta) as f:
                    if cand != root or json.load(f).get("name") == name:
                        return cand
    return None


def read_meta(folder: str) -> dict:
    path = os.path.join(folder, META_FILE)
    if not os.path.exists(path):
        raise FileNotFoundError(
            f"{path} not found: not a prepared dataset folder. Write one with "
            "`python -m launch.prepare --dataset=NAME --source=FILES --out=DIR`")
    try:
        with open(path) as f:
            meta = json.load(f)
        for key in ("num_classes", "image_shape", "recipe", "mean", "std", "splits"):
            meta[key]  # pylint: disable=pointless-statement
    except (ValueError, KeyError) as e:
        raise ValueError(f"{path}: malformed dataset metadata ({type(e).__name__}: {e})") from e
    return meta


def _labels(folder: str, split: str, info: dict, source: ArrayRecordSource) -> np.ndarray:
    path = os.path.join(folder, info.get("labels", f"labels-{split}.npy"))
    if os.path.exists(path):
        labels = np.load(path)
    else:  # fall back to the records' label field (reads the records, decodes no image)
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
        source = ArrayRecordSource(tuple(os.path.join(folder, s) for s in info["shards"]))
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
