"""launch.prepare output on a bucket (the local GCS emulator of tests/test_storage.py):
shards, sidecars and metadata go up through kdjax.storage; loading copies the shards to the
local records cache (array_record reads local files only)."""
import os

import numpy as np

from tests.test_prepare import write_cifar100_tarball
from tests.test_storage import BUCKET, _no_local_gs_folder, gcs  # noqa: F401  (fixtures)

from kdjax import data, storage  # noqa: E402
from kdjax.data import prepare  # noqa: E402


def test_prepare_to_a_bucket_and_load_from_it(gcs, tmp_path, monkeypatch):  # noqa: F811
    tarball = str(tmp_path / "cifar-100-python.tar.gz")
    content = write_cifar100_tarball(tarball, n_train=10, n_test=4)
    out = f"{BUCKET}/prepared/cifar100"
    prepare.prepare("cifar100", tarball, out, num_workers=1, examples_per_shard=6,
                    check_md5=False)
    assert storage.exists(f"{out}/kdjax_dataset.json")
    assert storage.exists(f"{out}/train.array_record-00001-of-00002")
    monkeypatch.setenv("KDJAX_RECORDS_CACHE", str(tmp_path / "cache"))
    splits, info = data.load_dataset("cifar100", data_dir=f"{BUCKET}/prepared")
    np.testing.assert_array_equal(splits["train"].images, content["train"][0])
    np.testing.assert_array_equal(splits["test"].labels, content["test"][1])
    assert os.path.exists(tmp_path / "cache" / "bucket" / "prepared" / "cifar100" /
                          "test.array_record-00000-of-00001")
