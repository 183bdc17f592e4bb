"""`LazySplit`: a split whose images stay on disk (array_record shards, a TFDS data source).

It has the same interface as the in-memory `Split`: `labels` (int32, always in memory: read
once from a sidecar written when the data were prepared, or from the records' label field,
never by decoding images), `ids` (record indices in the ORIGINAL split, carried through
`subset`), `__len__`, `subset`, `take` and `__getitem__`. Images are decoded on demand: in the
grain loader's worker processes (`kdjax.data.loader`) with the split's `recipe`, or one at a
time by `take` (evaluation recipe; what `kdjax.data.pipeline.iterate_batches` uses).

A source is a small picklable description (`ArrayRecordSource`, `TfdsSource`) opened on first
use in each process, so a LazySplit pickles cheaply into grain workers.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Any, Optional

import msgpack
import numpy as np

from kdjax.data.transforms import Recipe

RAW, ENCODED = "raw", "encoded"


# ---------------------------------------------------------------- the record format
def encode_record(image, label: int, key: int) -> bytes:
    """One example as msgpack: {'image': bytes, 'shape': [H, W, C] (raw uint8) or [] (encoded
    JPEG/PNG bytes), 'label': int, 'key': its index in the original split}."""
    if isinstance(image, (bytes, bytearray, memoryview)):
        body, shape = bytes(image), []
    else:
        image = np.ascontiguousarray(image, np.uint8)
        body, shape = image.tobytes(), list(image.shape)
    return msgpack.packb({"image": body, "shape": shape, "label": int(label), "key": int(key)},
                         use_bin_type=True)


def decode_record(data: bytes, where: str = "record") -> dict[str, Any]:
    """{'image': uint8 HWC array (raw) or bytes (encoded), 'label': int, 'key': int}."""
    try:
        rec = msgpack.unpackb(data, raw=False)
        shape = tuple(rec["shape"])
        image = rec["image"]
        if shape:
            image = np.frombuffer(image, np.uint8).reshape(shape)
        return {"image": image, "label": int(rec["label"]), "key": int(rec["key"])}
    except (ValueError, KeyError, TypeError, msgpack.ExtraData) as e:
        raise ValueError(f"{where}: not a kdjax record ({type(e).__name__}: {e})") from e


# ---------------------------------------------------------------- sources
@dataclasses.dataclass(frozen=True, eq=False)
class ArrayRecordSource:
    """kdjax array_record shards (written by `kdjax.data.prepare`): record i = example i."""
    paths: tuple[str, ...]
    _cache: dict = dataclasses.field(default_factory=dict, repr=False, compare=False)

    def open(self):
        if "src" not in self._cache:
            import grain  # lazy
            for p in self.paths:
                if not os.path.exists(p):
                    raise FileNotFoundError(f"array_record shard not found: {p}")
            self._cache["src"] = grain.sources.ArrayRecordDataSource(list(self.paths))
        return self._cache["src"]

    def __len__(self) -> int:
        return len(self.open())

    def example(self, key: int) -> dict[str, Any]:
        return decode_record(self.open()[int(key)], f"{self.paths[0]}... record {key}")

    def __getstate__(self):
        return {"paths": self.paths, "_cache": {}}

    def __setstate__(self, state):
        object.__setattr__(self, "paths", state["paths"])
        object.__setattr__(self, "_cache", {})


@dataclasses.dataclass(frozen=True, eq=False)
class TfdsSource:
    """A prepared TFDS split read through `tfds.data_source` (array_record, no TensorFlow).

    Real records are tf.train.Example protos: `example` parses them with TFDS's own proto
    module and returns the ENCODED image bytes (decoded later by the recipe, at reduced JPEG
    size when possible). Sources that hand out decoded examples (tfds.testing.mock_data) are
    passed through.
    """
    name: str
    split: str
    data_dir: Optional[str] = None
    manual: bool = False
    image_key: str = "image"
    label_key: str = "label"
    _cache: dict = dataclasses.field(default_factory=dict, repr=False, compare=False)

    def open(self):
        if "src" not in self._cache:
            from kdjax.data.tfds_source import open_source  # lazy: imports tfds
            self._cache["src"] = open_source(self.name, self.split, self.data_dir,
                                             manual=self.manual)
        return self._cache["src"]

    def __len__(self) -> int:
        return len(self.open())

    def raw(self, key: int):
        src = self.open()
        inner = getattr(src, "data_source", None)
        return inner[int(key)] if inner is not None else src[int(key)]

    def example(self, key: int) -> dict[str, Any]:
        rec = self.raw(key)
        if isinstance(rec, (bytes, memoryview)):
            feats = _parse_example(bytes(rec))
            return {"image": feats[self.image_key].bytes_list.value[0],
                    "label": int(feats[self.label_key].int64_list.value[0]), "key": int(key)}
        return {"image": np.asarray(rec[self.image_key]), "label": int(rec[self.label_key]),
                "key": int(key)}

    def labels(self) -> np.ndarray:
        """Every label of the split, from the records' label field only (images are not
        decoded): protos are parsed for one int64 field; decoded sources give theirs."""
        src = self.open()
        inner = getattr(src, "data_source", None)
        n = len(src)
        out = np.empty((n,), np.int32)
        if n == 0:
            return out
        batched = isinstance(self.raw(0), (bytes, memoryview)) and \
            hasattr(inner, "__getitems__")  # real array_record: parallel reads
        chunk = 1024
        for start in range(0, n, chunk):
            keys = list(range(start, min(start + chunk, n)))
            recs = inner.__getitems__(keys) if batched else [self.raw(k) for k in keys]
            for k, rec in zip(keys, recs):
                if isinstance(rec, (bytes, memoryview, np.bytes_)):
                    out[k] = _parse_example(bytes(rec))[self.label_key].int64_list.value[0]
                else:
                    out[k] = int(rec[self.label_key])
        return out

    def __getstate__(self):
        # An opened TFDS source pickles (it is built for grain workers), mocks included.
        state = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        state["_cache"] = {k: v for k, v in self._cache.items() if k == "src"}
        return state

    def __setstate__(self, state):
        for k, v in state.items():
            object.__setattr__(self, k, v)


def _parse_example(data: bytes):
    from tensorflow_datasets.proto import tf_example_pb2  # pure protobuf, no TensorFlow
    return tf_example_pb2.Example.FromString(data).features.feature


# ---------------------------------------------------------------- the split
@dataclasses.dataclass(frozen=True, eq=False)
class LazySplit:
    """A split read on demand from `source`; `ids[i]` is the record index of row i in the
    original split, `labels[i]` its label (int32); `recipe` makes model inputs of
    `image_shape` (uint8)."""
    source: Any
    ids: np.ndarray
    labels: np.ndarray
    recipe: Recipe
    image_shape: tuple[int, ...]

    def __post_init__(self):
        ids, labels = np.asarray(self.ids), np.asarray(self.labels)
        if ids.shape != labels.shape or ids.ndim != 1:
            raise ValueError(f"LazySplit: ids {ids.shape} and labels {labels.shape} must be "
                             "1-D of one length")
        object.__setattr__(self, "ids", ids.astype(np.int32, copy=False))
        object.__setattr__(self, "labels", labels.astype(np.int32, copy=False))

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    def subset(self, positions) -> "LazySplit":
        """Rows at `positions` (within THIS split); ids and labels are carried along."""
        positions = np.asarray(positions, dtype=np.int64)
        return dataclasses.replace(self, ids=self.ids[positions], labels=self.labels[positions])

    def read(self, position: int) -> dict[str, Any]:
        """The stored example of row `position` (image raw or encoded, not transformed)."""
        return self.source.example(int(self.ids[int(position)]))

    def image(self, position: int, rng: Optional[np.random.Generator] = None,
              train: bool = False) -> np.ndarray:
        """Row `position`'s model input (uint8 `image_shape`): the recipe's training
        augmentation with `rng` when `train`, else its evaluation transform."""
        return self.recipe(self.read(position)["image"], rng, train)

    def take(self, positions) -> tuple[np.ndarray, np.ndarray]:
        """(images, labels) at `positions`, evaluation transform, decoded in this process."""
        positions = np.asarray(positions, dtype=np.int64)
        images = np.empty((positions.size,) + tuple(self.image_shape), np.uint8)
        for j, p in enumerate(positions):
            images[j] = self.image(p)
        return images, self.labels[positions]

    def __getitem__(self, i: int) -> dict[str, np.ndarray]:
        """One example {'image','label','id'} (evaluation transform): a grain source."""
        i = int(i)
        return {"image": self.image(i), "label": self.labels[i], "id": self.ids[i]}
