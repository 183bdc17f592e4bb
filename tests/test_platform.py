"""Platform settings are the entry points' (kdjax.platform), never `import kdjax`'s; a run records
them, with the code and versions, when it starts (kdjax.provenance)."""
import hashlib
import json
import os
import pathlib
import subprocess
import sys

import pytest

from kdjax import provenance

ROOT = pathlib.Path(__file__).resolve().parents[1]

# Imports kdjax, then every kdjax module, in a fresh process; prints what they changed: environment
# variables, whether glibc still mmaps a 64 MiB block (kdjax.platform.host_heap turns that off)
# and which convolution the models use.
_IMPORT_ALL = r"""
import ast, ctypes, importlib, json, os, pathlib, pkgutil, sys
# Third-party packages kdjax imports, imported first: what they do on import (sklearn sets
# KMP_* variables) is theirs.
third_party = set()
for path in pathlib.Path("kdjax").rglob("*.py"):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            third_party |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            third_party.add(node.module.split(".")[0])
for name in sorted(third_party - {"kdjax"}):
    try:
        importlib.import_module(name)
    except ImportError:
        pass
before = dict(os.environ)
import kdjax
plain = sorted(m for m in sys.modules if m.split(".")[0] == "kdjax")
skipped = {}
for info in pkgutil.walk_packages(kdjax.__path__, "kdjax."):
    try:
        importlib.import_module(info.name)
    except ImportError as err:   # an optional dependency (e.g. torch) that is not installed
        skipped[info.name] = str(err)
changed = sorted(k for k in set(before) | set(os.environ) if before.get(k) != os.environ.get(k))

class MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd",
                                               "usmblks", "fsmblks", "uordblks", "fordblks",
                                               "keepcost")]
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, (ctypes.c_size_t,)
libc.free.argtypes = (ctypes.c_void_p,)
libc.mallinfo2.restype = MallInfo2
block = libc.malloc(64 << 20)
mmapped = libc.mallinfo2().hblkhd >= 64 << 20
libc.free(block)
import jax
from kdjax.models import layers
print(json.dumps({"plain": plain, "changed": changed, "mmapped": mmapped, "skipped": skipped,
                  "lax_conv": layers.get_conv() is jax.lax.conv_general_dilated}))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallinfo2")
def test_importing_kdjax_changes_no_environment_variable_and_no_malloc_setting():
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "KDJAX_HOST_HEAP")}
    env.update(JAX_PLATFORMS="cpu", PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", _IMPORT_ALL], env=env, cwd=ROOT, check=True,
                         capture_output=True, text=True, timeout=300)
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["plain"] == ["kdjax"], got["plain"]       # `import kdjax` imports nothing else
    assert got["changed"] == [], got["changed"]
    assert got["mmapped"], "glibc no longer mmaps large blocks: malloc was changed"
    assert got["lax_conv"]
    assert all("kdjax.platform" not in name for name in got["skipped"]), got["skipped"]


def test_no_private_jax_api_under_models():
    for path in (ROOT / "kdjax" / "models").rglob("*.py"):
        assert "jax._src" not in path.read_text(), path


def test_code_state_names_the_commit_and_hashes_the_diff(tmp_path):
    def git(*args):
        return subprocess.run(["git", "-C", str(tmp_path), *args], check=True,
                              capture_output=True).stdout
    git("init", "-q")
    (tmp_path / "a.py").write_text("x = 1\n")
    git("add", "a.py")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "one")
    head = git("rev-parse", "HEAD").decode().strip()
    assert provenance.read_code_state(str(tmp_path)) == {
        "git_commit": head, "git_dirty": False, "git_diff_sha256": None}
    (tmp_path / "a.py").write_text("x = 2\n")
    diff = git("diff", "HEAD", "--binary")
    assert provenance.read_code_state(str(tmp_path)) == {
        "git_commit": head + "+dirty", "git_dirty": True,
        "git_diff_sha256": hashlib.sha256(diff).hexdigest()}
    assert provenance.read_code_state(str(tmp_path / "nowhere"))["git_commit"] == "unknown"


def test_a_resumed_run_keeps_its_start_and_adds_the_resume(tmp_path):
    first = provenance.record_start(str(tmp_path))
    assert first["resumes"] == [] and first["git_commit"] == provenance.code_state()["git_commit"]
    for key in ("versions", "platform_settings", "device_kind", "num_devices", "num_processes"):
        assert key in first
    second = provenance.record_start(str(tmp_path))
    assert {k: v for k, v in second.items() if k != "resumes"} == \
        {k: v for k, v in first.items() if k != "resumes"}
    assert len(second["resumes"]) == 1 and second["resumes"][0]["time"] >= first["time"]
    held = json.loads((tmp_path / provenance.START_FILE).read_text())
    assert held["start"] == {k: v for k, v in first.items() if k != "resumes"}


def test_the_entry_point_applies_records_and_caches_what_it_turns_on(tmp_path):
    """launch.main applies the platform settings and records them (with the code and versions)
    in results.json and provenance.json; a second run, in a fresh workdir with the same
    persistent compilation cache, compiles nothing the first did not store (a conv model on one
    CPU device: the convolutions the cache holds), and no cache write fails."""
    from kdjax.platform import xla_cpu
    cache = tmp_path / "xla"
    env = {k: v for k, v in os.environ.items() if not k.startswith("KDJAX_")}
    env.update(XLA_FLAGS="--xla_force_host_platform_device_count=1", JAX_PLATFORMS="cpu")

    config = tmp_path / "cnn.py"
    config.write_text("from tests.configs import tiny\n\n\ndef get_config():\n"
                      "    c = tiny.get_config('ce')\n    c.model.name = 'cnn_small'\n"
                      "    c.model.kwargs = {'widths': (8, 16), 'hidden': 32}\n"
                      "    c.train.epochs = 1\n    return c\n")

    def run(name):
        out = subprocess.run(
            [sys.executable, "-m", "launch.main", f"--config={config}",
             f"--workdir={tmp_path / name}", f"--compilation_cache={cache}"],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
        assert out.returncode == 0, out.stderr[-3000:]
        assert "compilation cache" not in out.stderr, out.stderr[-3000:]
        return json.loads((tmp_path / name / "results.json").read_text())

    def entries():
        return sorted(p.name for p in cache.iterdir() if p.name.endswith("-cache"))

    first = run("first")
    stored = entries()
    assert any(name.startswith("jit_train_step") for name in stored), stored
    run("second")
    assert entries() == stored
    prov = first["provenance"]
    settings = prov["platform_settings"]
    assert settings["applied_by_entry_point"] and settings["compilation_cache"] == str(cache)
    assert settings["convolution"] == "xla"  # with the cache on; oneDNN's it could not store
    assert settings["host_heap"] is True     # JAX_PLATFORMS=cpu
    if xla_cpu.jaxlib_minor() in xla_cpu.MEASURED_JAXLIB:
        assert f"{xla_cpu.YNN_FLAG}={xla_cpu.YNN_VALUE}" in settings["xla_flags"]
    assert prov["git_commit"] == provenance.code_state()["git_commit"]
    assert prov["versions"]["jaxlib"] and prov["num_devices"] == 1 and prov["num_processes"] == 1
    held = json.loads((tmp_path / "first" / provenance.START_FILE).read_text())
    assert held == {"start": {k: v for k, v in prov.items() if k != "resumes"}, "resumes": []}


def test_the_commit_recorded_is_the_one_the_process_started_with(monkeypatch):
    """The code state is read once (the entry points read it first): a commit made in a shared
    working tree while a run goes on is not attributed to it."""
    started = provenance.code_state()
    monkeypatch.setattr(provenance, "read_code_state", lambda root: {
        "git_commit": "made-later", "git_dirty": False, "git_diff_sha256": None})
    assert provenance.provenance()["git_commit"] == started["git_commit"]
