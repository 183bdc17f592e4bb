"""Readers of the datasets' own distribution files -> per-split `Listing`s (no TensorFlow).

* CIFAR-10/100 python tarballs (https://www.cs.toronto.edu/~kriz/cifar.html): pickled dicts
  with b'data' (N, 3072) uint8 rows in CHW order and b'labels' (CIFAR-10) / b'fine_labels'
  (CIFAR-100); class names in batches.meta / meta.
* SVHN cropped digits (http://ufldl.stanford.edu/housenumbers/): train_32x32.mat /
  test_32x32.mat with X (32, 32, 3, N) uint8 and y (N, 1) in 1..10, where 10 means digit 0.
* Image folders: one sub-folder per class (ImageNet train, and val after the usual
  reorganisation), plus the documented label files of
  ImageNet val (Kaggle LOC_val_solution.csv: "ImageId,PredictionString" whose first token is
  the wnid), Tiny-ImageNet (wnids.txt, train/<wnid>/images/*.JPEG,
  val/val_annotations.txt "file<TAB>wnid<TAB>box"), FGVC-Aircraft 2013b (data/variants.txt,
  data/images_variant_{trainval,test}.txt "<image id> <variant>", data/images/<id>.jpg) and
  Stanford Dogs (Images/<wnid>-<breed>/*.jpg, train_list.mat / test_list.mat with
  file_list and 1-based labels).

A corrupt or truncated file raises `SourceError` (a ValueError) naming it, a missing file or
folder `MissingSource` (also a FileNotFoundError): `launch.prepare` prints either as one line.
"""
from __future__ import annotations

import dataclasses
import os
import pickle
import tarfile
from typing import Optional, Sequence

import numpy as np

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


@dataclasses.dataclass
class Listing:
    """One split to write: either `images` (N, H, W, C) uint8 in memory, or `files` (N paths
    of encoded images); `labels` (N,) int."""
    labels: np.ndarray
    images: Optional[np.ndarray] = None
    files: Optional[list[str]] = None

    def __len__(self) -> int:
        return int(len(self.labels))


@dataclasses.dataclass
class DatasetFiles:
    """What a reader found: splits, class names and the default recipe/shape."""
    splits: dict[str, Listing]
    class_names: list[str]
    recipe: str
    image_shape: Optional[tuple[int, int, int]] = None  # fixed-size (raw) sets


class SourceError(ValueError):
    """A source file or folder a user can fix (corrupt, truncated, wrong layout)."""


class MissingSource(SourceError, FileNotFoundError):
    """A source file or folder that does not exist."""


def _open_text(path: str):
    """A text file the layout requires; missing -> MissingSource naming it."""
    if not os.path.isfile(path):
        raise MissingSource(f"{path} not found (see kdjax/data/prepare/readers.py for the "
                            "expected layout)")
    return open(path)


def _bad(path: str, what: str, err: Exception) -> SourceError:
    return SourceError(f"{path}: {what} ({type(err).__name__}: {err}); the file may be "
                      "truncated or corrupt, download it again")


# ---------------------------------------------------------------- CIFAR
def read_cifar(tarball: str, num_classes: int) -> DatasetFiles:
    """CIFAR-10 (num_classes=10) or CIFAR-100 (100) from the official python tarball."""
    if num_classes not in (10, 100):
        raise SourceError(f"CIFAR has 10 or 100 classes, got {num_classes}")
    if num_classes == 10:
        parts = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}
        meta, label_key, names_key = "batches.meta", b"labels", b"label_names"
    else:
        parts = {"train": ["train"], "test": ["test"]}
        meta, label_key, names_key = "meta", b"fine_labels", b"fine_label_names"
    try:
        with tarfile.open(tarball, "r:*") as tar:
            members = {os.path.basename(m.name): m for m in tar.getmembers() if m.isfile()}
            def load(name):
                if name not in members:
                    raise KeyError(f"member {name!r} missing")
                return pickle.loads(tar.extractfile(members[name]).read(), encoding="bytes")
            splits = {}
            for split, names in parts.items():
                dicts = [load(n) for n in names]
                data = np.concatenate([np.asarray(d[b"data"], np.uint8) for d in dicts])
                labels = np.concatenate([np.asarray(d[label_key], np.int64) for d in dicts])
                if data.ndim != 2 or data.shape[1] != 3072 or len(labels) != len(data):
                    raise ValueError(f"{split}: data {data.shape}, labels {labels.shape}")
                images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
                splits[split] = Listing(labels, images=np.ascontiguousarray(images))
            class_names = [n.decode() for n in load(meta)[names_key]]
    except (tarfile.TarError, EOFError, OSError, KeyError, ValueError,
            pickle.UnpicklingError) as e:
        raise _bad(tarball, "not a readable CIFAR python tarball", e) from e
    return DatasetFiles(splits, class_names, "cifar", (32, 32, 3))


# ---------------------------------------------------------------- SVHN
def read_svhn_mat(path: str) -> Listing:
    """One SVHN *_32x32.mat: X (32, 32, 3, N) -> (N, 32, 32, 3); label 10 -> 0."""
    import scipy.io  # lazy
    try:
        mat = scipy.io.loadmat(path)
        x, y = np.asarray(mat["X"]), np.asarray(mat["y"]).reshape(-1)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise _bad(path, "not a readable SVHN .mat file", e) from e
    if x.ndim != 4 or x.shape[:3] != (32, 32, 3) or x.shape[3] != y.shape[0]:
        raise SourceError(f"{path}: expected X (32, 32, 3, N) and y (N,), got {x.shape}, "
                         f"{y.shape}")
    if y.min() < 1 or y.max() > 10:
        raise SourceError(f"{path}: labels must lie in 1..10, got {y.min()}..{y.max()}")
    images = np.ascontiguousarray(x.transpose(3, 0, 1, 2).astype(np.uint8))
    return Listing((y % 10).astype(np.int64), images=images)


def read_svhn(files: dict[str, str]) -> DatasetFiles:
    """{'train': train_32x32.mat, 'test': test_32x32.mat, ['extra': ...]} -> DatasetFiles."""
    splits = {split: read_svhn_mat(path) for split, path in files.items()}
    return DatasetFiles(splits, [str(d) for d in range(10)], "cifar", (32, 32, 3))


# ---------------------------------------------------------------- image folders
def _images_under(folder: str) -> list[str]:
    out = []
    for root, _, names in os.walk(folder):
        out.extend(os.path.join(root, n) for n in names
                   if n.lower().endswith(IMAGE_EXTENSIONS))
    return sorted(out)


def class_folder_listing(root: str, classes: Optional[Sequence[str]] = None) -> tuple[
        Listing, list[str]]:
    """root/<class>/**/<image>: labels = index of the class folder in sorted order (or in
    `classes` when given, e.g. the train split's)."""
    if not os.path.isdir(root):
        raise MissingSource(f"image folder not found: {root}")
    found = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
    classes = list(classes) if classes is not None else found
    index = {c: i for i, c in enumerate(classes)}
    unknown = sorted(set(found) - set(index))
    if unknown:
        raise SourceError(f"{root}: class folder(s) {unknown[:3]} not among the {len(classes)} "
                         "training classes")
    files, labels = [], []
    for c in found:
        imgs = _images_under(os.path.join(root, c))
        files += imgs
        labels += [index[c]] * len(imgs)
    if not files:
        raise SourceError(f"{root}: no images ({', '.join(IMAGE_EXTENSIONS)}) in class folders")
    return Listing(np.asarray(labels, np.int64), files=files), classes


def _pairs_listing(pairs: list[tuple[str, str]], classes: list[str], where: str) -> Listing:
    index = {c: i for i, c in enumerate(classes)}
    files, labels = [], []
    for path, cls in pairs:
        if cls not in index:
            raise SourceError(f"{where}: unknown class {cls!r} for {path}")
        if not os.path.exists(path):
            raise MissingSource(f"{where} lists {path}, which does not exist")
        files.append(path)
        labels.append(index[cls])
    return Listing(np.asarray(labels, np.int64), files=files)


def read_imagenet(root: str) -> DatasetFiles:
    """root/train/<wnid>/*.JPEG; root/val either in class folders or flat with
    LOC_val_solution.csv in root or up to three folders above it (Kaggle's ILSVRC layout,
    root = ILSVRC/Data/CLS-LOC)."""
    train, classes = class_folder_listing(os.path.join(root, "train"))
    val_dir = os.path.join(root, "val")
    # Kaggle's layout: <top>/LOC_val_solution.csv next to <top>/ILSVRC/Data/CLS-LOC/{train,val}
    csvs = [os.path.join(root, *[".."] * up, "LOC_val_solution.csv") for up in range(4)]
    csv = os.path.normpath(next((c for c in csvs if os.path.exists(c)), csvs[0]))
    if os.path.isdir(val_dir) and any(os.path.isdir(os.path.join(val_dir, d))
                                      for d in os.listdir(val_dir)):
        val, _ = class_folder_listing(val_dir, classes)
    elif os.path.exists(csv):
        pairs = []
        with _open_text(csv) as f:
            header = f.readline().strip().split(",")
            if header[:2] != ["ImageId", "PredictionString"]:
                raise SourceError(f"{csv}: expected header ImageId,PredictionString")
            for line in f:
                image_id, pred = line.strip().split(",", 1)
                pairs.append((os.path.join(val_dir, image_id + ".JPEG"), pred.split()[0]))
        val = _pairs_listing(sorted(pairs), classes, csv)
    else:
        raise MissingSource(f"{val_dir}: needs class sub-folders or {csv}")
    return DatasetFiles({"train": train, "test": val}, classes, "imagenet")


def read_tiny_imagenet(root: str) -> DatasetFiles:
    """tiny-imagenet-200/: wnids.txt, train/<wnid>/images/, val/val_annotations.txt;
    test = the labelled val split (the official test split has no labels)."""
    with _open_text(os.path.join(root, "wnids.txt")) as f:
        classes = sorted(line.strip() for line in f if line.strip())
    train, _ = class_folder_listing(os.path.join(root, "train"), classes)
    ann = os.path.join(root, "val", "val_annotations.txt")
    with _open_text(ann) as f:
        pairs = [(os.path.join(root, "val", "images", cols[0]), cols[1])
                 for cols in (line.rstrip("\n").split("\t") for line in f) if len(cols) > 1]
    val = _pairs_listing(sorted(pairs), classes, ann)
    return DatasetFiles({"train": train, "test": val}, classes, "cifar", (64, 64, 3))


def read_fgvc_aircraft(root: str) -> DatasetFiles:
    """fgvc-aircraft-2013b/ (or its data/ folder): 100 variants; train = trainval."""
    data = os.path.join(root, "data") if os.path.isdir(os.path.join(root, "data")) else root
    with _open_text(os.path.join(data, "variants.txt")) as f:
        classes = [line.strip() for line in f if line.strip()]
    splits = {}
    for ours, theirs in (("train", "trainval"), ("test", "test")):
        path = os.path.join(data, f"images_variant_{theirs}.txt")
        with _open_text(path) as f:
            pairs = [(os.path.join(data, "images", image_id + ".jpg"), variant)
                     for image_id, variant in (line.strip().split(" ", 1) for line in f
                                               if line.strip())]
        splits[ours] = _pairs_listing(pairs, classes, path)
    return DatasetFiles(splits, classes, "imagenet")


def read_stanford_dogs(root: str) -> DatasetFiles:
    """Images/<wnid>-<breed>/*.jpg with train_list.mat / test_list.mat (1-based labels)."""
    import scipy.io  # lazy
    images = os.path.join(root, "Images")
    if not os.path.isdir(images):
        raise MissingSource(f"image folder not found: {images}")
    classes = sorted(d for d in os.listdir(images) if os.path.isdir(os.path.join(images, d)))
    splits = {}
    for split in ("train", "test"):
        path = os.path.join(root, f"{split}_list.mat")
        try:
            mat = scipy.io.loadmat(path)
            rel = [str(np.asarray(x).reshape(-1)[0]) for x in np.asarray(mat["file_list"])
                   .reshape(-1)]
            labels = np.asarray(mat["labels"]).reshape(-1).astype(np.int64) - 1
        except (OSError, ValueError, KeyError) as e:
            raise _bad(path, "not a readable Stanford Dogs list", e) from e
        pairs = [(os.path.join(images, r), r.split("/")[0]) for r in rel]
        listing = _pairs_listing(pairs, classes, path)
        if not np.array_equal(listing.labels, labels):
            raise SourceError(f"{path}: labels disagree with the sorted class folders")
        splits[split] = listing
    return DatasetFiles(splits, classes, "imagenet")


def read_image_folders(root: str) -> DatasetFiles:
    """Generic: root/train/<class>/..., root/test/<class>/... (or root/val/<class>/...)."""
    train, classes = class_folder_listing(os.path.join(root, "train"))
    test_dir = os.path.join(root, "test")
    if not os.path.isdir(test_dir):
        test_dir = os.path.join(root, "val")
    test, _ = class_folder_listing(test_dir, classes)
    return DatasetFiles({"train": train, "test": test}, classes, "imagenet")
