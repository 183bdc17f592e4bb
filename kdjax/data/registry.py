"""One registry of datasets by name: `load_dataset(name)` -> (splits, DatasetInfo).

Offline (no network): 'fashion_mnist' (Debian's idx files; the default), 'digits' (sklearn).
TFDS (prepared TFDS data, read TensorFlow-free via `tfds.data_source`): see `TFDS_SPECS`;
any other TFDS image-classification dataset is reachable as 'tfds:<name>'.
Prepared (TF-free, `python -m launch.prepare`): 'records:<dir>', or any name whose folder
`<data_dir>/<name>` (data_dir defaulting to $KDJAX_DATA_DIR) holds kdjax_dataset.json; that
takes precedence over TFDS. 'tiny_imagenet' and 'fgvc_aircraft' exist only that way.
Your own reader: 'package.module:function' (`read_custom`; docs/custom_models.md).
"""
from __future__ import annotations

import inspect
from typing import Any, Callable, Optional

from kdjax import errors, import_path
from kdjax.data import offline
from kdjax.data.records import find_prepared, load_records
from kdjax.data.tfds_source import TfdsSpec, load_tfds
from kdjax.data.types import DatasetInfo, validate_split

# Name prefixes of the registry's own ('tfds:<name>', 'records:<dir>'), never import paths.
_PREFIXES = ("tfds", "records")

# Published per-channel statistics (pixel/255 units).
_CIFAR10 = ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616))
_CIFAR100 = ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762))
_SVHN = ((0.4377, 0.4438, 0.4728), (0.1980, 0.2010, 0.1970))
_MNIST = ((0.1307,), (0.3081,))
_FASHION = ((0.2860,), (0.3530,))
_IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))

_FINE_GRAINED_NOTE = ("variable-size images, read lazily and resized (shorter side to "
                      "size/0.875, center crop); ImageNet statistics")

TFDS_SPECS: dict[str, TfdsSpec] = {
    "cifar10": TfdsSpec("cifar10", {"train": "train", "test": "test"}, *_CIFAR10,
                        image_shape=(32, 32, 3)),
    "cifar100": TfdsSpec("cifar100", {"train": "train", "test": "test"}, *_CIFAR100,
                         image_shape=(32, 32, 3)),
    "svhn_cropped": TfdsSpec("svhn_cropped", {"train": "train", "test": "test"}, *_SVHN,
                             image_shape=(32, 32, 3), note="the 'extra' split is not used"),
    "mnist": TfdsSpec("mnist", {"train": "train", "test": "test"}, *_MNIST,
                      image_shape=(28, 28, 1)),
    "imagenet2012": TfdsSpec(
        "imagenet2012", {"train": "train", "test": "validation"}, *_IMAGENET, lazy=True,
        image_size=224, manual=True,
        note="manual download (ILSVRC2012 tars into <data_dir>/downloads/manual); test = "
             "the 50k validation set; " + _FINE_GRAINED_NOTE),
    "stanford_dogs": TfdsSpec("stanford_dogs", {"train": "train", "test": "test"},
                              *_IMAGENET, lazy=True, note=_FINE_GRAINED_NOTE),
    "cars196": TfdsSpec("cars196", {"train": "train", "test": "test"}, *_IMAGENET, lazy=True,
                        note=_FINE_GRAINED_NOTE),
    "caltech_birds2011": TfdsSpec("caltech_birds2011", {"train": "train", "test": "test"},
                                  *_IMAGENET, lazy=True, note="CUB-200-2011; " +
                                  _FINE_GRAINED_NOTE),
    "oxford_iiit_pet": TfdsSpec("oxford_iiit_pet", {"train": "train", "test": "test"},
                                *_IMAGENET, lazy=True, note=_FINE_GRAINED_NOTE),
}
# Not in TFDS 4.9.10 (checked with tfds.builder_cls): prepared with launch.prepare only.
PREPARED_ONLY = ("fgvc_aircraft", "tiny_imagenet")

_OFFLINE: dict[str, Callable[..., Any]] = {
    "fashion_mnist": offline.load_fashion_mnist,
    "digits": offline.load_digits,
}


def list_datasets() -> list[str]:
    """Registered dataset names (plus 'tfds:<name>' for any TFDS image-classification set)."""
    return sorted(list(_OFFLINE) + list(TFDS_SPECS) + list(PREPARED_ONLY))


def _generic_spec(tfds_name: str) -> TfdsSpec:
    """Spec for 'tfds:<name>': fixed-size sets materialised, others lazy at 224."""
    import tensorflow_datasets as tfds  # lazy
    try:
        builder = tfds.builder_cls(tfds_name)
    except Exception as e:
        raise ValueError(f"TFDS has no dataset {tfds_name!r}") from e
    del builder
    known = {"fashion_mnist": (_FASHION, (28, 28, 1))}
    (mean, std), shape = known.get(tfds_name, (_IMAGENET, None))
    return TfdsSpec(tfds_name, {"train": "train", "test": "test"}, mean, std,
                    image_shape=shape, lazy=shape is None)


def is_reader_path(name: str) -> bool:
    """Whether `name` names a reader function 'package.module:function'."""
    return import_path.is_path(name) and name.partition(":")[0] not in _PREFIXES


def read_custom(path: str, data_dir: Optional[str] = None, **kwargs
                ) -> tuple[dict[str, Any], DatasetInfo]:
    """Call the user's reader `path` = 'package.module:function' as `function(**kwargs)`, with
    `data_dir=` added when `data.data_dir` is set. It returns ({'train': Split, 'test':
    Split, ...}, DatasetInfo) in kdjax's types (kdjax/data/types.py; `make_split` builds a
    Split); `load_dataset` then validates every split (shapes, dtypes, labels < num_classes)."""
    reader = import_path.resolve(path, "data.name")
    what = f"data.name {path!r}"
    if data_dir:
        kwargs["data_dir"] = data_dir
    try:
        inspect.signature(reader).bind(**kwargs)
    except TypeError as err:
        raise errors.ConfigError(f"{what} cannot be called with {sorted(kwargs) or 'no'} "
                                 f"arguments{' (data.data_dir is set)' if data_dir else ''}: "
                                 f"{err}") from None
    except ValueError:   # no signature to inspect: the call decides
        pass
    out = reader(**kwargs)
    if not (isinstance(out, tuple) and len(out) == 2 and isinstance(out[0], dict)
            and isinstance(out[1], DatasetInfo)):
        raise errors.ConfigError(f"{what} returned a {type(out).__name__}; a reader returns "
                                 "(dict of Split, DatasetInfo) (kdjax/data/types.py)")
    splits, info = out
    missing = [s for s in ("train", "test") if s not in splits]
    if missing:
        raise errors.ConfigError(f"{what} returned no {' or '.join(map(repr, missing))} split "
                                 f"(it has {sorted(splits)})")
    for split_name, split in splits.items():
        if not all(hasattr(split, a) for a in ("images", "labels", "ids")):
            raise errors.ConfigError(f"{what}: split {split_name!r} is a "
                                     f"{type(split).__name__}, not a kdjax Split "
                                     "(kdjax.data.make_split)")
    return splits, info


def load_dataset(name: str, *, data_dir: Optional[str] = None, **kwargs
                 ) -> tuple[dict[str, Any], DatasetInfo]:
    """Loads dataset `name`: ({'train': Split, 'test': Split}, DatasetInfo).

    data_dir: for 'fashion_mnist' a folder with the idx files (default
    /usr/share/datasets/fashion-mnist); for TFDS names the TFDS data_dir. kwargs go to the
    loader: `order=` for fashion_mnist, `download=`/`image_size=` for TFDS names, `lazy=`/
    `image_size=` for prepared folders.
    """
    folder = None if is_reader_path(name) else find_prepared(name, data_dir)
    if is_reader_path(name):
        splits, info = read_custom(name, data_dir, **kwargs)
    elif folder is not None:
        kwargs.pop("download", None)
        splits, info = load_records(folder, **kwargs)
    elif name in PREPARED_ONLY:
        raise FileNotFoundError(
            f"{name} is not in TFDS; prepare it once with `python -m launch.prepare "
            f"--dataset={name} --source=<extracted folder> --out=<root>/{name}` and pass "
            f"--config.data.data_dir=<root> (or set KDJAX_DATA_DIR=<root>)")
    elif name in _OFFLINE:
        splits, info = _OFFLINE[name](data_dir, **kwargs)
    elif name in TFDS_SPECS:
        splits, info = load_tfds(name, TFDS_SPECS[name], data_dir, **kwargs)
    elif name.startswith("tfds:"):
        splits, info = load_tfds(name, _generic_spec(name[len("tfds:"):]), data_dir, **kwargs)
    else:
        raise ValueError(f"Unknown dataset {name!r}. Known: {', '.join(list_datasets())} "
                         "(or 'tfds:<name>' for another TFDS image-classification dataset, "
                         "'records:<dir>' for a folder written by launch.prepare, or your own "
                         "reader as 'package.module:function')")
    for split_name, split in splits.items():
        shape = info.image_shape if getattr(split, "images", None) is not None else None
        validate_split(split, info.num_classes, shape, name=f"{name}/{split_name}")
    return splits, info
