"""Shared stages (`kdjax.stages`): one claimant trains, the others wait and read back; a dead
claimant's claim is taken over; a folder made by another config is refused."""
import json
import os
import socket
import subprocess
import sys
import threading
import time
from http import HTTPStatus

import pytest

from kdjax import experiment, stages, storage
from tests.configs import tiny


def _view(**dotted):
    return experiment.teacher_view(tiny.override(tiny.get_config("kd"), **dotted))


def _finish(folder):
    storage.write_json(os.path.join(folder, stages.RESULTS), {"done": True})


def test_create_exclusive_has_one_winner(tmp_path):
    path, wins = str(tmp_path / "c" / "0.json"), []
    barrier = threading.Barrier(8)

    def racer(i):
        barrier.wait()
        wins.append(stages.create_exclusive(path, str(i).encode()))

    threads = [threading.Thread(target=racer, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(wins) == [False] * 7 + [True]


def test_one_trains_the_other_waits_then_reads_back(tmp_path):
    folder, order = str(tmp_path / "teacher"), []

    def worker(name):
        with stages.claim(folder, "teacher", _view(), poll_secs=0.05) as train:
            order.append((name, train))
            if train:
                time.sleep(0.5)
                _finish(folder)

    a = threading.Thread(target=worker, args=("a",))
    a.start()
    time.sleep(0.2)
    b = threading.Thread(target=worker, args=("b",))
    b.start()
    a.join()
    b.join()
    assert order == [("a", True), ("b", False)]
    assert stages.read_recorded(folder)["key"] == stages.key_of(_view())
    assert not os.listdir(os.path.join(folder, stages.CLAIMS))   # released


def test_dead_claimant_is_taken_over(tmp_path):
    folder = str(tmp_path / "teacher")
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    storage.write_json(os.path.join(folder, stages.CLAIMS, "0.json"),
                       {"host": socket.gethostname(), "pid": gone.pid, "time": time.time()})
    with stages.claim(folder, "teacher", _view(), poll_secs=0.05) as train:
        assert train
        assert os.path.exists(os.path.join(folder, stages.CLAIMS, "1.json"))


def test_claim_of_another_host_stale_or_alive(tmp_path, monkeypatch):
    folder = str(tmp_path / "teacher")
    claim = os.path.join(folder, stages.CLAIMS, "0.json")
    storage.write_json(claim, {"host": "elsewhere", "pid": 1, "time": time.time()})
    assert stages.try_claim(folder) is None            # heartbeat fresh: alive
    storage.write_json(claim, {"host": "elsewhere", "pid": 1,
                               "time": time.time() - stages.STALE_SECS - 1})
    held = stages.try_claim(folder)                    # silent too long: taken over
    assert held is not None and held.path.endswith("1.json")
    assert stages.try_claim(folder) is None            # now ours, alive
    held.release()


def test_folder_of_another_config_is_refused(tmp_path):
    folder = str(tmp_path / "teacher")
    with stages.claim(folder, "teacher", _view()) as train:
        assert train
        _finish(folder)
    with stages.claim(folder, "teacher", _view()) as train:
        assert not train
    with pytest.raises(ValueError, match=r"teacher trained with another config "
                       r"\(teacher\.epochs, train\.epochs differ\)"):
        with stages.claim(folder, "teacher", _view(**{"teacher.epochs": 7})):
            pass


def test_differences_names_nested_fields():
    assert stages.differences({"a": {"b": 1, "c": [1, 2]}, "d": 0},
                              {"a": {"b": 1, "c": [1, 3]}, "e": 0}) == ["a.c", "d", "e"]
    assert stages.differences({"x": (1, 2)}, {"x": [1, 2]}) == []


@pytest.fixture
def preconditions(gcs, monkeypatch):
    """The emulator's object upload, honouring `ifGenerationMatch=0` as GCS does (412 when the
    object exists; the emulator itself ignores the precondition)."""
    from gcp_storage_emulator import server
    from gcp_storage_emulator.exceptions import NotFound
    from gcp_storage_emulator.handlers import objects
    plain = objects.insert

    def insert(request, response, storage, *args, **kwargs):
        if request.query.get("ifGenerationMatch", [None])[0] == "0":
            name = (request.query["name"][0] if "name" in request.query
                    else request.data["meta"].get("name"))          # multipart: in the body
            try:
                storage.get_file_obj(request.params["bucket_name"], name)
            except NotFound:
                pass
            else:
                response.status = HTTPStatus.PRECONDITION_FAILED
                return None
        return plain(request, response, storage, *args, **kwargs)

    monkeypatch.setattr(objects, "insert", insert)
    for _, table in server.HANDLERS:
        for method, handler in list(table.items()):
            if handler is plain:
                monkeypatch.setitem(table, method, insert)
    return gcs


def test_claims_on_a_bucket(preconditions):
    """gs://: the exclusive create is an upload with ifGenerationMatch=0."""
    folder = "gs://bucket/stages_test/teacher"
    path = f"{folder}/{stages.CLAIMS}/0.json"
    assert stages.create_exclusive(path, b"{}")
    assert not stages.create_exclusive(path, b"{}")
    other = "gs://bucket/stages_test/teacher2"
    with stages.claim(other, "teacher", _view(), poll_secs=0.05) as train:
        assert train
        assert storage.exists(f"{other}/{stages.CLAIMS}/0.json")
        _finish(other)
    assert not storage.exists(f"{other}/{stages.CLAIMS}/0.json")
    with stages.claim(other, "teacher", _view()) as train:
        assert not train
    assert json.loads(storage.read_text(f"{other}/{stages.STAGE}"))["kind"] == "teacher"


try:
    from tests.test_storage import gcs  # noqa: E402,F401  (the GCS emulator fixture)
except pytest.skip.Exception:       # no gcsfs / emulator installed
    @pytest.fixture
    def gcs():
        pytest.skip("the gcp and test extras (gcsfs, gcp-storage-emulator)")
