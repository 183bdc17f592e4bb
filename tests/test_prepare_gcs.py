"""launch.prepare output on a bucket (the local GCS emulator of tests/test_storage.py):
shards, sidecars and metadata go up through kdjax.storage; loading copies the shards to the
local records cache (array_record reads local files only)."""
import os

import numpy as np
import pytest

from tests.test_prepare import write_cifar100_tarball
from tests.test_storage import BUCKET, _no_local_gs_folder, gcs  # noqa: F401  (fixtures)

from kdjax import data, storage  # noqa: E402
from kdjax.data import prepare  # noqa: E402


def test_prepare_to_a_bucket_and_load_from_it(gcs, tmp_path, monkeypatch):  # noqa: F811
    tarball = str(tmp_path / "cifar-100-python.tar.gz")
    content = write_cifar100_tarball(tarball, n_train=10, n_test=4)
    out = f"{BUCKET}/prepared/cifar100"
    meta = prepare.prepare("cifar100", tarball, out, num_workers=1, examples_per_shard=6,
                           check_md5=False)
    assert storage.exists(f"{out}/kdjax_dataset.json")
    root = meta["root"]  # the committed upload: v-<fingerprint prefix>
    assert root == "v-" + meta["fingerprint"].split(":")[1][:16]
    assert storage.exists(f"{out}/{root}/train.array_record-00001-of-00002")
    monkeypatch.setenv("KDJAX_RECORDS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("KDJAX_VERIFIED_CACHE", str(tmp_path / "verified"))
    splits, info = data.load_dataset("cifar100", data_dir=f"{BUCKET}/prepared")
    np.testing.assert_array_equal(splits["train"].images, content["train"][0])
    np.testing.assert_array_equal(splits["test"].labels, content["test"][1])
    assert os.path.exists(tmp_path / "cache" / "bucket" / "prepared" / "cifar100" / root /
                          "test.array_record-00000-of-00001")


def test_a_failed_reprepare_on_a_bucket_leaves_the_committed_one(gcs, tmp_path,  # noqa: F811
                                                                   monkeypatch):
    """kdjax_dataset.json is the commit, uploaded last: an upload that dies half way is never
    read, and the next prepare's commit deletes it and the previous upload."""
    monkeypatch.setenv("KDJAX_RECORDS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("KDJAX_VERIFIED_CACHE", str(tmp_path / "verified"))
    out = f"{BUCKET}/prepared/again"
    old_tar, new_tar = str(tmp_path / "old.tar.gz"), str(tmp_path / "new.tar.gz")
    old = write_cifar100_tarball(old_tar, n_train=10, n_test=4, seed=0)
    new = write_cifar100_tarball(new_tar, n_train=8, n_test=3, seed=1)
    first = prepare.prepare("cifar100", old_tar, out, num_workers=1, check_md5=False)
    copy, uploads = storage.copy, []

    def dies_after_one_upload(src, dst):
        if uploads:
            raise KeyboardInterrupt("killed")
        uploads.append(dst)
        copy(src, dst)
    monkeypatch.setattr(storage, "copy", dies_after_one_upload)
    with pytest.raises(KeyboardInterrupt):
        prepare.prepare("cifar100", new_tar, out, num_workers=1, check_md5=False)
    monkeypatch.setattr(storage, "copy", copy)
    assert storage.exists(uploads[0]) and f"/{first['root']}/" not in uploads[0]
    splits, _ = data.load_dataset(f"records:{out}")
    np.testing.assert_array_equal(splits["train"].images, old["train"][0])
    second = prepare.prepare("cifar100", new_tar, out, num_workers=1, check_md5=False)
    splits, _ = data.load_dataset(f"records:{out}")
    np.testing.assert_array_equal(splits["train"].images, new["train"][0])
    np.testing.assert_array_equal(splits["test"].labels, new["test"][1])
    assert {p.rsplit("/", 2)[1] for p in storage.glob(out, "v-*/*")} == {second["root"]}
