"""Prepared folders: written aside and swapped in whole, fingerprint and labels checked when
loaded, one line for every expected `launch.prepare` failure."""
import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import scipy.io

from kdjax import data
from kdjax.data import integrity, prepare
from kdjax.data.integrity import PreparedFolderError
from kdjax.data.prepare import swap
from tests.test_prepare import write_cifar100_tarball, write_class_folders

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(autouse=True)
def _own_verified_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KDJAX_VERIFIED_CACHE", str(tmp_path / "verified"))
    monkeypatch.delenv("KDJAX_VERIFY_RECORDS", raising=False)


def _prepared(tmp_path, name="a", seed=0, n_train=30, examples_per_shard=8):
    tarball = str(tmp_path / f"{name}.tar.gz")
    content = write_cifar100_tarball(tarball, n_train=n_train, n_test=12, seed=seed)
    out = str(tmp_path / "cifar100")
    prepare.prepare("cifar100", tarball, out, num_workers=1,
                    examples_per_shard=examples_per_shard, check_md5=False)
    return out, content, tarball


def _loads_as(out, content):
    splits, info = data.load_dataset(f"records:{out}")
    for split in ("train", "test"):
        np.testing.assert_array_equal(splits[split].images, content[split][0])
        np.testing.assert_array_equal(splits[split].labels, content[split][1])
    return info


def _edit_meta(out, **fields):
    path = os.path.join(out, "kdjax_dataset.json")
    with open(path) as f:
        meta = json.load(f)
    meta.update(fields)
    with open(path, "w") as f:
        json.dump(meta, f)


def test_fingerprint_identifies_the_content(tmp_path):
    out, content, tarball = _prepared(tmp_path)
    with open(os.path.join(out, "kdjax_dataset.json")) as f:
        meta = json.load(f)
    assert meta["format_version"] == 2 and meta["fingerprint"] == integrity.fingerprint(meta)
    shard = meta["splits"]["train"]["shards"][0]
    path = os.path.join(out, shard["file"])
    assert shard["bytes"] == os.path.getsize(path)
    assert shard["sha256"] == integrity.file_sha256(path)
    counts = np.bincount(content["train"][1], minlength=100).tolist()
    assert meta["splits"]["train"]["labels"]["counts"] == counts
    # the same files again (a re-prepare over the folder) -> the same fingerprint
    again = prepare.prepare("cifar100", tarball, out, num_workers=1, examples_per_shard=8,
                            check_md5=False)
    assert again["fingerprint"] == meta["fingerprint"]
    assert sorted(os.listdir(tmp_path)) == ["a.tar.gz", "cifar100"]  # no leftovers
    _loads_as(out, content)


def test_killed_reprepare_leaves_the_old_folder_whole(tmp_path):
    """SIGKILL after the new run's first shard (a deterministic point: the driver blocks
    there); the old folder is untouched, loads, and the next prepare replaces it whole."""
    out, old, _ = _prepared(tmp_path)
    before = {n: open(os.path.join(out, n), "rb").read() for n in os.listdir(out)}
    new_tar = str(tmp_path / "b.tar.gz")
    new = write_cifar100_tarball(new_tar, n_train=20, n_test=5, seed=1)
    ready = tmp_path / "first_shard_written"
    driver = (
        "import sys, time\n"
        "from kdjax.data.prepare import writer\n"
        "write = writer._write_shard\n"
        "def first_then_block(*job):\n"
        "    entry = write(*job)\n"
        f"    open({str(ready)!r}, 'w').close()\n"
        "    time.sleep(600)\n"
        "writer._write_shard = first_then_block\n"
        "from kdjax.data import prepare\n"
        f"prepare.prepare('cifar100', {new_tar!r}, {out!r}, num_workers=1, "
        "examples_per_shard=4, check_md5=False)\n")
    proc = subprocess.Popen([sys.executable, "-c", driver], cwd=ROOT)
    try:
        deadline = time.time() + 120
        while not ready.exists():
            assert proc.poll() is None and time.time() < deadline, "driver never got there"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert {n: open(os.path.join(out, n), "rb").read() for n in os.listdir(out)} == before
    leftovers = [n for n in os.listdir(tmp_path) if n.startswith(".cifar100.prepare-")]
    assert len(leftovers) == 1  # the killed run's aside folder, with its first shard
    _loads_as(out, old)
    prepare.prepare("cifar100", new_tar, out, num_workers=1, examples_per_shard=4,
                    check_md5=False)
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".cifar100.")]
    _loads_as(out, new)
    assert not any(n.startswith("train.array_record-") and n.endswith("-of-00004")
                   for n in os.listdir(out))  # no shard of the old run is left


def test_fallback_swap_killed_between_its_renames_is_undone(tmp_path, monkeypatch):
    """Where the filesystem cannot exchange two folders, a kill between the two renames
    leaves the old folder at .<name>.old-<host>-<pid>; the next prepare puts it back."""
    out, old, tarball = _prepared(tmp_path)
    os.rename(out, str(tmp_path / ".cifar100.old-") + swap.socket.gethostname() + "-999999999")
    swap.recover(out)
    _loads_as(out, old)
    monkeypatch.setattr(swap, "_exchange", lambda a, b: False)
    new_tar = str(tmp_path / "b.tar.gz")
    new = write_cifar100_tarball(new_tar, n_train=20, n_test=5, seed=1)
    prepare.prepare("cifar100", new_tar, out, num_workers=1, check_md5=False)
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".cifar100.")]
    _loads_as(out, new)


def test_tampered_shards_and_labels_are_refused(tmp_path, monkeypatch):
    out, content, _ = _prepared(tmp_path, n_train=120, examples_per_shard=60)
    _loads_as(out, content)  # verified once: the full hashes are cached
    assert len(os.listdir(tmp_path / "verified")) == 3
    shard = os.path.join(out, "train.array_record-00001-of-00002")
    good = open(shard, "rb").read()
    assert len(good) > 2 * integrity.EDGE
    flipped = bytearray(good)
    flipped[len(good) // 2] ^= 0xFF  # same size, same edges: the full hash notices
    open(shard, "wb").write(bytes(flipped))
    with pytest.raises(PreparedFolderError, match=r"train.array_record-00001-of-00002: sha256"):
        data.load_dataset(f"records:{out}")
    monkeypatch.setenv("KDJAX_VERIFY_RECORDS", "quick")  # sizes and edges only
    open(shard, "wb").write(good[:-100])
    with pytest.raises(PreparedFolderError, match=r"00001-of-00002: \d+ bytes, kdjax_dataset"):
        data.load_dataset(f"records:{out}")
    open(shard, "wb").write(good)
    labels = os.path.join(out, "labels-train.npy")
    y = np.load(labels)
    np.save(labels, y[::-1].copy())  # same classes, other order: a mixed-up sidecar
    with pytest.raises(PreparedFolderError, match=r"labels-train.npy: sha256 differs"):
        data.load_dataset(f"records:{out}")


def test_a_shard_of_another_prepare_is_refused(tmp_path):
    out, _, _ = _prepared(tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    o_out, _, _ = _prepared(other, seed=5)
    name = "test.array_record-00000-of-00002"
    os.replace(os.path.join(o_out, name), os.path.join(out, name))
    with pytest.raises(PreparedFolderError, match=f"{name}: content differs"):
        data.load_dataset(f"records:{out}")


def test_num_classes_must_match_the_labels(tmp_path):
    out, _, _ = _prepared(tmp_path)
    with open(os.path.join(out, "kdjax_dataset.json")) as f:
        meta = json.load(f)
    names = meta["class_names"]
    _edit_meta(out, num_classes=120)
    with pytest.raises(PreparedFolderError, match=r"num_classes=120 but class_names lists 100"):
        data.load_dataset(f"records:{out}")
    _edit_meta(out, num_classes=120, class_names=names + [f"x{i}" for i in range(20)])
    with pytest.raises(PreparedFolderError, match=r"num_classes=120 is larger than the 100 "
                                                  "classes the train labels"):
        data.load_dataset(f"records:{out}")
    _edit_meta(out, num_classes=50, class_names=names[:50])
    with pytest.raises(PreparedFolderError, match=r"num_classes=50 is smaller than the 100"):
        data.load_dataset(f"records:{out}")
    _edit_meta(out, num_classes=100, class_names=names, recipe="imagenet")
    with pytest.raises(PreparedFolderError, match=r"kdjax_dataset.json: the content fingerprint"):
        data.load_dataset(f"records:{out}")


def test_format_1_folders_still_load_with_the_cheap_checks(tmp_path, caplog):
    out, content, _ = _prepared(tmp_path)
    with open(os.path.join(out, "kdjax_dataset.json")) as f:
        meta = json.load(f)
    meta["format_version"] = 1  # what the writer wrote before fingerprints
    del meta["fingerprint"]
    for info in meta["splits"].values():
        info["shards"] = [s["file"] for s in info["shards"]]
        info["labels"] = info["labels"]["file"]
    with open(os.path.join(out, "kdjax_dataset.json"), "w") as f:
        json.dump(meta, f)
    _loads_as(out, content)
    assert "prepare it again" in caplog.text
    np.save(os.path.join(out, "labels-test.npy"), np.full(12, 100, np.int32))
    with pytest.raises(PreparedFolderError, match=r"labels-test.npy: labels in \[100, 100\] "
                                                  "but num_classes=100"):
        data.load_dataset(f"records:{out}")


def test_a_folder_with_other_files_is_not_replaced(tmp_path):
    out = tmp_path / "cifar100"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(prepare.readers.SourceError, match=r"holds 'notes.txt'"):
        _prepared(tmp_path)
    assert (out / "notes.txt").read_text() == "mine" and os.listdir(out) == ["notes.txt"]


# ------------------------------------------------------------------ launch.prepare errors
def _cli(*args):
    proc = subprocess.run([sys.executable, "-m", "launch.prepare", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    return proc.returncode, proc.stderr.strip().splitlines()


def test_expected_failures_are_one_line(tmp_path):
    """md5 mismatch, truncated JPEG, missing source, wrong layout: one `error:` line each."""
    cases = []
    tar = tmp_path / "cifar-100-python.tar.gz"
    write_cifar100_tarball(str(tar), n_train=4, n_test=2)
    cases.append((["--dataset=cifar100", f"--source={tar}"],
                  f"error: {tar}: md5 .* --nocheck_md5 skips the check\\)"))
    src = tmp_path / "imgs"
    write_class_folders(str(src), per_class=1, splits=("train", "test"))
    victim = src / "train" / "bee" / "0.JPEG"
    victim.write_bytes(victim.read_bytes()[:200])
    cases.append((["--dataset=folder", f"--source={src}", "--workers=2",
                   "--examples_per_shard=1"],
                  f"error: {victim}: not a decodable image .*"))
    cases.append((["--dataset=folder", f"--source={tmp_path / 'nowhere'}"],
                  "error: folder: --source must be the extracted dataset folder .*"))
    mat = tmp_path / "svhn"
    mat.mkdir()
    for split in ("train", "test"):  # a wrong layout: X is (N, 32, 32, 3), not (32, 32, 3, N)
        scipy.io.savemat(str(mat / f"{split}_32x32.mat"),
                         {"X": np.zeros((4, 32, 32, 3), np.uint8), "y": np.ones((4, 1))})
    cases.append((["--dataset=svhn", f"--source={mat}", "--nocheck_md5"],
                  f"error: {mat}/train_32x32.mat: expected X \\(32, 32, 3, N\\) .*"))
    for i, (args, line) in enumerate(cases):
        out = tmp_path / f"out{i}"
        code, err = _cli(*args, f"--out={out}")
        assert code == 1 and len(err) == 1 and not any("Traceback" in e for e in err), err
        assert re.fullmatch(line, err[0]), (err[0], line)
        assert not os.path.exists(out) or os.listdir(out) in ([], ["downloads"])


def test_an_unexpected_error_keeps_its_traceback(tmp_path):
    driver = ("import sys\nfrom absl import app\nimport launch.prepare as lp\n"
              "from kdjax.data.prepare import readers\n"
              "def bug(*a):\n    raise ZeroDivisionError('a bug')\n"
              "readers.read_cifar = bug\n"
              "sys.argv = ['prepare', '--dataset=cifar100', '--nocheck_md5', "
              f"'--source={tmp_path}', '--out={tmp_path / 'o'}']\napp.run(lp.main)\n")
    (tmp_path / "cifar-100-python.tar.gz").write_bytes(b"x")
    proc = subprocess.run([sys.executable, "-c", driver], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 1 and "Traceback" in proc.stderr
    assert "ZeroDivisionError: a bug" in proc.stderr


def test_a_symlinked_out_replaces_its_target(tmp_path):
    target = tmp_path / "disk" / "cifar100"
    target.parent.mkdir()
    link = tmp_path / "cifar100"
    os.symlink(target, link)
    tar = str(tmp_path / "a.tar.gz")
    content = write_cifar100_tarball(tar, n_train=10, n_test=3)
    for _ in range(2):  # fresh, then over the first
        prepare.prepare("cifar100", tar, str(link), num_workers=1, check_md5=False)
        assert os.path.islink(link) and os.path.isfile(target / "kdjax_dataset.json")
        assert sorted(os.listdir(target.parent)) == ["cifar100"]
    _loads_as(str(link), content)


def test_the_default_download_cache_in_out_survives_the_swap(tmp_path, monkeypatch):
    """Without --source, CIFAR is downloaded into OUT/downloads; replacing OUT keeps it."""
    import hashlib

    from kdjax.data.prepare import download
    tar = tmp_path / "served.tar.gz"
    content = write_cifar100_tarball(str(tar), n_train=10, n_test=3)
    monkeypatch.setitem(download.FILES, "cifar100", download.RemoteFile(
        "cifar-100-python.tar.gz", tar.as_uri(), hashlib.md5(tar.read_bytes()).hexdigest()))
    out = tmp_path / "cifar100"
    for _ in range(2):  # fresh (the download creates OUT), then over the first
        prepare.prepare("cifar100", None, str(out), num_workers=1)
        assert (out / "downloads" / "cifar-100-python.tar.gz").read_bytes() == tar.read_bytes()
        assert sorted(os.listdir(tmp_path)) == ["cifar100", "served.tar.gz"]
    _loads_as(str(out), content)
