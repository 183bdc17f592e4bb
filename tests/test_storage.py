"""kdjax.storage on a local stand-in for a bucket: `gcp-storage-emulator` on 127.0.0.1.

gcsfs (epath's gs:// backend) finds it through STORAGE_EMULATOR_HOST, tensorstore (orbax's array writer) through
TENSORSTORE_GCS_HTTP_URL with a fixed test token. Every test runs in an empty cwd and checks
that nothing made a local folder named `gs:`.
"""
import os
import socket
import struct

# Before gcsfs is imported: its experimental zonal-bucket probe asks a Google API for every
# bucket (no network here) and warns; the emulator serves the plain JSON API only.
os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from kdjax import storage  # noqa: E402

pytest.importorskip("gcsfs", reason="the gcp extra (gcsfs) is not installed")
pytest.importorskip("gcp_storage_emulator", reason="the test extra (gcp-storage-emulator)")

BUCKET = "gs://bucket"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve_generation_headers() -> None:
    """Make the emulator's media downloads carry `x-goog-generation` / `x-goog-metageneration`,
    as GCS's do. Without them tensorstore cannot tell which generation of an object it read: an
    OCDBT manifest read while orbax writes a checkpoint fails with `Malformed
    StorageGeneration` whenever the manifest already exists, which depends on the timing of
    orbax's concurrent array writes (the flaky `test_orbax_checkpoint_on_bucket` under -n 2).
    Idempotent: the emulator's routing table is patched once per process."""
    from gcp_storage_emulator import server
    from gcp_storage_emulator.exceptions import NotFound
    from gcp_storage_emulator.handlers import objects
    if getattr(objects.download, "serves_generation", False):
        return
    plain = objects.download

    def download(request, response, storage, *args, **kwargs):
        plain(request, response, storage, *args, **kwargs)
        try:
            obj = storage.get_file_obj(request.params["bucket_name"],
                                       request.params["object_id"])
        except NotFound:
            return
        response["x-goog-generation"] = str(obj["generation"])
        response["x-goog-metageneration"] = str(obj["metageneration"])

    download.serves_generation = True
    objects.download = download            # objects.get calls it for ?alt=media
    for _, table in server.HANDLERS:       # the /download/... route holds the function itself
        for method, handler in list(table.items()):
            if handler is plain:
                table[method] = download


@pytest.fixture(scope="module")
def gcs():
    """An in-memory GCS emulator with bucket `bucket`, and every client pointed at it."""
    import logging

    import gcsfs
    from etils.epath import backend, gpath
    from gcp_storage_emulator.server import create_server

    logging.getLogger("gcp_storage_emulator").setLevel(logging.ERROR)
    _serve_generation_headers()
    port = _free_port()
    server = create_server("127.0.0.1", port, in_memory=True, default_bucket="bucket")
    server.start()
    url = f"http://127.0.0.1:{port}"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("STORAGE_EMULATOR_HOST", url)            # gcsfs
        mp.setenv("TENSORSTORE_GCS_HTTP_URL", url)         # orbax's tensorstore
        mp.setenv("GOOGLE_AUTH_TOKEN_FOR_TESTING", "test")  # tensorstore: no credential lookup
        mp.setenv("NO_GCE_CHECK", "True")                  # google-auth: no metadata server
        mp.setenv("GCE_METADATA_HOST", "127.0.0.1:1")
        mp.setenv("EPATH_USE_TF", "false")                 # gcsfs even if TF is installed
        gpath._is_tf_installed.cache_clear()
        backend.fsspec_backend._get_filesystem.cache_clear()
        gcsfs.GCSFileSystem.clear_instance_cache()
        yield url
    server.stop()
    gpath._is_tf_installed.cache_clear()
    backend.fsspec_backend._get_filesystem.cache_clear()
    gcsfs.GCSFileSystem.clear_instance_cache()


@pytest.fixture(autouse=True)
def _no_local_gs_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    yield
    assert not (tmp_path / "gs:").exists(), "a local folder named gs: was created"


def test_json_text_arrays_round_trip(gcs, tmp_path):
    d = f"{BUCKET}/t1/a/b"
    storage.makedirs(d)
    assert storage.read_json(f"{d}/results.json") is None
    storage.write_json(f"{d}/results.json", {"acc": np.float32(0.5), "n": 3})
    assert storage.read_json(f"{d}/results.json") == {"acc": "0.5", "n": 3}  # default=str
    storage.write_json(f"{d}/results.json", {"acc": 0.75})          # overwrite in place
    assert storage.read_json(f"{d}/results.json") == {"acc": 0.75}
    storage.write_text(f"{d}/bad.json", '{"torn": ')
    with pytest.raises(ValueError, match="bad.json: not valid JSON"):
        storage.read_json(f"{d}/bad.json")
    storage.save_npz(f"{d}/cache.npz", logits=np.arange(6.0).reshape(2, 3), ids=np.arange(2))
    got = storage.load_npz(f"{d}/cache.npz")
    np.testing.assert_array_equal(got["logits"], np.arange(6.0).reshape(2, 3))
    assert storage.load_npz(f"{d}/none.npz") is None
    storage.save_npy(f"{d}/ids.npy", np.arange(5))
    np.testing.assert_array_equal(storage.load_npy(f"{d}/ids.npy"), np.arange(5))
    assert storage.glob(f"{BUCKET}/t1", "*/*/*.json") == [f"{d}/bad.json", f"{d}/results.json"]
    assert storage.glob(f"{BUCKET}/t1", "**/*.npy") == [f"{d}/ids.npy"]
    assert storage.glob(f"{BUCKET}/t1", "a/**/cache.npz") == [f"{d}/cache.npz"]
    storage.copy(f"{d}/ids.npy", str(tmp_path / "out" / "ids.npy"))     # bucket -> local
    np.testing.assert_array_equal(np.load(tmp_path / "out" / "ids.npy"), np.arange(5))
    storage.remove(str(tmp_path / "out" / "ids.npy"))
    (tmp_path / "out").rmdir()
    assert storage.exists(f"{d}/ids.npy") and not storage.exists(f"{d}/nope")
    storage.move(f"{d}/results.json", f"{d}/results.before-change.json")
    assert storage.read_json(f"{d}/results.before-change.json") == {"acc": 0.75}
    assert not storage.exists(f"{d}/results.json")


def test_local_writes_are_atomic_and_relative(tmp_path):
    storage.write_json("runs/x/results.json", {"a": 1})
    assert (tmp_path / "runs" / "x" / "results.json").exists()
    assert os.listdir(tmp_path / "runs" / "x") == ["results.json"]   # no tmp file left
    assert storage.glob("runs", "*/results.json") == [os.path.join("runs", "x", "results.json")]
    assert storage.glob("runs", "**/*.json") == [os.path.join("runs", "x", "results.json")]
    assert storage.glob("runs", "x/**/results.json") == [os.path.join("runs", "x", "results.json")]
    assert storage.read_json("runs/x/results.json") == {"a": 1}
    storage.move("runs/x/results.json", "runs/y/old.json")
    assert storage.read_json("runs/y/old.json") == {"a": 1} and not os.listdir("runs/x")
    with pytest.raises(ValueError, match="mistyped URI"):
        storage.path("gs:/bucket/run")
    with pytest.raises(ValueError, match="append"):
        storage.open(f"{BUCKET}/x.txt", "a")


@pytest.mark.parametrize("where", ["bucket", "local"])
def test_jsonl_writer_buffers_uploads_and_truncates_on_resume(gcs, tmp_path, where):
    p = f"{BUCKET}/t2/metrics.jsonl" if where == "bucket" else str(tmp_path / "m.jsonl")
    with storage.JsonlWriter(p, flush_secs=3600) as w:
        for step in range(1, 6):
            w.write({"step": step, "loss": 1.0 / step})
        if where == "bucket":   # nothing uploaded before the first flush
            assert not storage.exists(p)
        w.flush()
        assert [r["step"] for r in storage.read_jsonl(p)] == [1, 2, 3, 4, 5]
        w.write({"step": 6, "loss": 0.1})
    assert [r["step"] for r in storage.read_jsonl(p)] == [1, 2, 3, 4, 5, 6]  # close flushes
    storage.write_text(p, storage.read_text(p) + '{"step": 7, "lo')       # a torn line
    with storage.JsonlWriter(p, keep=lambda r: r["step"] <= 4, flush_secs=0) as w:
        assert [r["step"] for r in storage.read_jsonl(p)] == [1, 2, 3, 4]  # truncated at open
        w.write({"step": 5, "loss": 0.2})
        assert [r["step"] for r in storage.read_jsonl(p)] == [1, 2, 3, 4, 5]  # flush_secs=0


def test_orbax_checkpoint_on_bucket(gcs):
    from kdjax.train import checkpoint as ckpt_lib

    tree = {"params": {"w": jnp.arange(6.0).reshape(2, 3), "b": jnp.ones(3)},
            "batch_stats": {"mean": jnp.zeros(3)}}
    ck = ckpt_lib.Checkpointer(f"{BUCKET}/run/checkpoints", max_to_keep=2)
    assert ck.directory == f"{BUCKET}/run/checkpoints" and ck.latest_step() is None
    for step in (1, 2, 3):
        ck.save(step, jax.tree.map(lambda x: x * step, tree), meta={"history": [step]})
    ck.wait()
    assert ck.all_steps() == [2, 3]
    state, meta = ck.restore(tree)
    assert meta == {"history": [3]}
    np.testing.assert_array_equal(state["params"]["w"], np.arange(6.0).reshape(2, 3) * 3)
    ck.close()
    got = ckpt_lib.load_variables(f"{BUCKET}/run")
    np.testing.assert_array_equal(got["params"]["b"], np.full(3, 3.0))
    with pytest.raises(FileNotFoundError, match="missing checkpoint"):
        ckpt_lib.load_variables(f"{BUCKET}/never_trained")


def _tb_scalars(data: bytes) -> list[tuple[str, int, float]]:
    """(tag, step, value) of every scalar in a TensorBoard events file (TFRecord framing)."""
    from tensorboardX.proto import event_pb2
    out, pos = [], 0
    while pos < len(data):
        (n,) = struct.unpack("<Q", data[pos:pos + 8])
        event = event_pb2.Event.FromString(data[pos + 12:pos + 12 + n])
        pos += 12 + n + 4
        for v in event.summary.value:
            out.append((v.tag, event.step, v.simple_value))
    return out


def test_metric_writer_on_bucket_jsonl_and_tensorboard(gcs):
    from kdjax.train.metrics import MetricWriter

    w = MetricWriter(f"{BUCKET}/mrun", tensorboard=True)
    for step in (1, 2, 3):
        w.write(step, {"train/loss": np.float32(1.0 / step)})
    w.flush()
    assert [r["step"] for r in storage.read_jsonl(f"{BUCKET}/mrun/metrics.jsonl")] == [1, 2, 3]
    w.close()
    events = storage.glob(f"{BUCKET}/mrun/tb", "events.out.tfevents.*")
    assert len(events) == 1
    scalars = _tb_scalars(storage.read_bytes(events[0]))
    assert [(t, s) for t, s, _ in scalars] == [("train/loss", 1), ("train/loss", 2),
                                              ("train/loss", 3)]
    assert scalars[1][2] == pytest.approx(0.5)
    resumed = MetricWriter(f"{BUCKET}/mrun", tensorboard=False, resume_step=2)
    resumed.write(3, {"train/loss": 0.3})
    resumed.close()
    rows = storage.read_jsonl(f"{BUCKET}/mrun/metrics.jsonl")
    assert [r["step"] for r in rows] == [1, 2, 3] and rows[-1]["train/loss"] == pytest.approx(0.3)


def test_reproduce_results_and_report_files_on_bucket(gcs):
    from kdjax.reproduce import execute, plots, report
    from kdjax.reproduce.sweep import Point

    work = f"{BUCKET}/repro"
    done = Point("tbl", "cpu", "seed=0", (("seed", 0),))
    todo = Point("tbl", "cpu", "seed=1", (("seed", 1),))
    execute._write_json(os.path.join(execute.point_dir(work, done), execute.RESULTS),
                        {"status": "finished", "point": done.name, "acc": np.float64(0.9)})
    assert execute.read_record(work, done)["acc"] == 0.9
    assert execute.read_record(work, todo) is None
    assert [r["point"] for r in report.finished_records(work, "tbl", "cpu")] == ["seed=0"]
    png = plots.plot_curves({"kd": {"x": [1, 2], "mean": [1.0, 2.0], "std": [0.1, 0.1], "n": 2}},
                            f"{work}/tbl/cpu/curves.png")
    assert storage.read_bytes(png)[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_launch_main_trains_and_resumes_in_a_bucket(gcs, tmp_path):
    import subprocess
    import sys
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    cmd = [sys.executable, "-m", "launch.main", f"--config={root}/tests/configs/tiny.py:kd",
           f"--workdir={BUCKET}/e2e", "--config.tensorboard=True", "--compilation_cache="]
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=1")
    subprocess.run(cmd, cwd=tmp_path, env=env, check=True, capture_output=True, timeout=600)
    assert storage.read_json(f"{BUCKET}/e2e/results.json")["test_accuracy"] > 0.5
    assert storage.read_jsonl(f"{BUCKET}/e2e/metrics.jsonl")
    assert storage.glob(f"{BUCKET}/e2e/tb", "events.out.tfevents.*")
    again = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True,
                           timeout=600)
    assert again.returncode == 0 and "holds a finished run" in again.stdout
    assert not (tmp_path / "gs:").exists()
