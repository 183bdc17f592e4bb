"""Writes `Listing`s as kdjax array_record shards in parallel processes, plus metadata.

Output folder:
  kdjax_dataset.json            name, num_classes, class_names, image_shape, recipe, mean,
                                std, and per split: num_examples, shards, labels sidecar
  <split>.array_record-00000-of-00004 ...   records `kdjax.data.lazy.encode_record`, in split
                                order (record i = example i), group_size 1 (random access)
  labels-<split>.npy            int32 labels in record order (the split's `labels`)

Raw (in-memory) images are stored as uint8 HWC; image files are stored as their encoded bytes
after a check that they decode (at 1/8 JPEG scale; a truncated file is an error naming it).
`out_dir` may be a bucket (gs://...): shards are written to a local staging folder and
uploaded through `kdjax.storage`, as are the sidecars and the metadata (written last).
"""
from __future__ import annotations

import concurrent.futures
import io
import math
import multiprocessing
import os
import shutil
import tempfile
from typing import Optional

import numpy as np

from kdjax import storage
from kdjax.data.lazy import encode_record
from kdjax.data.prepare.readers import DatasetFiles
from kdjax.data.records import META_FILE
FORMAT_VERSION = 1
IMAGENET_STATS = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


def shard_name(split: str, index: int, count: int) -> str:
    return f"{split}.array_record-{index:05d}-of-{count:05d}"


def check_image(data: bytes, path: str) -> tuple[int, int]:
    """Decodes `data` (reduced-size for JPEG) to prove it is a whole image; returns (w, h)."""
    from PIL import Image  # lazy
    try:
        image = Image.open(io.BytesIO(data))
        size = image.size
        image.draft("RGB", (max(1, size[0] // 8), max(1, size[1] // 8)))
        image.load()
    except Exception as e:  # PIL raises OSError, SyntaxError, ValueError, ...
        raise ValueError(f"{path}: not a decodable image ({type(e).__name__}: {e})") from e
    return size


def _write_shard(path: str, start: int, images: Optional[np.ndarray],
                 files: Optional[list[str]], labels: np.ndarray) -> int:
    """One shard: records start, start+1, ...; runs in a worker process."""
    from array_record.python.array_record_module import ArrayRecordWriter  # lazy
    tmp = path + ".tmp"
    writer = ArrayRecordWriter(tmp, "group_size:1")
    try:
        for j, label in enumerate(labels):
            if images is not None:
                image = images[j]
            else:
                with open(files[j], "rb") as f:
                    image = f.read()
                check_image(image, files[j])
            writer.write(encode_record(image, int(label), start + j))
    finally:
        writer.close()
    os.replace(tmp, path)
    return len(labels)


def channel_stats(images: np.ndarray) -> tuple[list[float], list[float]]:
    from kdjax.data.offline import channel_stats as stats  # lazy
    mean, std = stats(images)
    return list(mean), list(std)


def write_dataset(out_dir: str, name: str, found: DatasetFiles, *, num_workers: int = 0,
                  examples_per_shard: int = 10000, recipe: Optional[str] = None,
                  image_size: int = 224) -> dict:
    """Writes every split of `found` under `out_dir`; returns the metadata it wrote.

    num_workers: processes writing shards in parallel (0: os.cpu_count()).
    """
    remote = storage.is_remote(out_dir)
    stage = tempfile.mkdtemp(prefix="kdjax_prepare_") if remote else out_dir
    try:
        meta = _write(out_dir, stage, name, found, num_workers, examples_per_shard, recipe,
                      image_size)
    finally:
        if remote:
            shutil.rmtree(stage, ignore_errors=True)
    return meta


def _write(out_dir: str, stage: str, name: str, found: DatasetFiles, num_workers: int,
           examples_per_shard: int, recipe: Optional[str], image_size: int) -> dict:
    os.makedirs(stage, exist_ok=True)
    storage.makedirs(out_dir)
    recipe = recipe or found.recipe
    jobs = []
    meta_splits = {}
    for split, listing in found.splits.items():
        n = len(listing)
        if n == 0:
            raise ValueError(f"{name}/{split}: no examples")
        labels = np.asarray(listing.labels)
        if labels.min() < 0 or labels.max() >= len(found.class_names):
            raise ValueError(f"{name}/{split}: labels outside [0, {len(found.class_names)})")
        count = max(1, math.ceil(n / examples_per_shard))
        per = math.ceil(n / count)
        shards = [shard_name(split, i, count) for i in range(count)]
        for i, shard in enumerate(shards):
            lo, hi = i * per, min(n, (i + 1) * per)
            jobs.append((os.path.join(stage, shard), lo,
                         None if listing.images is None else listing.images[lo:hi],
                         None if listing.files is None else listing.files[lo:hi],
                         labels[lo:hi]))
        storage.save_npy(f"{out_dir.rstrip('/')}/labels-{split}.npy", labels.astype(np.int32))
        meta_splits[split] = {"num_examples": n, "shards": shards,
                              "labels": f"labels-{split}.npy",
                              "stored": "raw" if listing.images is not None else "encoded"}
    workers = num_workers or os.cpu_count() or 1
    if workers > 1 and len(jobs) > 1:
        ctx = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(min(workers, len(jobs)),
                                                    mp_context=ctx) as pool:
            for f in [pool.submit(_write_shard, *job) for job in jobs]:
                f.result()
    else:
        for job in jobs:
            _write_shard(*job)
    if stage != out_dir:
        for job in jobs:
            storage.copy(job[0], f"{out_dir.rstrip('/')}/{os.path.basename(job[0])}")
    train = found.splits.get("train")
    if train is not None and train.images is not None:
        mean, std = channel_stats(train.images)
    else:
        mean, std = (list(v) for v in IMAGENET_STATS)
    if found.image_shape is not None:
        image_shape = list(found.image_shape)
    else:
        image_shape = [image_size, image_size, 3]
    meta = {"format_version": FORMAT_VERSION, "name": name,
            "num_classes": len(found.class_names), "class_names": list(found.class_names),
            "image_shape": image_shape, "recipe": recipe, "mean": mean, "std": std,
            "splits": meta_splits}
    storage.write_json(f"{out_dir.rstrip('/')}/{META_FILE}", meta)
    return meta
