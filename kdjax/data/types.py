"""Core data containers: `Split` (arrays + original ids) and `DatasetInfo`.

A `Split` holds a whole split in host memory as numpy arrays. `ids[i]` is the position of
example i in the ORIGINAL train/test split it came from, so sub-splits (validation, active
labeled/unlabeled) keep pointing at the same rows of per-example state (teacher caches, RAD
weights, DiSK selections, ...).
"""
from __future__ import annotations

import dataclasses
from typing import Optional, Sequence

import numpy as np


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """Static facts about a dataset.

    `mean`/`std` are per-channel statistics in units of pixel/255 (i.e. of images scaled to
    [0, 1]); `kdjax.data.augment.normalize` uses them as `(x / 255 - mean) / std`.
    """
    name: str
    num_classes: int
    image_shape: tuple[int, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]


@dataclasses.dataclass(frozen=True, eq=False)
class Split:
    """A split held in memory: images (N, H, W, C) uint8 (or (N, D) float32), labels and ids
    (N,) int32."""
    images: np.ndarray
    labels: np.ndarray
    ids: np.ndarray

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def subset(self, positions: np.ndarray) -> "Split":
        """Rows at `positions` (positions within THIS split); ids are carried along unchanged."""
        positions = np.asarray(positions, dtype=np.int64)
        return Split(self.images[positions], self.labels[positions], self.ids[positions])

    def take(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(images, labels) at `positions`; the access method the input pipeline uses."""
        positions = np.asarray(positions, dtype=np.int64)
        return self.images[positions], self.labels[positions]

    def __getitem__(self, i: int) -> dict[str, np.ndarray]:
        """One example {'image','label','id'}: a grain/TFDS-style random-access source."""
        i = int(i)
        return {"image": self.images[i], "label": self.labels[i], "id": self.ids[i]}


def make_split(images: np.ndarray, labels: np.ndarray,
               ids: Optional[np.ndarray] = None) -> Split:
    """Builds a `Split` with canonical dtypes (labels/ids int32; ids default to 0..N-1)."""
    labels = np.asarray(labels)
    if ids is None:
        ids = np.arange(labels.shape[0], dtype=np.int32)
    return Split(np.asarray(images), labels.astype(np.int32), np.asarray(ids, dtype=np.int32))


def _first(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def validate_split(split, num_classes: int,
                   image_shape: Optional[Sequence[int]] = None,
                   name: str = "split") -> None:
    """Raises ValueError naming the problem (and offending index/count) if `split` is malformed.

    Checks (images only for in-memory splits): images are (N, H, W, C) uint8/float32 or (N, D)
    float32 and match `image_shape` if given; labels and ids are 1-D int32 of length N; labels lie in [0, num_classes); ids are
    unique and non-negative; float images contain no NaN/inf.
    """
    if num_classes < 1:
        raise ValueError(f"{name}: num_classes must be >= 1, got {num_classes}")
    ids = np.asarray(split.ids)
    labels = np.asarray(split.labels)
    if labels.ndim != 1:
        raise ValueError(f"{name}: labels must be 1-D, got shape {labels.shape}")
    if labels.dtype != np.int32:
        raise ValueError(f"{name}: labels must be int32, got {labels.dtype}")
    n = labels.shape[0]
    if ids.shape != (n,):
        raise ValueError(f"{name}: ids must have shape ({n},) like labels, got {ids.shape}")
    if ids.dtype != np.int32:
        raise ValueError(f"{name}: ids must be int32, got {ids.dtype}")
    bad = (labels < 0) | (labels >= num_classes)
    if bad.any():
        i = _first(bad)
        raise ValueError(
            f"{name}: {int(bad.sum())} label(s) out of range [0, {num_classes}); "
            f"first at index {i} (label {int(labels[i])})")
    if n and (ids < 0).any():
        i = _first(ids < 0)
        raise ValueError(f"{name}: negative id {int(ids[i])} at index {i}")
    if n and np.unique(ids).size != n:
        raise ValueError(f"{name}: {n - np.unique(ids).size} duplicate id(s)")
    if getattr(split, "images", None) is None:  # a LazySplit: images are decoded on demand.
        return
    images = np.asarray(split.images)
    if images.shape[0] != n:
        raise ValueError(f"{name}: {images.shape[0]} images but {n} labels")
    if images.ndim == 4:
        if images.dtype not in (np.uint8, np.float32):
            raise ValueError(f"{name}: images must be uint8 or float32, got {images.dtype}")
    elif images.ndim == 2:
        if images.dtype != np.float32:
            raise ValueError(f"{name}: tabular features must be float32, got {images.dtype}")
    else:
        raise ValueError(
            f"{name}: images must be (N, H, W, C) or (N, D), got shape {images.shape}")
    if image_shape is not None and tuple(images.shape[1:]) != tuple(image_shape):
        raise ValueError(
            f"{name}: expected per-example shape {tuple(image_shape)}, got {images.shape[1:]}")
    if images.dtype == np.float32:
        finite = np.isfinite(images.reshape(n, -1)).all(axis=1)
        if not finite.all():
            i = _first(~finite)
            raise ValueError(
                f"{name}: {int((~finite).sum())} example(s) contain NaN/inf; first at index {i}")
