"""The grain loader: same batches as pipeline.iterate_batches, determinism, per-process shards,
exact mid-epoch resume from the iterator state, worker processes, recipes, TFDS labels."""
import io
import math
import os

import numpy as np
import pytest
from PIL import Image

from kdjax import data
from kdjax.data import loader, pipeline, prepare, transforms
from kdjax.data.lazy import LazySplit, TfdsSource

from tests.test_prepare import smooth_jpeg, write_class_folders, write_cifar100_tarball


def _mem_split(n=53, shape=(6, 6, 3), seed=0):
    rng = np.random.default_rng(seed)
    return data.make_split(rng.integers(0, 256, (n,) + shape, dtype=np.uint8),
                           rng.integers(0, 10, n))


@pytest.fixture(scope="module")
def jpeg_split(tmp_path_factory):
    root = tmp_path_factory.mktemp("jpeg")
    write_class_folders(str(root / "src"), per_class=5)
    prepare.prepare("folder", str(root / "src"), str(root / "out"), num_workers=1,
                    examples_per_shard=6, image_size=24)
    splits, _ = data.load_dataset(f"records:{root / 'out'}")
    return splits["train"]


@pytest.fixture(scope="module")
def cifar_lazy(tmp_path_factory):
    root = tmp_path_factory.mktemp("cifar")
    write_cifar100_tarball(str(root / "c.tar.gz"), n_train=37, n_test=5)
    prepare.prepare("cifar100", str(root / "c.tar.gz"), str(root / "out"), num_workers=1,
                    check_md5=False)
    splits, _ = data.load_dataset(f"records:{root / 'out'}", lazy=True)
    return splits["train"]


def _collect(it):
    return [dict(b) for b in it]


def _assert_same(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert sorted(x) == sorted(y) == ["id", "image", "label", "mask"]
        for k in x:
            assert x[k].dtype == y[k].dtype and x[k].shape == y[k].shape, k
            np.testing.assert_array_equal(x[k], y[k])


@pytest.mark.parametrize("drop_remainder", [False, True])
def test_same_batches_as_pipeline(drop_remainder):
    s = _mem_split()
    for count in (1, 2):
        for index in range(count):
            kw = dict(seed=4, epoch=3, shuffle=True, drop_remainder=drop_remainder,
                      process_index=index, process_count=count, start_batch=1)
            _assert_same(_collect(pipeline.iterate_batches(s, 10, **kw)),
                         _collect(loader.iterate_batches(s, 10, worker_count=0, **kw)))


def test_lazy_split_eval_batches_equal_pipeline_take(cifar_lazy):
    kw = dict(seed=0, epoch=1, shuffle=True, drop_remainder=False)
    _assert_same(_collect(pipeline.iterate_batches(cifar_lazy, 8, **kw)),
                 _collect(loader.iterate_batches(cifar_lazy, 8, worker_count=0, **kw)))


def test_deterministic_per_seed_epoch_with_augmentation(jpeg_split):
    def run(seed, epoch):
        return _collect(loader.iterate_batches(jpeg_split, 4, seed=seed, epoch=epoch,
                                               augment=True, worker_count=0))
    a = run(1, 0)
    _assert_same(a, run(1, 0))
    b = run(1, 1)
    assert not all(np.array_equal(x["image"], y["image"]) for x, y in zip(a, b))
    assert a[0]["image"].shape == (4, 24, 24, 3) and a[0]["image"].dtype == np.uint8
    # an example's draws depend on (seed, epoch, id) only: same image whatever its batch
    c = _collect(loader.iterate_batches(jpeg_split, 5, seed=1, epoch=0, augment=True,
                                        worker_count=0))
    by_id = {int(i): im for b in a for i, im in zip(b["id"], b["image"]) if i >= 0}
    for b in c:
        for i, im in zip(b["id"], b["image"]):
            if i >= 0:
                np.testing.assert_array_equal(im, by_id[int(i)])


def test_process_shards_are_disjoint_and_cover(jpeg_split):
    n = len(jpeg_split)
    parts = [_collect(loader.iterate_batches(jpeg_split, 4, seed=2, epoch=0, worker_count=0,
                                             process_index=p, process_count=2))
             for p in range(2)]
    ids = [np.concatenate([b["id"][b["mask"] > 0] for b in part]) for part in parts]
    assert not set(ids[0]) & set(ids[1])
    assert sorted(np.concatenate(ids)) == sorted(jpeg_split.ids)
    assert len(parts[0]) == len(parts[1]) == math.ceil(n / 4)
    assert all(b["image"].shape[0] == 2 for part in parts for b in part)
    single = _collect(loader.iterate_batches(jpeg_split, 4, seed=2, epoch=0, worker_count=0))
    for g, (p0, p1) in zip(single, zip(*parts)):  # the hosts' halves form the global batch
        np.testing.assert_array_equal(g["id"], np.concatenate([p0["id"], p1["id"]]))


def test_mid_epoch_resume_from_state_is_exact(cifar_lazy):
    def make():
        return loader.GrainLoader(cifar_lazy, 8, seed=5, augment=True, drop_remainder=True,
                                  worker_count=0, num_epochs=3)
    full = _collect(make())
    assert len(full) == 3 * (37 // 8)
    it = make().iterator()
    head = [next(it) for _ in range(6)]  # epoch 1, batch 2
    state = it.get_state()
    assert (state["epoch"], state["batch"]) == (1, 2)
    it.close()
    import json
    resumed = make().iterator(json.loads(json.dumps(state)))  # what a checkpoint keeps
    _assert_same(head + _collect(resumed), full)
    other = loader.GrainLoader(cifar_lazy, 8, seed=6, worker_count=0)
    with pytest.raises(ValueError, match="seed"):
        other.iterator(state)


def test_worker_processes_give_the_same_batches(jpeg_split):
    kw = dict(seed=3, epoch=0, augment=True)
    _assert_same(_collect(loader.iterate_batches(jpeg_split, 4, worker_count=2, **kw)),
                 _collect(loader.iterate_batches(jpeg_split, 4, worker_count=0, **kw)))


def test_batches_dispatch_keeps_in_memory_path():
    s = _mem_split(20)
    kw = dict(seed=0, epoch=0, shuffle=False)
    _assert_same(_collect(loader.batches(s, 8, augment=True, **kw)),
                 _collect(pipeline.iterate_batches(s, 8, **kw)))
    assert not loader.host_augments(s)


# ---------------------------------------------------------------- recipes
def test_random_resized_box_ranges():
    rng = np.random.default_rng(0)
    for w, h in ((500, 375), (64, 300), (300, 64), (10, 10)):
        for _ in range(200):
            l, t, r, b = transforms.random_resized_box(rng, w, h)
            assert 0 <= l < r <= w and 0 <= t < b <= h
            if (r - l, b - t) != (w, h):
                assert 0.08 * w * h * 0.9 <= (r - l) * (b - t) <= w * h


def test_pad_crop_flip_matches_bruteforce():
    img = np.arange(5 * 6 * 2, dtype=np.uint8).reshape(5, 6, 2)
    out = transforms.pad_crop_flip(np.random.default_rng(7), img, pad=2)
    rng = np.random.default_rng(7)
    dy, dx = rng.integers(0, 5, size=2)
    padded = np.zeros((9, 10, 2), np.uint8)
    padded[2:7, 2:8] = img
    ref = padded[dy:dy + 5, dx:dx + 6]
    if rng.random() < 0.5:
        ref = ref[:, ::-1]
    np.testing.assert_array_equal(out, ref)


def test_imagenet_eval_recipe_close_to_resize_then_center_crop(tmp_path):
    path = str(tmp_path / "x.jpg")
    smooth_jpeg(path, 500, 375, 0)
    raw = open(path, "rb").read()
    got = transforms.Recipe("imagenet", 224)(raw, None, False)
    pil = Image.open(path).convert("RGB")
    pil = pil.resize((341, 256), Image.BILINEAR)  # shorter side 256
    ref = np.asarray(pil)[16:240, 58:282]
    assert got.shape == (224, 224, 3) and got.dtype == np.uint8
    assert np.abs(got.astype(int) - ref.astype(int)).mean() < 3.0
    # JPEG draft (decode at 1/2, 1/4, 1/8 size) against the same crop of the full decode
    decoded = np.asarray(Image.open(path).convert("RGB"))
    for size, train in ((64, False), (64, True), (224, True)):
        recipe = transforms.Recipe("imagenet", size)
        fast = recipe(raw, np.random.default_rng(1), train)
        full = recipe(decoded, np.random.default_rng(1), train)
        assert np.abs(fast.astype(int) - full.astype(int)).mean() < 2.0


def test_grey_and_cmyk_jpegs_become_rgb():
    for mode in ("L", "CMYK"):
        buf = io.BytesIO()
        Image.new(mode, (80, 60), 120 if mode == "L" else (10, 20, 30, 40)).save(buf, "JPEG")
        out = transforms.Recipe("imagenet", 32)(buf.getvalue(), np.random.default_rng(0), True)
        assert out.shape == (32, 32, 3)


# ---------------------------------------------------------------- TFDS
def test_imagenet2012_mock_data_is_a_split_with_labels():
    import tensorflow_datasets as tfds
    with tfds.testing.mock_data(num_examples=12):
        splits, info = data.load_dataset("imagenet2012", image_size=32)
        train = splits["train"]
        src = tfds.data_source("imagenet2012", split="train")
        want = np.array([int(src[i]["label"]) for i in range(12)])
        np.testing.assert_array_equal(train.labels, want)
        assert train.labels.dtype == np.int32 and len(train) == 12
        sub = train.subset(np.arange(0, 12, 2))
        np.testing.assert_array_equal(sub.labels, want[::2])
        batch = next(iter(loader.iterate_batches(sub, 4, augment=True, worker_count=0)))
        assert batch["image"].shape == (4, 32, 32, 3)
        np.testing.assert_array_equal(batch["label"], want[batch["id"]])
        data.validate_split(train, info.num_classes)


def test_tfds_source_reads_labels_from_example_protos(tmp_path):
    """Real TFDS array_record records are tf.train.Example protos: labels come from the
    int64 label field and images stay encoded bytes (no TensorFlow)."""
    import grain
    from array_record.python.array_record_module import ArrayRecordWriter
    from tensorflow_datasets.proto import tf_example_pb2
    path = str(tmp_path / "x.array_record")
    writer = ArrayRecordWriter(path, "group_size:1")
    jpegs = []
    for i in range(5):
        smooth_jpeg(str(tmp_path / "i.jpg"), 40, 30, i)
        jpegs.append(open(tmp_path / "i.jpg", "rb").read())
        ex = tf_example_pb2.Example()
        ex.features.feature["image"].bytes_list.value.append(jpegs[-1])
        ex.features.feature["label"].int64_list.value.append(3 * i)
        writer.write(ex.SerializeToString())
    writer.close()

    class FakeTfds:  # what tfds.data_source returns: `.data_source` over the raw records
        data_source = grain.sources.ArrayRecordDataSource([path])

        def __len__(self):
            return 5

    source = TfdsSource("fake", "train")
    source._cache["src"] = FakeTfds()
    np.testing.assert_array_equal(source.labels(), [0, 3, 6, 9, 12])
    ex = source.example(2)
    assert ex["image"] == jpegs[2] and ex["label"] == 6
    split = LazySplit(source, np.arange(5), source.labels(), transforms.Recipe("imagenet", 16),
                      (16, 16, 3))
    assert split.take(np.array([1, 4]))[0].shape == (2, 16, 16, 3)


def test_tfds_hint_names_the_prepare_extra(tmp_path):
    with pytest.raises(RuntimeError, match=r"(?s)pip install -e '\.\[prepare\]'.*launch\.prepare"):
        data.load_dataset("cifar100", data_dir=str(tmp_path))


def test_experiment_load_splits_on_a_prepared_jpeg_folder(jpeg_split, tmp_path):
    """The runners' loader (train / validation / test, max_*_examples) on lazy splits."""
    from kdjax.config import base_config
    from kdjax.experiment import load_splits
    folder = os.path.dirname(jpeg_split.source.paths[0])
    cfg = base_config().data    # the schema's data section, a few fields set
    cfg.update({"name": f"records:{folder}", "data_dir": "", "num_validation": 3,
                "max_train_examples": 12, "max_test_examples": 4})
    out, info = load_splits(cfg)
    assert info.image_shape == (24, 24, 3) and info.num_classes == 3
    assert [len(out[k]) for k in ("train", "validation", "test")] == [9, 3, 4]
    assert all(isinstance(s, LazySplit) for s in out.values())
    assert sorted(np.bincount(out["validation"].labels, minlength=3)) == [1, 1, 1]
    assert not set(out["train"].ids) & set(out["validation"].ids)
    np.testing.assert_array_equal(out["train"].labels, jpeg_split.labels[out["train"].ids])
