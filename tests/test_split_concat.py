"""kdjax.data.concat: the union of two sub-splits, in memory or on disk (RAD's P = labeled ∪
queried on an on-disk ImageNet split, kdjax/methods/rad/loop.py)."""
import numpy as np
import pytest

from kdjax.data import LazySplit, Recipe, Split, concat, split_active


def test_concat_in_memory_and_lazy():
    images = np.arange(10 * 4, dtype=np.uint8).reshape(10, 2, 2, 1)
    split = Split(images, np.arange(10) % 3, np.arange(100, 110))
    a, b = split_active(split, 4, seed=0)
    both = concat(a, b)
    np.testing.assert_array_equal(both.ids, np.concatenate([a.ids, b.ids]))
    np.testing.assert_array_equal(both.images, np.concatenate([a.images, b.images]))
    lazy = LazySplit(source=object(), ids=np.arange(10), labels=np.arange(10) % 3,
                     recipe=Recipe("none"), image_shape=(2, 2, 1))
    la, lb = split_active(lazy, 4, seed=0)
    joined = concat(la, lb.subset([2, 0]))
    assert isinstance(joined, LazySplit) and joined.source is lazy.source
    np.testing.assert_array_equal(joined.ids, np.concatenate([la.ids, lb.ids[[2, 0]]]))
    np.testing.assert_array_equal(joined.labels, joined.ids % 3)
    with pytest.raises(ValueError, match="on-disk split with an in-memory"):
        concat(la, a)
    other = LazySplit(source=object(), ids=[0], labels=[0], recipe=Recipe("none"),
                      image_shape=(2, 2, 1))
    with pytest.raises(ValueError, match="different sources"):
        concat(la, other)
