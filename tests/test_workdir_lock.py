"""One writer per gs:// workdir: the claim object of kdjax.workdir on the local GCS emulator
(tests/test_storage.py). The emulator does not enforce `ifGenerationMatch`, so what is checked
here is the refusal naming the holder, the release and the take-over of a dead holder's claim;
the exclusive create is GCS's."""
import json
import os
import socket
import subprocess
import sys

import pytest

from kdjax import storage
from kdjax import workdir as workdir_lib
from tests.test_storage import gcs  # noqa: F401  (the emulator fixture)


def test_a_bucket_workdir_has_one_writer(gcs):  # noqa: F811
    w = "gs://bucket/runs/lock"
    with workdir_lib.claim(w):
        with pytest.raises(workdir_lib.WorkdirBusy,
                           match=rf"workdir {w} is in use by PID {os.getpid()} on "):
            with workdir_lib.claim(w):
                pass
    with workdir_lib.claim(w):   # released
        pass
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    claims = storage.glob(f"{w}/{workdir_lib.LOCK}/claims", "*.json")
    newest = max(int(os.path.basename(p)[:-5]) for p in claims) if claims else -1
    storage.write_json(f"{w}/{workdir_lib.LOCK}/claims/{newest + 1}.json",
                       {"host": socket.gethostname(), "pid": int(dead), "time": 0})
    with workdir_lib.claim(w):   # the dead holder's claim is taken over
        held = json.loads(storage.read_text(max(
            storage.glob(f"{w}/{workdir_lib.LOCK}/claims", "*.json"),
            key=lambda p: int(os.path.basename(p)[:-5]))))
        assert held["pid"] == os.getpid()
