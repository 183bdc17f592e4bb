"""TF-free dataset preparation: official distribution files -> kdjax array_record shards.

`prepare(dataset, source, out_dir)` reads the files with `readers`, fetching the official
CIFAR/SVHN files with their md5s (`download`) when `source` is a URL or empty, and writes the
shards in parallel processes (`writer`) into a folder that replaces `out_dir` whole (`swap`).
The result loads as `--config.data.name=records:OUT` (or `data.name=<dataset>` with
`data.data_dir` the parent of OUT).
"""
from __future__ import annotations

import os
from typing import Optional

from kdjax import storage
from kdjax.data.prepare import download, readers, swap
from kdjax.data.prepare.readers import MissingSource, SourceError
from kdjax.data.prepare.writer import META_FILE, write_dataset

# dataset -> (reader kind, registry name used for the prepared folder)
DATASETS = ("cifar10", "cifar100", "svhn_cropped", "imagenet2012", "tiny_imagenet",
            "fgvc_aircraft", "stanford_dogs", "folder")
ALIASES = {"svhn": "svhn_cropped", "imagenet": "imagenet2012"}


def read(dataset: str, source: Optional[str], cache_dir: str, check_md5: bool = True,
         svhn_extra: bool = False) -> readers.DatasetFiles:
    """The splits of `dataset` found at `source` (a file, folder or URL; see the readers)."""
    dataset = ALIASES.get(dataset, dataset)
    if dataset in ("cifar10", "cifar100"):
        path = download.fetch(dataset, source, cache_dir, check_md5)
        return readers.read_cifar(path, 10 if dataset == "cifar10" else 100)
    if dataset == "svhn_cropped":
        parts = ["train", "test"] + (["extra"] if svhn_extra else [])
        files = {p: download.fetch(f"svhn_{p}", source, cache_dir, check_md5) for p in parts}
        return readers.read_svhn(files)
    if dataset not in DATASETS:
        raise SourceError(f"unknown dataset {dataset!r}; known: {', '.join(DATASETS)} "
                          f"(aliases: {', '.join(ALIASES)})")
    if not source or not os.path.isdir(source):
        raise MissingSource(f"{dataset}: --source must be the extracted dataset folder "
                            f"(got {source!r}); see kdjax.data.prepare.readers for the layout")
    folder_readers = {"imagenet2012": readers.read_imagenet,
                      "tiny_imagenet": readers.read_tiny_imagenet,
                      "fgvc_aircraft": readers.read_fgvc_aircraft,
                      "stanford_dogs": readers.read_stanford_dogs,
                      "folder": readers.read_image_folders}
    return folder_readers[dataset](source)


def prepare(dataset: str, source: Optional[str], out_dir: str, *, num_workers: int = 0,
            examples_per_shard: int = 10000, check_md5: bool = True,
            cache_dir: Optional[str] = None, image_size: int = 224,
            recipe: Optional[str] = None, svhn_extra: bool = False) -> dict:
    """Reads `dataset` from `source` and writes it under `out_dir`; returns the metadata."""
    name = ALIASES.get(dataset, dataset)
    if cache_dir is None:  # downloads stay local, also when out_dir is a bucket
        cache_dir = (os.path.expanduser("~/.cache/kdjax/downloads") if "://" in out_dir
                     else os.path.join(out_dir, "downloads"))
    if not storage.is_remote(out_dir):
        swap.recover(os.path.realpath(out_dir))  # before a download lands in out_dir
    found = read(name, source, cache_dir, check_md5, svhn_extra)
    return write_dataset(out_dir, name, found, num_workers=num_workers,
                         examples_per_shard=examples_per_shard, recipe=recipe,
                         image_size=image_size)


__all__ = ["DATASETS", "META_FILE", "prepare", "read", "write_dataset"]
