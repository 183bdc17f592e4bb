"""Datasets that load with no network: Fashion-MNIST from Debian's idx files, sklearn digits."""
from __future__ import annotations

import os
from typing import Optional

import numpy as np

from kdjax.data import idx
from kdjax.data.types import DatasetInfo, Split, make_split

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
_FASHION_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", 60000),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", 10000),
}
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
                         "Shirt", "Sneaker", "Bag", "Ankle boot")


def channel_stats(images: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and (population) std of uint8 NHWC images, in units of pixel/255.

    Accumulated in float64 over chunks of float32 copies, so memory stays small.
    """
    if images.dtype != np.uint8:
        raise ValueError(f"channel_stats expects uint8 images, got {images.dtype}")
    c = images.shape[-1]
    total, total_sq, count = np.zeros(c), np.zeros(c), 0
    for start in range(0, images.shape[0], 2048):
        chunk = images[start:start + 2048].reshape(-1, c).astype(np.float32) / 255.0
        total += chunk.sum(0, dtype=np.float64)
        total_sq += np.einsum("ij,ij->j", chunk, chunk, dtype=np.float64)
        count += chunk.shape[0]
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - mean ** 2, 0.0))
    return tuple(float(m) for m in mean), tuple(float(v) for v in std)


def _missing_fashion(path: str) -> FileNotFoundError:
    return FileNotFoundError(
        f"Fashion-MNIST idx file not found: {path}\n"
        "Install the offline copy with:  sudo apt-get install dataset-fashion-mnist\n"
        f"(it puts the idx files under {FASHION_MNIST_DIR}), or pass data_dir= a folder holding "
        "the four *-ubyte.gz files. Online alternative through TFDS: "
        "--config.data.name=tfds:fashion_mnist")


def load_fashion_mnist(data_dir: Optional[str] = None, *, order: str = "tfds"
                       ) -> tuple[dict[str, Split], DatasetInfo]:
    """Fashion-MNIST (60000 train / 10000 test, 28x28x1 uint8, 10 classes) from idx files.

    order='tfds' (default) lists examples in the same order TFDS stores them (so id i is
    `tfds.data_source('fashion_mnist', split=...)[i]`); order='file' keeps the idx file order.
    """
    if order not in ("tfds", "file"):
        raise ValueError(f"order must be 'tfds' or 'file', got {order!r}")
    root = data_dir or FASHION_MNIST_DIR
    splits = {}
    for split_name, (img_file, lbl_file, n) in _FASHION_FILES.items():
        paths = [os.path.join(root, img_file), os.path.join(root, lbl_file)]
        for p in paths:
            if not os.path.exists(p):
                raise _missing_fashion(p)
        images = idx.read_idx(paths[0])
        labels = idx.read_idx(paths[1])
        if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
            raise ValueError(f"{paths[0]}: expected uint8 (N, 28, 28) images, got "
                             f"{images.dtype} {images.shape}")
        if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
            raise ValueError(f"{paths[1]}: {labels.shape} labels for {images.shape[0]} images")
        if images.shape[0] != n:
            raise ValueError(f"{paths[0]}: expected {n} examples, found {images.shape[0]}")
        if order == "tfds":
            perm = idx.tfds_record_order(n, split_name)
            images, labels = images[perm], labels[perm]
        splits[split_name] = make_split(images[..., None], labels)
    mean, std = channel_stats(splits["train"].images)
    return splits, DatasetInfo("fashion_mnist", 10, (28, 28, 1), mean, std)


DIGITS_NUM_TEST = 360


def load_digits(data_dir: Optional[str] = None) -> tuple[dict[str, Split], DatasetInfo]:
    """sklearn's bundled 8x8 digits (1797 images, 10 classes) as 8x8x1 uint8 images.

    Pixel values 0..16 are rescaled to 0..255 (round(v * 255 / 16)). Fixed split: a
    permutation drawn with seed 0 gives 1437 train / 360 test examples.
    """
    del data_dir
    from sklearn.datasets import load_digits as sk_load_digits  # lazy: sklearn import is slow.
    d = sk_load_digits()
    images = np.round(d.images * (255.0 / 16.0)).astype(np.uint8)[..., None]
    labels = d.target.astype(np.int32)
    perm = np.random.default_rng(0).permutation(labels.shape[0])
    test_idx, train_idx = perm[:DIGITS_NUM_TEST], perm[DIGITS_NUM_TEST:]
    splits = {"train": make_split(images[train_idx], labels[train_idx]),
              "test": make_split(images[test_idx], labels[test_idx])}
    mean, std = channel_stats(splits["train"].images)
    return splits, DatasetInfo("digits", 10, (8, 8, 1), mean, std)
