"""TF-free preparation: tiny files in each official format -> array_record shards -> splits."""
import hashlib
import io
import json
import os
import pickle
import tarfile

import numpy as np
import pytest
import scipy.io
from PIL import Image

from kdjax import data
from kdjax.data import prepare
from kdjax.data.lazy import LazySplit
from kdjax.data.prepare import download, readers


def write_cifar100_tarball(path, n_train=30, n_test=12, seed=0):
    """The official layout: cifar-100-python/{train,test,meta}, pickled dicts (bytes keys)."""
    rng = np.random.default_rng(seed)
    content = {}
    with tarfile.open(path, "w:gz") as tar:
        def add(name, obj):
            blob = pickle.dumps(obj)
            info = tarfile.TarInfo(f"cifar-100-python/{name}")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
        for split, n in (("train", n_train), ("test", n_test)):
            rows = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
            fine = [int(v) for v in rng.integers(0, 100, n)]
            add(split, {b"data": rows, b"fine_labels": fine, b"coarse_labels": [0] * n,
                        b"filenames": [b"f.png"] * n, b"batch_label": b"x"})
            content[split] = (rows.reshape(n, 3, 32, 32).transpose(0, 2, 3, 1), np.array(fine))
        add("meta", {b"fine_label_names": [f"class{i}".encode() for i in range(100)],
                     b"coarse_label_names": [b"c"] * 20})
    return content


def smooth_jpeg(path, w, h, seed, quality=92):
    """A smooth colour gradient JPEG (resampling differences stay small on it)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = rng.uniform(0, 1, 3)
    img = np.stack([128 + 100 * np.sin(xx / w * 3 + base[c] * 6) * np.cos(yy / h * 2)
                    for c in range(3)], -1).astype(np.uint8)
    Image.fromarray(img).save(path, quality=quality)


def write_class_folders(root, classes=("ant", "bee", "cow"), per_class=3, splits=("train", "val")):
    for split in splits:
        for c, name in enumerate(classes):
            os.makedirs(os.path.join(root, split, name), exist_ok=True)
            for i in range(per_class):
                smooth_jpeg(os.path.join(root, split, name, f"{i}.JPEG"), 60 + 13 * i,
                            45 + 7 * c, seed=100 * c + i)


def test_cifar100_tarball_roundtrip_parallel(tmp_path):
    tarball = str(tmp_path / "cifar-100-python.tar.gz")
    content = write_cifar100_tarball(tarball)
    out = str(tmp_path / "cifar100")
    meta = prepare.prepare("cifar100", tarball, out, num_workers=2, examples_per_shard=8,
                           check_md5=False)
    assert meta["num_classes"] == 100 and meta["image_shape"] == [32, 32, 3]
    assert meta["splits"]["train"]["num_examples"] == 30
    assert len(meta["splits"]["train"]["shards"]) == 4  # 30 records, 8 per shard
    with open(os.path.join(out, "kdjax_dataset.json")) as f:
        assert json.load(f)["class_names"][7] == "class7"
    splits, info = data.load_dataset(f"records:{out}")
    assert info.num_classes == 100 and info.image_shape == (32, 32, 3)
    for split in ("train", "test"):
        images, labels = content[split]
        np.testing.assert_array_equal(splits[split].images, images)
        np.testing.assert_array_equal(splits[split].labels, labels)
        assert splits[split].labels.dtype == np.int32
    np.testing.assert_allclose(info.mean, content["train"][0].reshape(-1, 3).mean(0) / 255,
                               rtol=1e-5)
    lazy, _ = data.load_dataset(f"records:{out}", lazy=True)
    assert isinstance(lazy["train"], LazySplit)
    np.testing.assert_array_equal(lazy["train"].labels, content["train"][1])
    np.testing.assert_array_equal(lazy["train"].take(np.array([5, 2]))[0],
                                  content["train"][0][[5, 2]])
    # the registry finds it by name too, under data_dir (or $KDJAX_DATA_DIR)
    by_name, _ = data.load_dataset("cifar100", data_dir=str(tmp_path))
    np.testing.assert_array_equal(by_name["test"].images, content["test"][0])


def test_svhn_mat_roundtrip_label_ten_is_zero(tmp_path):
    rng = np.random.default_rng(1)
    want = {}
    for split, n in (("train", 9), ("test", 5)):
        x = rng.integers(0, 256, (32, 32, 3, n), dtype=np.uint8)
        y = rng.integers(1, 11, (n, 1)).astype(np.uint8)
        y[0] = 10
        scipy.io.savemat(str(tmp_path / f"{split}_32x32.mat"), {"X": x, "y": y})
        want[split] = (x.transpose(3, 0, 1, 2), y.reshape(-1) % 10)
    out = str(tmp_path / "out")
    prepare.prepare("svhn", str(tmp_path), out, num_workers=1, check_md5=False)
    splits, info = data.load_dataset(f"records:{out}")
    assert info.name == "svhn_cropped" and info.num_classes == 10
    for split, (images, labels) in want.items():
        np.testing.assert_array_equal(splits[split].images, images)
        np.testing.assert_array_equal(splits[split].labels, labels)
    assert splits["train"].labels[0] == 0


def test_jpeg_folder_records_hold_the_files_and_decode_like_pil(tmp_path):
    src = str(tmp_path / "imgs")
    write_class_folders(src)
    out = str(tmp_path / "out")
    prepare.prepare("folder", src, out, num_workers=1, examples_per_shard=4, image_size=32)
    splits, info = data.load_dataset(f"records:{out}")
    assert info.num_classes == 3 and info.image_shape == (32, 32, 3)
    train = splits["train"]
    assert isinstance(train, LazySplit) and len(train) == 9
    np.testing.assert_array_equal(train.labels, np.repeat([0, 1, 2], 3))
    files = sorted(os.path.join(src, "train", c, f) for c in ("ant", "bee", "cow")
                   for f in sorted(os.listdir(os.path.join(src, "train", c))))
    for i in (0, 4, 8):
        stored = train.read(i)["image"]
        with open(files[i], "rb") as f:
            assert stored == f.read()  # the encoded bytes, untouched
        np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(stored))),
                                      np.asarray(Image.open(files[i])))
    assert train.take(np.array([0, 1]))[0].shape == (2, 32, 32, 3)


def test_corrupt_files_are_errors_naming_the_file(tmp_path):
    tarball = tmp_path / "cifar-100-python.tar.gz"
    write_cifar100_tarball(str(tarball))
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(tarball.read_bytes()[:2000])
    with pytest.raises(ValueError, match="cut.tar.gz"):
        readers.read_cifar(str(cut), 100)
    mat = tmp_path / "train_32x32.mat"
    scipy.io.savemat(str(mat), {"X": np.zeros((32, 32, 3, 40), np.uint8),
                                "y": np.ones((40, 1), np.uint8)})
    (tmp_path / "bad.mat").write_bytes(mat.read_bytes()[:300])
    with pytest.raises(ValueError, match="bad.mat"):
        readers.read_svhn_mat(str(tmp_path / "bad.mat"))
    src = tmp_path / "imgs"
    write_class_folders(str(src), per_class=1, splits=("train", "test"))
    victim = src / "train" / "bee" / "0.JPEG"
    victim.write_bytes(victim.read_bytes()[:200])
    with pytest.raises(ValueError, match="bee/0.JPEG"):
        prepare.prepare("folder", str(src), str(tmp_path / "o"), num_workers=1)


def test_md5_checked_for_local_and_downloaded_files(tmp_path, monkeypatch):
    payload = b"not really cifar"
    path = tmp_path / "cifar-10-python.tar.gz"
    path.write_bytes(payload)
    with pytest.raises(ValueError, match=r"cifar-10-python.tar.gz: md5 .* published"):
        download.fetch("cifar10", str(tmp_path), str(tmp_path / "cache"))
    good = hashlib.md5(payload).hexdigest()
    monkeypatch.setitem(download.FILES, "cifar10", download.RemoteFile(
        "cifar-10-python.tar.gz", path.as_uri(), good))
    got = download.fetch("cifar10", None, str(tmp_path / "cache"))  # the download code path
    assert open(got, "rb").read() == payload and got.startswith(str(tmp_path / "cache"))
    monkeypatch.setitem(download.FILES, "cifar10", download.RemoteFile(
        "cifar-10-python.tar.gz", path.as_uri(), "0" * 32))
    with pytest.raises(ValueError, match="md5"):
        download.fetch("cifar10", None, str(tmp_path / "cache2"))
    assert not os.path.exists(tmp_path / "cache2" / "cifar-10-python.tar.gz")


def test_dataset_specific_folder_layouts(tmp_path):
    # Tiny-ImageNet: wnids.txt, train/<wnid>/images, val/images + val_annotations.txt
    tiny = tmp_path / "tiny-imagenet-200"
    wnids = ["n02", "n01"]
    (tiny / "val" / "images").mkdir(parents=True)
    (tiny / "wnids.txt").write_text("\n".join(wnids) + "\n")
    lines = []
    for k, w in enumerate(wnids):
        (tiny / "train" / w / "images").mkdir(parents=True)
        smooth_jpeg(str(tiny / "train" / w / "images" / f"{w}_0.JPEG"), 64, 64, k)
        smooth_jpeg(str(tiny / "val" / "images" / f"val_{k}.JPEG"), 64, 64, 10 + k)
        lines.append(f"val_{k}.JPEG\t{w}\t0\t0\t10\t10")
    (tiny / "val" / "val_annotations.txt").write_text("\n".join(lines) + "\n")
    found = readers.read_tiny_imagenet(str(tiny))
    assert found.class_names == ["n01", "n02"] and found.image_shape == (64, 64, 3)
    np.testing.assert_array_equal(found.splits["train"].labels, [0, 1])
    np.testing.assert_array_equal(found.splits["test"].labels, [1, 0])  # val_0 is n02
    # FGVC-Aircraft 2013b: data/variants.txt, images_variant_{trainval,test}.txt
    air = tmp_path / "fgvc-aircraft-2013b" / "data"
    (air / "images").mkdir(parents=True)
    (air / "variants.txt").write_text("707-320\nA300B4\n")
    for i, image_id in enumerate(("0034309", "1025794", "0056978")):
        smooth_jpeg(str(air / "images" / f"{image_id}.jpg"), 50, 40, i)
    (air / "images_variant_trainval.txt").write_text("0034309 A300B4\n1025794 707-320\n")
    (air / "images_variant_test.txt").write_text("0056978 A300B4\n")
    found = readers.read_fgvc_aircraft(str(air.parent))
    np.testing.assert_array_equal(found.splits["train"].labels, [1, 0])
    np.testing.assert_array_equal(found.splits["test"].labels, [1])
    # Stanford Dogs: Images/<wnid>-<breed>/, {train,test}_list.mat with 1-based labels
    dogs = tmp_path / "dogs"
    breeds = ["n02085620-Chihuahua", "n02085782-Japanese_spaniel"]
    rel = {"train": [], "test": []}
    for b, breed in enumerate(breeds):
        (dogs / "Images" / breed).mkdir(parents=True)
        for split, i in (("train", 0), ("train", 1), ("test", 2)):
            smooth_jpeg(str(dogs / "Images" / breed / f"{breed[:9]}_{i}.jpg"), 40, 30, i)
            rel[split].append((f"{breed}/{breed[:9]}_{i}.jpg", b + 1))
    for split, items in rel.items():
        file_list = np.empty((len(items), 1), object)
        for j, (r, _) in enumerate(items):
            file_list[j, 0] = np.array([r])
        scipy.io.savemat(str(dogs / f"{split}_list.mat"), {
            "file_list": file_list, "labels": np.array([[lab] for _, lab in items])})
    found = readers.read_stanford_dogs(str(dogs))
    np.testing.assert_array_equal(found.splits["train"].labels, [0, 0, 1, 1])
    np.testing.assert_array_equal(found.splits["test"].labels, [0, 1])
    # ImageNet, Kaggle layout: ILSVRC/Data/CLS-LOC/{train/<wnid>/, val/} + LOC_val_solution.csv
    inet = tmp_path / "kaggle" / "ILSVRC" / "Data" / "CLS-LOC"
    write_class_folders(str(inet), classes=("n015", "n014"), per_class=1, splits=("train",))
    (inet / "val").mkdir()
    for k in range(2):
        smooth_jpeg(str(inet / "val" / f"ILSVRC2012_val_0000000{k + 1}.JPEG"), 50, 40, k)
    (tmp_path / "kaggle" / "LOC_val_solution.csv").write_text(
        "ImageId,PredictionString\nILSVRC2012_val_00000002,n014 1 2 3 4\n"
        "ILSVRC2012_val_00000001,n015 1 2 3 4 n015 5 6 7 8\n")
    found = readers.read_imagenet(str(inet))
    assert found.class_names == ["n014", "n015"]
    np.testing.assert_array_equal(found.splits["test"].labels, [1, 0])


def test_prepare_only_names_say_how_to_prepare(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"launch.prepare --dataset=tiny_imagenet"):
        data.load_dataset("tiny_imagenet", data_dir=str(tmp_path))


def test_prepare_command_line(tmp_path):
    import subprocess
    import sys
    tarball = str(tmp_path / "cifar-100-python.tar.gz")
    content = write_cifar100_tarball(tarball, n_train=6, n_test=3)
    out = str(tmp_path / "cifar100")
    proc = subprocess.run([sys.executable, "-m", "launch.prepare", "--dataset=cifar100",
                           f"--source={tmp_path}", f"--out={out}", "--check_md5=false",
                           "--workers=1"], capture_output=True, text=True,
                          cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1])["counts"] == {"train": 6, "test": 3}
    splits, _ = data.load_dataset("cifar100", data_dir=str(tmp_path))
    np.testing.assert_array_equal(splits["train"].images, content["train"][0])
