"""TFDS-backed datasets through the TensorFlow-free `tfds.data_source` (ArrayRecord) path.

Small sets (CIFAR, SVHN, MNIST) are materialised into numpy `Split`s. Large or variable-size
sets (ImageNet, the fine-grained sets) become a `LazySplit` over a `TfdsSource`: labels read
once from the records' label field (cached next to the data), images decoded on demand by the
grain loader (`kdjax.data.loader`). TensorFlow is never imported here.

Preparing TFDS data needs TensorFlow (TFDS's builders read and encode with it): install the
`prepare` extra (`pip install -e '.[prepare]'`, a CPU TensorFlow) and run
`tfds build NAME --file_format=array_record --data_dir=DIR` once; training then needs only
`TFDS_DATA_DIR=DIR` (or `--config.data.data_dir=DIR`). The TF-free alternative is
`python -m launch.prepare` (kdjax's own array_record shards, `records:DIR` names).
"""
from __future__ import annotations

import dataclasses
import logging
import os
from typing import Any, Optional

import numpy as np

from kdjax.data.lazy import LazySplit, TfdsSource
from kdjax.data.transforms import Recipe
from kdjax.data.types import DatasetInfo, make_split

__all__ = ["LazySplit", "TfdsSpec", "load_tfds", "materialise", "open_source",
           "resize_center_crop", "tfds_labels"]


def _tfds():
    import tensorflow_datasets as tfds  # lazy: only needed for TFDS names.
    return tfds


def _not_prepared_error(name: str, split: str, data_dir: Optional[str], err: Exception,
                        manual: bool) -> RuntimeError:
    where = data_dir or os.environ.get("TFDS_DATA_DIR") or "~/tensorflow_datasets"
    build = f"`tfds build {name} --file_format=array_record --data_dir={where}`"
    setup = "(TFDS's builders need TensorFlow: `pip install -e '.[prepare]'` installs a CPU one)"
    if manual:
        hint = (f"{name} needs a manual download: put the archives in {where}/downloads/manual/ "
                f"and run {build} {setup}; see the TFDS catalog page for {name}. ")
    else:
        hint = (f"Prepare it once on a machine with internet: {build} {setup}, then set "
                f"TFDS_DATA_DIR or --config.data.data_dir to that folder. ")
    hint += ("tfds.data_source reads only the array_record format (plain `tfds build` writes "
             "tfrecord). TF-free alternative: `python -m launch.prepare --dataset=... --out=DIR` "
             "and --config.data.name=records:DIR. ")
    return RuntimeError(
        f"Could not open TFDS dataset {name!r} split {split!r} (data_dir={data_dir!r}): "
        f"{type(err).__name__}: {err}\n{hint}The offline default needs no TFDS: "
        f"--config.data.name=fashion_mnist")


def open_source(name: str, split: str, data_dir: Optional[str] = None, download: bool = False,
                manual: bool = False):
    """`tfds.data_source(name, split=split)` in the array_record format, with a clear error
    when the data is not there."""
    tfds = _tfds()
    try:
        return tfds.data_source(name, split=split, data_dir=data_dir, download=download,
                                builder_kwargs={"file_format": "array_record"})
    except Exception as e:  # TFDS raises assorted errors (AssertionError, DatasetNotFound, IO).
        raise _not_prepared_error(name, split, data_dir, e, manual) from e


def num_classes_of(name: str, data_dir: Optional[str] = None, label_key: str = "label") -> int:
    """Number of classes from the builder's feature spec (reads no data)."""
    try:
        builder = _tfds().builder(name, data_dir=data_dir)
    except Exception as e:
        raise ValueError(f"TFDS has no dataset {name!r}: {e}") from e
    return int(builder.info.features[label_key].num_classes)


def materialise(source, image_key: str = "image", label_key: str = "label"
                ) -> tuple[np.ndarray, np.ndarray]:
    """Reads every record of a data source into (images uint8 NHWC, labels int32)."""
    n = len(source)
    if n == 0:
        raise ValueError("TFDS data source is empty")
    first = source[0]
    image0 = np.asarray(first[image_key])
    images = np.empty((n,) + image0.shape, dtype=image0.dtype)
    labels = np.empty((n,), dtype=np.int32)
    for i in range(n):
        ex = first if i == 0 else source[i]
        img = np.asarray(ex[image_key])
        if img.shape != image0.shape:
            raise ValueError(f"record {i}: image shape {img.shape} differs from {image0.shape}; "
                             "variable-size datasets must be loaded lazily")
        images[i] = img
        labels[i] = int(ex[label_key])
    return images, labels


def resize_center_crop(image: np.ndarray, size: int, resize_ratio: float = 0.875) -> np.ndarray:
    """Resizes the shorter side to size / resize_ratio (bicubic), then center-crops size x size.

    The flax examples/imagenet evaluation preprocessing on a decoded uint8 image (the loader's
    'imagenet' recipe does the same crop from the encoded bytes, bilinear).
    """
    from PIL import Image  # lazy
    image = np.asarray(image)
    squeeze = image.ndim == 3 and image.shape[-1] == 1
    pil = Image.fromarray(image[..., 0] if squeeze else image)
    w, h = pil.size
    short = int(round(size / resize_ratio))
    scale = short / min(w, h)
    nw, nh = max(size, int(round(w * scale))), max(size, int(round(h * scale)))
    pil = pil.resize((nw, nh), Image.BICUBIC)
    left, top = (nw - size) // 2, (nh - size) // 2
    out = np.asarray(pil.crop((left, top, left + size, top + size)), dtype=np.uint8)
    return out[..., None] if squeeze else out


def _labels_cache_path(source: TfdsSource) -> Optional[str]:
    """Where the split's label sidecar lives: next to the prepared TFDS data when that folder
    is writable, else under ~/.cache/kdjax/tfds."""
    try:
        builder = _tfds().builder(source.name, data_dir=source.data_dir,
                                  file_format="array_record")
        data_dir = str(builder.data_dir)
        rel = os.path.relpath(data_dir, str(builder.data_dir_root))
    except Exception:  # pylint: disable=broad-except
        return None
    name = f"kdjax_labels-{source.split}.npy"
    if os.access(data_dir, os.W_OK):
        return os.path.join(data_dir, name)
    return os.path.join(os.path.expanduser("~/.cache/kdjax/tfds"), rel, name)


def tfds_labels(source: TfdsSource) -> np.ndarray:
    """All labels of a TFDS split, read once from the records' label field (no image decode)
    and cached as a .npy sidecar for the next run (real array_record data only)."""
    n = len(source)
    real = isinstance(source.raw(0), (bytes, memoryview)) if n else False
    path = _labels_cache_path(source) if real else None
    if path and os.path.exists(path):
        labels = np.load(path)
        if labels.shape == (n,):
            return labels.astype(np.int32)
        logging.warning("ignoring stale label cache %s (%s rows, split has %d)", path,
                        labels.shape, n)
    labels = source.labels()
    if path:
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            np.save(path, labels)
        except OSError as e:
            logging.warning("could not cache labels at %s: %s", path, e)
    return labels


@dataclasses.dataclass(frozen=True)
class TfdsSpec:
    """How to load one TFDS dataset."""
    tfds_name: str
    splits: dict  # our split name -> TFDS split name
    mean: tuple[float, ...]
    std: tuple[float, ...]
    image_shape: Optional[tuple[int, ...]] = None  # fixed-size sets only
    lazy: bool = False  # variable-size / large sets: LazySplit, recipe 'imagenet'
    image_size: int = 224
    manual: bool = False
    note: str = ""


def load_tfds(registry_name: str, spec: TfdsSpec, data_dir: Optional[str] = None, *,
              download: bool = False, image_size: Optional[int] = None
              ) -> tuple[dict[str, Any], DatasetInfo]:
    """Loads a TFDS dataset described by `spec` into Splits (or LazySplits).

    download=False (default): the data must already be prepared under data_dir (no network
    access is attempted); download=True lets TFDS download and prepare it first (needs
    TensorFlow, see the module docstring).
    """
    num_classes = num_classes_of(spec.tfds_name, data_dir)
    out: dict[str, Any] = {}
    if spec.lazy:
        size = int(image_size or spec.image_size)
        shape = (size, size, 3)
        for ours, theirs in spec.splits.items():
            src = open_source(spec.tfds_name, theirs, data_dir, download, spec.manual)
            source = TfdsSource(spec.tfds_name, theirs, data_dir, manual=spec.manual)
            source._cache["src"] = src  # pylint: disable=protected-access
            labels = tfds_labels(source)
            out[ours] = LazySplit(source, np.arange(len(src), dtype=np.int32), labels,
                                  Recipe("imagenet", size, 3), shape)
    else:
        for ours, theirs in spec.splits.items():
            src = open_source(spec.tfds_name, theirs, data_dir, download, spec.manual)
            images, labels = materialise(src)
            if spec.image_shape is not None and images.shape[1:] != spec.image_shape:
                raise ValueError(f"{spec.tfds_name}/{theirs}: expected images "
                                 f"{spec.image_shape}, got {images.shape[1:]}")
            out[ours] = make_split(images, labels)
        shape = tuple(out["train"].images.shape[1:])
    return out, DatasetInfo(registry_name, num_classes, shape, tuple(spec.mean), tuple(spec.std))
