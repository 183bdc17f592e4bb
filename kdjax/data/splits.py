"""Derived splits: a held-out validation part of train, active-learning labeled/unlabeled, and
the union of two sub-splits of one split (`concat`).

Both return sub-splits whose `ids` still index the ORIGINAL split, so per-example state
(e.g. RAD's weights, cached teacher soft labels) can be gathered/scattered by id.
Positions inside each result are in ascending original order; which examples are chosen is
a deterministic function of `seed`.
"""
from __future__ import annotations

import dataclasses

import numpy as np


def _check_count(what: str, k: int, n: int, allow_all: bool = False) -> None:
    hi = n if allow_all else n - 1
    if not 0 <= k <= hi:
        raise ValueError(f"{what} must be in [0, {hi}] for a split of {n} examples, got {k}")


def _stratified_choice(labels: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k positions with per-class counts proportional to class frequency (largest remainder)."""
    classes, counts = np.unique(labels, return_counts=True)
    exact = k * counts / labels.size
    quota = np.floor(exact).astype(np.int64)
    rest = k - int(quota.sum())
    order = np.lexsort((classes, -(exact - quota)))  # largest fraction first, ties by class
    quota[order[:rest]] += 1
    chosen = []
    for c, q in zip(classes, quota):
        members = np.flatnonzero(labels == c)
        chosen.append(rng.choice(members, size=int(q), replace=False))
    return np.concatenate(chosen) if chosen else np.zeros((0,), np.int64)


def _partition(split, chosen: np.ndarray):
    mask = np.zeros(len(split), dtype=bool)
    mask[chosen] = True
    return split.subset(np.flatnonzero(mask)), split.subset(np.flatnonzero(~mask))


def split_validation(split, num_val: int, seed: int, stratified: bool = True):
    """(train_rest, validation): `num_val` examples held out of `split`.

    Stratified by label when labels are known (class proportions kept up to rounding),
    otherwise uniformly at random. Deterministic per seed.
    """
    n = len(split)
    _check_count("num_val", num_val, n)
    rng = np.random.default_rng([int(seed), 0x7A11])
    labels = getattr(split, "labels", None)
    if stratified and labels is not None:
        chosen = _stratified_choice(np.asarray(labels), num_val, rng)
    else:
        chosen = rng.choice(n, size=num_val, replace=False)
    val, rest = _partition(split, chosen)
    return rest, val


def split_active(split, num_labeled: int, seed: int):
    """(labeled, unlabeled): a uniformly random labeled pool of size `num_labeled` (|A|).

    The pool is re-drawn for every seed (active distillation reshuffles per run).
    """
    n = len(split)
    _check_count("num_labeled", num_labeled, n, allow_all=True)
    rng = np.random.default_rng([int(seed), 0xAC71])
    chosen = rng.choice(n, size=num_labeled, replace=False)
    return _partition(split, chosen)


def concat(a, b):
    """Rows of `a` then rows of `b`: in-memory Splits (images concatenated), or LazySplits of
    one source and recipe (ids and labels concatenated; nothing is decoded)."""
    from kdjax.data.lazy import LazySplit  # lazy: keeps this module free of msgpack/PIL
    from kdjax.data.types import Split
    if isinstance(a, LazySplit) and isinstance(b, LazySplit):
        if a.source is not b.source or a.recipe != b.recipe or a.image_shape != b.image_shape:
            raise ValueError("concat: the two on-disk splits read different sources")
        return dataclasses.replace(a, ids=np.concatenate([a.ids, b.ids]),
                                   labels=np.concatenate([a.labels, b.labels]))
    if isinstance(a, LazySplit) or isinstance(b, LazySplit):
        raise ValueError("concat: cannot join an on-disk split with an in-memory one")
    return Split(np.concatenate([a.images, b.images]), np.concatenate([a.labels, b.labels]),
                 np.concatenate([a.ids, b.ids]))


def _flip_draw(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.random.Generator]:
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"data.label_noise must be in [0, 1), got {fraction}")
    rng = np.random.default_rng(seed)
    flipped = np.zeros(n, bool)
    flipped[rng.permutation(n)[: int(round(fraction * n))]] = True
    return flipped, rng


def flip_mask(n: int, fraction: float, seed: int) -> np.ndarray:
    """Which of n rows `flip_labels` flips (a function of n, fraction and seed)."""
    return _flip_draw(n, fraction, seed)[0]


def flip_labels(split, fraction: float, num_classes: int, seed: int):
    """Flip `fraction` of the labels to a uniformly drawn *other* class -> (split, flipped):
    the label noise of ALM-KD Sec. 6.4 (`data.label_noise`)."""
    flipped, rng = _flip_draw(len(split), fraction, seed)
    labels = split.labels.copy()
    shift = rng.integers(1, num_classes, size=int(flipped.sum()))
    labels[flipped] = (labels[flipped] + shift) % num_classes
    return dataclasses.replace(split, labels=labels.astype(np.int32)), flipped
