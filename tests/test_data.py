"""Tests for kdjax.data: idx parsing, offline/TFDS loaders, splits, pipeline, augmentation."""
import gzip
import os
import pickle
import struct
import tempfile

import jax
import numpy as np
import pytest

from kdjax import data
from kdjax.data import idx, offline


def _write_idx(path, arr, code=0x08, gz=True):
    """Independent idx writer (struct, big-endian), per the format spec."""
    header = struct.pack(">BBBB", 0, 0, code, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
    payload = header + arr.astype(arr.dtype.newbyteorder(">")).tobytes()
    with (gzip.open if gz else open)(path, "wb") as f:
        f.write(payload)
    return payload


# ---------------------------------------------------------------- idx
def test_idx_roundtrip_uint8_and_int32(tmp_path):
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, (7, 5, 3), dtype=np.uint8)
    _write_idx(tmp_path / "x.gz", imgs)
    out = idx.read_idx(tmp_path / "x.gz")
    assert out.dtype == np.uint8 and out.shape == (7, 5, 3)
    np.testing.assert_array_equal(out, imgs)
    ints = rng.integers(-1000, 1000, (11,)).astype(np.int32)
    _write_idx(tmp_path / "y", ints, code=0x0C, gz=False)
    out = idx.read_idx(tmp_path / "y")
    assert out.dtype == np.int32 and out.dtype.isnative
    np.testing.assert_array_equal(out, ints)


def test_idx_rejects_bad_headers(tmp_path):
    good = _write_idx(tmp_path / "g", np.zeros((2, 3), np.uint8), gz=False)
    with pytest.raises(ValueError, match="magic"):
        idx.parse_idx(b"\x01" + good[1:])
    with pytest.raises(ValueError, match="type code"):
        idx.parse_idx(good[:2] + b"\x07" + good[3:])
    with pytest.raises(ValueError, match="declares shape"):
        idx.parse_idx(good[:-1])
    with pytest.raises(ValueError, match="too short"):
        idx.parse_idx(b"\x00\x00")


def test_tfds_record_order_matches_tfds_shuffler():
    from tensorflow_datasets.core import shuffle  # TFDS's own writer-side ordering
    for split_name in ("train", "test"):
        with tempfile.TemporaryDirectory() as d:
            s = shuffle.Shuffler(d, hash_salt=split_name)
            for i in range(257):
                s.add(i, str(i).encode())
            ref = [int(v) for _, v in s]
        np.testing.assert_array_equal(idx.tfds_record_order(257, split_name), ref)


def test_fashion_mnist_missing_or_malformed_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        data.load_dataset("fashion_mnist", data_dir=str(tmp_path))
    fi, fl, _ = offline._FASHION_FILES["train"]
    _write_idx(tmp_path / fi, np.zeros((30, 28, 28), np.uint8))
    _write_idx(tmp_path / fl, np.zeros((30,), np.uint8))
    with pytest.raises(ValueError, match="expected 60000 examples, found 30"):
        data.load_dataset("fashion_mnist", data_dir=str(tmp_path))
    _write_idx(tmp_path / fi, np.zeros((30, 27, 28), np.uint8))
    with pytest.raises(ValueError, match=r"expected uint8 \(N, 28, 28\) images"):
        data.load_dataset("fashion_mnist", data_dir=str(tmp_path))


# ---------------------------------------------------------------- real offline data
_FM = offline.FASHION_MNIST_DIR


@pytest.mark.skipif(not os.path.exists(os.path.join(_FM, "train-labels-idx1-ubyte.gz")),
                    reason="Debian package dataset-fashion-mnist not installed")
def test_real_fashion_mnist():
    splits, info = data.load_dataset("fashion_mnist")
    tr, te = splits["train"], splits["test"]
    assert tr.images.shape == (60000, 28, 28, 1) and te.images.shape == (10000, 28, 28, 1)
    assert tr.images.dtype == np.uint8 and tr.labels.dtype == np.int32 and tr.ids.dtype == np.int32
    np.testing.assert_array_equal(np.bincount(tr.labels), [6000] * 10)
    np.testing.assert_array_equal(np.bincount(te.labels), [1000] * 10)
    np.testing.assert_array_equal(tr.ids, np.arange(60000))
    assert info.num_classes == 10 and info.image_shape == (28, 28, 1)
    # Widely published Fashion-MNIST train statistics.
    assert abs(info.mean[0] - 0.2860) < 1e-3 and abs(info.std[0] - 0.3530) < 1e-3
    data.validate_split(tr, 10, info.image_shape)
    # TFDS order is a permutation of the file order.
    file_images = idx.read_idx(os.path.join(_FM, "t10k-images-idx3-ubyte.gz"))
    file_labels = idx.read_idx(os.path.join(_FM, "t10k-labels-idx1-ubyte.gz"))
    perm = idx.tfds_record_order(10000, "test")
    np.testing.assert_array_equal(file_images[perm], te.images[..., 0])
    np.testing.assert_array_equal(file_labels[perm], te.labels)


@pytest.fixture(scope="module")
def digits():
    return data.load_dataset("digits")


def test_channel_stats_matches_float64():
    x = np.random.default_rng(0).integers(0, 256, (3000, 5, 3, 3), dtype=np.uint8)
    mean, std = offline.channel_stats(x)
    ref = x.reshape(-1, 3).astype(np.float64) / 255
    np.testing.assert_allclose(mean, ref.mean(0), atol=1e-7)
    np.testing.assert_allclose(std, ref.std(0), atol=1e-7)


def test_digits(digits):
    splits, info = digits
    tr, te = splits["train"], splits["test"]
    assert len(tr) == 1437 and len(te) == 360
    assert tr.images.shape[1:] == (8, 8, 1) and tr.images.dtype == np.uint8
    assert tr.images.max() == 255 and tr.images.min() == 0
    from sklearn.datasets import load_digits
    d = load_digits()
    # every example is one of sklearn's, rescaled 0..16 -> 0..255; train/test disjoint, cover all
    ref = {(np.round(x * 255 / 16).astype(np.uint8).tobytes(), int(y))
           for x, y in zip(d.images, d.target)}
    ours = [(x[..., 0].tobytes(), int(y)) for s in (tr, te) for x, y in zip(s.images, s.labels)]
    assert set(ours) <= ref and len(ours) == 1797
    again, _ = data.load_dataset("digits")
    np.testing.assert_array_equal(again["test"].labels, te.labels)
    assert info.image_shape == (8, 8, 1) and info.num_classes == 10


def test_unknown_dataset_lists_known():
    with pytest.raises(ValueError, match="Known: .*cifar10.*fashion_mnist"):
        data.load_dataset("cifar11")
    assert {"fashion_mnist", "digits", "cifar10", "cifar100", "svhn_cropped", "imagenet2012",
            "mnist"} <= set(data.list_datasets())


# ---------------------------------------------------------------- TFDS via mock_data
def test_tfds_cifar10_mock_data_source():
    import sys
    import tensorflow_datasets as tfds
    with tfds.testing.mock_data(num_examples=24):
        splits, info = data.load_dataset("cifar10")
        ref = tfds.data_source("cifar10", split="test")
        assert info.num_classes == 10 and info.image_shape == (32, 32, 3)
        tr, te = splits["train"], splits["test"]
        assert tr.images.shape == (24, 32, 32, 3) and tr.images.dtype == np.uint8
        assert te.labels.dtype == np.int32
        for i in (0, 7, 23):
            np.testing.assert_array_equal(te.images[i], ref[i]["image"])
            assert te.labels[i] == ref[i]["label"]
        data.validate_split(tr, info.num_classes, info.image_shape)
    assert "tensorflow" not in sys.modules


def test_tfds_not_prepared_gives_clear_error(tmp_path):
    with pytest.raises(RuntimeError, match=r"(?s)'cifar100'.*tfds build cifar100 "
                       r"--file_format=array_record.*fashion_mnist"):
        data.load_dataset("cifar100", data_dir=str(tmp_path))  # download=False: no network
    with pytest.raises(RuntimeError, match="manual download"):
        data.load_dataset("imagenet2012", data_dir=str(tmp_path))


def test_tfds_lazy_imagenet_mock():
    import tensorflow_datasets as tfds
    with tfds.testing.mock_data(num_examples=10):
        splits, info = data.load_dataset("imagenet2012", image_size=40)
        assert info.num_classes == 1000 and info.image_shape == (40, 40, 3)
        tr = splits["train"]
        sub = pickle.loads(pickle.dumps(tr.subset(np.array([3, 1, 4]))))
        np.testing.assert_array_equal(sub.ids, [3, 1, 4])
        batch = next(data.iterate_batches(sub, 4, seed=0, epoch=0, shuffle=False))
        assert batch["image"].shape == (4, 40, 40, 3) and batch["image"].dtype == np.uint8
        np.testing.assert_array_equal(batch["id"], [3, 1, 4, -1])
        np.testing.assert_array_equal(batch["mask"], [1, 1, 1, 0])
        src = tfds.data_source("imagenet2012", split="train")
        assert list(batch["label"][:3]) == [src[i]["label"] for i in (3, 1, 4)]
        ex = sub[2]
        assert ex["id"] == 4 and ex["label"] == src[4]["label"] and ex["image"].shape == (40, 40, 3)


def test_resize_center_crop_exact_on_scaled_checkerboard():
    from kdjax.data.tfds_source import resize_center_crop
    img = np.zeros((50, 100, 3), np.uint8)
    img[:, 50:] = 200  # right half bright
    out = resize_center_crop(img, 28, resize_ratio=1.0)  # 50x100 -> 28x56 -> crop cols 14..41
    assert out.shape == (28, 28, 3)
    assert (out[:, :12] == 0).all() and (out[:, 16:] == 200).all()


# ---------------------------------------------------------------- splits
def _toy_split(n=200, k=5, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(k), n // k)
    return data.make_split(rng.integers(0, 256, (n, 4, 4, 1), dtype=np.uint8), labels)


def test_split_validation_disjoint_cover_stratified_deterministic():
    s = _toy_split()
    rest, val = data.split_validation(s, 50, seed=3)
    assert len(val) == 50 and len(rest) == 150
    assert not set(val.ids) & set(rest.ids)
    np.testing.assert_array_equal(np.sort(np.concatenate([val.ids, rest.ids])), np.arange(200))
    np.testing.assert_array_equal(np.bincount(val.labels), [10] * 5)  # stratified
    np.testing.assert_array_equal(val.images, s.images[val.ids])      # ids index the original
    rest2, val2 = data.split_validation(s, 50, seed=3)
    np.testing.assert_array_equal(val.ids, val2.ids)
    _, val3 = data.split_validation(s, 50, seed=4)
    assert set(val3.ids) != set(val.ids)
    with pytest.raises(ValueError, match="num_val"):
        data.split_validation(s, 200, seed=0)


def test_split_active_and_nested_ids():
    s = _toy_split()
    rest, _ = data.split_validation(s, 20, seed=0)
    lab, unl = data.split_active(rest, 30, seed=1)
    assert len(lab) == 30 and len(unl) == 150
    assert not set(lab.ids) & set(unl.ids)
    assert set(lab.ids) | set(unl.ids) == set(rest.ids)
    np.testing.assert_array_equal(lab.labels, s.labels[lab.ids])
    lab_b, _ = data.split_active(rest, 30, seed=1)
    np.testing.assert_array_equal(lab.ids, lab_b.ids)
    lab_c, _ = data.split_active(rest, 30, seed=2)
    assert set(lab_c.ids) != set(lab.ids)
    with pytest.raises(ValueError, match="num_labeled"):
        data.split_active(rest, 181, seed=0)


# ---------------------------------------------------------------- validate_split
def test_validate_split_errors():
    s = _toy_split(20, 5)
    data.validate_split(s, 5, (4, 4, 1))
    bad = data.make_split(s.images, np.where(np.arange(20) == 7, 9, s.labels))
    with pytest.raises(ValueError, match=r"1 label\(s\) out of range \[0, 5\); first at index 7"):
        data.validate_split(bad, 5)
    with pytest.raises(ValueError, match="labels must be int32"):
        data.validate_split(data.Split(s.images, s.labels.astype(np.int64), s.ids), 5)
    with pytest.raises(ValueError, match="expected per-example shape"):
        data.validate_split(s, 5, (8, 8, 1))
    with pytest.raises(ValueError, match="images must be uint8 or float32"):
        data.validate_split(data.Split(s.images.astype(np.int16), s.labels, s.ids), 5)
    with pytest.raises(ValueError, match=r"images must be \(N, H, W, C\)"):
        data.validate_split(data.Split(s.images[..., 0], s.labels, s.ids), 5)
    f = s.images.astype(np.float32)
    f[3, 0, 0, 0] = np.nan
    f[11, 1, 1, 0] = np.inf
    with pytest.raises(ValueError, match="2 example.*NaN/inf; first at index 3"):
        data.validate_split(data.Split(f, s.labels, s.ids), 5)
    with pytest.raises(ValueError, match="duplicate id"):
        data.validate_split(data.Split(s.images, s.labels, np.zeros(20, np.int32)), 5)
    with pytest.raises(ValueError, match="5 labels"):
        data.validate_split(data.Split(s.images, s.labels[:5], s.ids[:5]), 5)


# ---------------------------------------------------------------- pipeline
def test_iterate_batches_covers_epoch_once_with_padding():
    s = _toy_split(103, 1)
    bs = 16
    assert data.num_batches(103, bs) == 7 and data.num_batches(103, bs, True) == 6
    batches = list(data.iterate_batches(s, bs, seed=0, epoch=0))
    assert len(batches) == 7
    ids = np.concatenate([b["id"][b["mask"] == 1] for b in batches])
    np.testing.assert_array_equal(np.sort(ids), np.arange(103))
    last = batches[-1]
    assert last["image"].shape == (16, 4, 4, 1) and last["mask"].sum() == 103 - 96
    assert (last["id"][last["mask"] == 0] == -1).all()
    for b in batches:  # image/label rows match the ids
        v = b["mask"] == 1
        np.testing.assert_array_equal(b["image"][v], s.images[b["id"][v]])
        assert b["label"].dtype == np.int32 and b["mask"].dtype == np.float32
    dropped = list(data.iterate_batches(s, bs, seed=0, epoch=0, drop_remainder=True))
    assert len(dropped) == 6 and all(b["mask"].all() for b in dropped)


def test_iterate_batches_deterministic_per_seed_epoch():
    s = _toy_split(64, 1)
    ids = lambda **kw: np.concatenate([b["id"] for b in data.iterate_batches(s, 8, **kw)])
    np.testing.assert_array_equal(ids(seed=1, epoch=2), ids(seed=1, epoch=2))
    assert not np.array_equal(ids(seed=1, epoch=2), ids(seed=1, epoch=3))
    assert not np.array_equal(ids(seed=1, epoch=2), ids(seed=2, epoch=2))
    np.testing.assert_array_equal(ids(seed=5, epoch=0, shuffle=False), np.arange(64))
    np.testing.assert_array_equal(ids(seed=1, epoch=2, start_batch=3), ids(seed=1, epoch=2)[24:])


def test_process_slices_partition_global_batch():
    s = _toy_split(75, 1)
    bs, pc = 12, 4
    glob = list(data.iterate_batches(s, bs, seed=7, epoch=1))
    per_proc = [list(data.iterate_batches(s, bs, seed=7, epoch=1, process_index=p,
                                          process_count=pc)) for p in range(pc)]
    assert all(len(pp) == len(glob) for pp in per_proc)
    for b, g in enumerate(glob):
        for key in ("image", "label", "id", "mask"):
            parts = [per_proc[p][b][key] for p in range(pc)]
            assert all(x.shape[0] == bs // pc for x in parts)
            np.testing.assert_array_equal(np.concatenate(parts), g[key])
    with pytest.raises(ValueError, match="not divisible"):
        next(data.iterate_batches(s, 10, seed=0, epoch=0, process_index=0, process_count=4))


def test_split_is_a_grain_source():
    import grain
    s = _toy_split(10, 1)
    batches = list(grain.MapDataset.source(s).batch(4))
    np.testing.assert_array_equal(np.concatenate([b["id"] for b in batches]), np.arange(10))
    np.testing.assert_array_equal(batches[1]["image"], s.images[4:8])


def test_to_global_and_prefetch():
    s = _toy_split(40, 1)
    mesh = jax.sharding.Mesh(np.array(jax.devices()), ("data",))
    sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("data"))
    nd = len(jax.devices())
    it = data.prefetch(data.iterate_batches(s, 2 * nd, seed=0, epoch=0), size=2)
    local = list(data.iterate_batches(s, 2 * nd, seed=0, epoch=0))
    got = list(it)
    assert len(got) == len(local)
    g = data.to_global(got[0], sharding)
    assert g["image"].shape == (2 * nd, 4, 4, 1) and g["image"].sharding == sharding
    np.testing.assert_array_equal(np.asarray(g["id"]), local[0]["id"])

    def boom():
        yield {"x": 1}
        raise RuntimeError("producer failed")
    it = data.prefetch(boom())
    assert next(it) == {"x": 1}
    with pytest.raises(RuntimeError, match="producer failed"):
        next(it)


# ---------------------------------------------------------------- augmentation
_crop = jax.jit(data.random_crop_flip, static_argnames=("pad", "mode", "flip"))

def test_random_crop_flip_matches_bruteforce():
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, (6, 5, 7, 2), dtype=np.uint8)
    key = jax.random.PRNGKey(3)
    for mode in ("constant", "reflect"):
        out = np.asarray(_crop(key, imgs, pad=2, mode=mode))
        assert out.shape == imgs.shape and out.dtype == np.uint8
        np.testing.assert_array_equal(out, _crop(key, imgs, pad=2, mode=mode))
        padded = np.pad(imgs, ((0, 0), (2, 2), (2, 2), (0, 0)), mode=mode)
        for i in range(6):  # each output is exactly one of the 25 crops, maybe flipped
            cands = [c for dy in range(5) for dx in range(5)
                     for c in (padded[i, dy:dy + 5, dx:dx + 7],
                               padded[i, dy:dy + 5, dx:dx + 7][:, ::-1])]
            assert any(np.array_equal(out[i], c) for c in cands)
    other = np.asarray(_crop(jax.random.PRNGKey(4), imgs, pad=2, mode="reflect"))
    assert not np.array_equal(other, out)


def test_flip_only_and_identity():
    imgs = np.arange(2 * 3 * 4 * 1, dtype=np.float32).reshape(2, 3, 4, 1)
    same = np.asarray(_crop(jax.random.PRNGKey(0), imgs, pad=0, flip=False))
    np.testing.assert_array_equal(same, imgs)
    # pad=0: output is the image or its exact left-right mirror; over many keys both occur
    seen = set()
    for k in range(16):
        out = np.asarray(_crop(jax.random.PRNGKey(k), imgs, pad=0))
        for i in range(2):
            if np.array_equal(out[i], imgs[i]):
                seen.add("id")
            else:
                np.testing.assert_array_equal(out[i], imgs[i][:, ::-1])
                seen.add("flip")
    assert seen == {"id", "flip"}


def test_normalize(digits):
    imgs = np.array([[[[0, 255, 51]]]], np.uint8)
    out = np.asarray(jax.jit(data.normalize)(imgs, (0.5, 0.5, 0.2), (0.5, 0.25, 0.1)))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out[0, 0, 0], [-1.0, 2.0, 0.0], atol=1e-6)
    splits, info = digits
    z = np.asarray(data.normalize(splits["train"].images, info.mean, info.std))
    assert abs(z.mean()) < 1e-4 and abs(z.std() - 1) < 1e-4
    key = jax.random.PRNGKey(0)
    imgs = splits["train"].images[:8]
    pre = jax.jit(data.preprocess, static_argnames=("augment", "pad", "mode"))
    np.testing.assert_allclose(
        np.asarray(pre(key, imgs, info.mean, info.std, augment=True, pad=1)),
        np.asarray(data.normalize(_crop(key, imgs, pad=1), info.mean, info.std)), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(pre(key, imgs, info.mean, info.std)),
                               np.asarray(data.normalize(imgs, info.mean, info.std)), rtol=1e-6)
