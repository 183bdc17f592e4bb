"""Writes `Listing`s as kdjax array_record shards in parallel processes, plus metadata.

Output folder:
  kdjax_dataset.json            name, num_classes, class_names, image_shape, recipe, mean,
                                std, per split: num_examples, shards (file, records, bytes,
                                sha256, edges), labels (file, sha256, class counts), stored;
                                and the content fingerprint (kdjax.data.integrity)
  <split>.array_record-00000-of-00004 ...   records `kdjax.data.lazy.encode_record`, in split
                                order (record i = example i), group_size 1 (random access)
  labels-<split>.npy            int32 labels in record order (the split's `labels`)

Raw (in-memory) images are stored as uint8 HWC; image files are stored as their encoded bytes
after a check that they decode (at 1/8 JPEG scale; a truncated file is an error naming it).

Everything is written to a local folder first and then swapped in whole (`swap`): a local
`out_dir` is replaced in one rename, so a prepare killed at any point leaves the old folder
as it was. On a bucket (gs://...) the files go up under `<out>/<fingerprint prefix>/` and
`kdjax_dataset.json`, uploaded last, is the commit: it names that prefix as its `root`;
readers read only what a committed metadata file names, and the previous prefix is deleted
after the commit. Either way a re-prepare needs room for the old and the new folder while it
runs. Shard workers die with the parent process (`kdjax.children`).
"""
from __future__ import annotations

import io
import math
import multiprocessing
import os
import shutil
import signal
import tempfile
from typing import Optional

import numpy as np

from kdjax import children, storage
from kdjax.data import integrity
from kdjax.data.lazy import encode_record
from kdjax.data.prepare import swap
from kdjax.data.prepare.readers import DatasetFiles, SourceError
from kdjax.data.records import META_FILE
FORMAT_VERSION = 2
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
        raise SourceError(f"{path}: not a decodable image ({type(e).__name__}: {e})") from e
    return size


def _write_shard(path: str, start: int, images: Optional[np.ndarray],
                 files: Optional[list[str]], labels: np.ndarray) -> dict:
    """One shard: records start, start+1, ...; runs in a worker process. Returns its
    metadata entry (`integrity.shard_entry`)."""
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
    return integrity.shard_entry(path, len(labels))


def _worker_init(parent: int) -> None:
    children.die_with_parent(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle


def _run_jobs(jobs: list[tuple], workers: int) -> list[dict]:
    """`_write_shard(*job)` for every job, in `workers` processes when > 1."""
    if workers <= 1 or len(jobs) <= 1:
        return [_write_shard(*job) for job in jobs]
    ctx = multiprocessing.get_context("spawn")
    pool = ctx.Pool(min(workers, len(jobs)), initializer=_worker_init,
                    initargs=(os.getpid(),))
    try:
        results = [pool.apply_async(_write_shard, job) for job in jobs]
        out = [r.get() for r in results]
        pool.close()
        return out
    finally:
        pool.terminate()  # at once on an error or Ctrl-C: no worker outlives the call
        pool.join()


def channel_stats(images: np.ndarray) -> tuple[list[float], list[float]]:
    from kdjax.data.offline import channel_stats as stats  # lazy
    mean, std = stats(images)
    return list(mean), list(std)


def write_dataset(out_dir: str, name: str, found: DatasetFiles, *, num_workers: int = 0,
                  examples_per_shard: int = 10000, recipe: Optional[str] = None,
                  image_size: int = 224) -> dict:
    """Writes every split of `found` as the folder `out_dir` (replacing one there whole);
    returns the metadata it wrote.

    num_workers: processes writing shards in parallel (0: os.cpu_count()).
    """
    remote = storage.is_remote(out_dir)
    if remote:
        stage = tempfile.mkdtemp(prefix="kdjax_prepare_")
    else:
        out_dir = os.path.realpath(out_dir)  # a symlink's target is what gets replaced
        swap.recover(out_dir)
        swap.check_replaceable(out_dir)
        stage = swap.aside(out_dir)
    try:
        meta = _write(stage, name, found, num_workers, examples_per_shard, recipe, image_size)
        if remote:
            _commit_remote(stage, out_dir, meta)
        else:
            swap.swap_in(stage, out_dir)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return meta


def _write(stage: str, name: str, found: DatasetFiles, num_workers: int,
           examples_per_shard: int, recipe: Optional[str], image_size: int) -> dict:
    recipe = recipe or found.recipe
    num_classes = len(found.class_names)
    jobs, labels_of = [], {}
    meta_splits = {}
    for split, listing in found.splits.items():
        n = len(listing)
        if n == 0:
            raise SourceError(f"{name}/{split}: no examples")
        labels = np.asarray(listing.labels)
        if labels.min() < 0 or labels.max() >= num_classes:
            raise SourceError(f"{name}/{split}: labels outside [0, {num_classes})")
        count = max(1, math.ceil(n / examples_per_shard))
        per = math.ceil(n / count)
        for i in range(count):
            lo, hi = i * per, min(n, (i + 1) * per)
            jobs.append((split, (os.path.join(stage, shard_name(split, i, count)), lo,
                                 None if listing.images is None else listing.images[lo:hi],
                                 None if listing.files is None else listing.files[lo:hi],
                                 labels[lo:hi])))
        buf = io.BytesIO()
        np.save(buf, labels.astype(np.int32), allow_pickle=False)
        file = f"labels-{split}.npy"
        storage.write_bytes(os.path.join(stage, file), buf.getvalue())
        labels_of[split] = integrity.labels_entry(file, buf.getvalue(), labels, num_classes)
        meta_splits[split] = {"num_examples": n, "shards": [],
                              "labels": labels_of[split],
                              "stored": "raw" if listing.images is not None else "encoded"}
    entries = _run_jobs([job for _, job in jobs], num_workers or os.cpu_count() or 1)
    for (split, _), entry in zip(jobs, entries):
        meta_splits[split]["shards"].append(entry)
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
            "num_classes": num_classes, "class_names": list(found.class_names),
            "image_shape": image_shape, "recipe": recipe, "mean": mean, "std": std,
            "splits": meta_splits}
    meta["fingerprint"] = integrity.fingerprint(meta)
    storage.write_json(os.path.join(stage, META_FILE), meta)
    return meta


def _files(meta: dict) -> list[str]:
    """Every file a metadata names, relative to its root."""
    out = []
    for info in meta["splits"].values():
        labels = info["labels"]
        out.append(labels["file"] if isinstance(labels, dict) else labels)
        out += [s["file"] if isinstance(s, dict) else s for s in info["shards"]]
    return out


def _commit_remote(stage: str, out_dir: str, meta: dict) -> None:
    """Uploads under <out>/<root>/, then kdjax_dataset.json (the commit), then deletes the
    files of the previous commit and of uncommitted (killed) uploads."""
    out = out_dir.rstrip("/")
    meta["root"] = "v-" + meta["fingerprint"].split(":")[-1][:16]
    try:
        old = storage.read_json(f"{out}/{META_FILE}")
    except ValueError:
        old = None
    for file in _files(meta):
        storage.copy(os.path.join(stage, file), f"{out}/{meta['root']}/{file}")
    storage.write_json(f"{out}/{META_FILE}", meta)
    keep = {f"{out}/{meta['root']}/{f}" for f in _files(meta)}
    stale = []
    if isinstance(old, dict) and "splits" in old:
        root = f"{out}/{old['root']}" if old.get("root") else out
        stale += [f"{root}/{f}" for f in _files(old)]
    stale += storage.glob(out, "v-*/*")
    for path in sorted(set(stale) - keep):
        storage.remove(path)
