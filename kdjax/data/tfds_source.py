"""TFDS-backed datasets through the TensorFlow-free `tfds.data_source` (ArrayRecord) path.

Small sets (CIFAR, SVHN, MNIST) are materialised into numpy `Split`s. Large or variable-size
sets (ImageNet, the fine-grained sets) become a `LazySplit`: random access by index, decoded
and resized on demand, usable by `kdjax.data.pipeline.iterate_batches` or a grain loader.
TensorFlow is never imported (`tfds.load`/`tfds.as_numpy` would import it).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Optional

import numpy as np

from kdjax.data.types import DatasetInfo, Split, make_split


def _tfds():
  import tensorflow_datasets as tfds  # lazy: only needed for TFDS names.
  return tfds


def _not_prepared_error(name: str, split: str, data_dir: Optional[str], err: Exception,
                        manual: bool) -> RuntimeError:
  build = f"`tfds build {name} --file_format=array_record`"
  hint = (f"{name} needs a manual download: put the archives in "
          f"<data_dir>/downloads/manual/ and run {build} (see the TFDS catalog page "
          f"for {name}). " if manual else
          f"Prepare it once on a machine with internet ({build}, or load it with "
          f"download=True, e.g. --config.data.download=True if the config has that field), or "
          f"point data_dir at an existing TFDS data folder. ")
  hint += ("tfds.data_source reads only the array_record format (TFDS's default `tfds build` "
           "writes tfrecord). ")
  return RuntimeError(
      f"Could not open TFDS dataset {name!r} split {split!r} (data_dir={data_dir!r}): "
      f"{type(err).__name__}: {err}\n{hint}The offline default needs no TFDS: "
      f"--config.data.name=fashion_mnist")


def open_source(name: str, split: str, data_dir: Optional[str] = None, download: bool = False,
                manual: bool = False):
  """`tfds.data_source(name, split=split)`, with a clear error when the data is not there."""
  tfds = _tfds()
  try:
    return tfds.data_source(name, split=split, data_dir=data_dir, download=download)
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

  The standard ImageNet evaluation preprocessing (flax examples/imagenet); uint8 in, uint8 out.
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


@dataclasses.dataclass(frozen=True, eq=False)
class LazySplit:
  """A TFDS split read on demand: `take(positions)` decodes and resizes those examples.

  `ids` are indices into the TFDS split, so `subset` keeps pointing at the original records.
  `labels` is None (reading all labels would read the whole dataset). The data source is
  opened on first use, so a LazySplit pickles cheaply (grain workers).
  """
  name: str
  tfds_split: str
  ids: np.ndarray
  image_size: int
  channels: int = 3
  data_dir: Optional[str] = None
  download: bool = False
  manual: bool = False
  image_key: str = "image"
  label_key: str = "label"
  labels: Any = None
  _cache: dict = dataclasses.field(default_factory=dict, repr=False, compare=False)

  def __len__(self) -> int:
    return int(self.ids.shape[0])

  @property
  def source(self):
    if "source" not in self._cache:
      self._cache["source"] = open_source(self.name, self.tfds_split, self.data_dir,
                                          self.download, self.manual)
    return self._cache["source"]

  def __getstate__(self):
    state = dict(self.__dict__)
    state["_cache"] = {}
    return state

  def __setstate__(self, state):
    self.__dict__.update(state)

  def subset(self, positions: np.ndarray) -> "LazySplit":
    return dataclasses.replace(self, ids=self.ids[np.asarray(positions, dtype=np.int64)],
                               _cache={})

  def __getitem__(self, i: int) -> dict[str, np.ndarray]:
    """One example {'image','label','id'} (grain `MapDataset.source(split)` works)."""
    images, labels = self.take(np.array([int(i)]))
    return {"image": images[0], "label": labels[0], "id": self.ids[int(i)]}

  def take(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    positions = np.asarray(positions, dtype=np.int64)
    images = np.empty((positions.size, self.image_size, self.image_size, self.channels),
                      np.uint8)
    labels = np.empty((positions.size,), np.int32)
    src = self.source
    for j, p in enumerate(positions):
      ex = src[int(self.ids[p])]
      img = np.asarray(ex[self.image_key], dtype=np.uint8)
      if img.ndim == 2:
        img = img[..., None]
      if img.shape[-1] != self.channels:  # grayscale JPEGs in ImageNet and the like.
        img = np.broadcast_to(img[..., :1], img.shape[:2] + (self.channels,))
      images[j] = resize_center_crop(np.ascontiguousarray(img), self.image_size)
      labels[j] = int(ex[self.label_key])
    return images, labels


@dataclasses.dataclass(frozen=True)
class TfdsSpec:
  """How to load one TFDS dataset."""
  tfds_name: str
  splits: dict  # our split name -> TFDS split name
  mean: tuple[float, ...]
  std: tuple[float, ...]
  image_shape: Optional[tuple[int, ...]] = None  # fixed-size sets only
  lazy: bool = False  # variable-size / large sets: LazySplit resized to image_size
  image_size: int = 224
  manual: bool = False
  note: str = ""


def load_tfds(registry_name: str, spec: TfdsSpec, data_dir: Optional[str] = None, *,
              download: bool = False, image_size: Optional[int] = None
              ) -> tuple[dict[str, Any], DatasetInfo]:
  """Loads a TFDS dataset described by `spec` into Splits (or LazySplits).

  download=False (default): the data must already be prepared under data_dir (no network
  access is attempted); download=True lets TFDS download and prepare it first.
  """
  num_classes = num_classes_of(spec.tfds_name, data_dir)
  out: dict[str, Any] = {}
  if spec.lazy:
    size = int(image_size or spec.image_size)
    for ours, theirs in spec.splits.items():
      src = open_source(spec.tfds_name, theirs, data_dir, download, spec.manual)
      split = LazySplit(spec.tfds_name, theirs, np.arange(len(src), dtype=np.int32), size,
                        channels=3, data_dir=data_dir, download=download, manual=spec.manual)
      split._cache["source"] = src  # pylint: disable=protected-access
      out[ours] = split
    shape = (size, size, 3)
  else:
    for ours, theirs in spec.splits.items():
      src = open_source(spec.tfds_name, theirs, data_dir, download, spec.manual)
      images, labels = materialise(src)
      if spec.image_shape is not None and images.shape[1:] != spec.image_shape:
        raise ValueError(f"{spec.tfds_name}/{theirs}: expected images {spec.image_shape}, "
                         f"got {images.shape[1:]}")
      out[ours] = make_split(images, labels)
    shape = tuple(out["train"].images.shape[1:])
  return out, DatasetInfo(registry_name, num_classes, shape, tuple(spec.mean), tuple(spec.std))
