"""Methods as plug-ins: they never import the runner, each declares its own config section, a run
records only the sections it reads, and a workdir made before a method (or a field) was added
still resumes."""
import ast
import copy
import json
import os
import pathlib
import subprocess
import sys
import textwrap

import pytest

from kdjax import config as config_lib
from kdjax import workdir as workdir_lib
from tests.configs import tiny

ROOT = pathlib.Path(__file__).resolve().parents[1]
RUNNER = ("kdjax.run", "kdjax.experiment", "kdjax.train.loop", "kdjax.stages",
          "kdjax.workdir", "launch")
# RAD's active loop, its comparison and its retraining rounds drive whole runs themselves
# ('module:function' drivers); they are runners, not plug-ins.
DRIVERS = ("rad/loop.py", "rad/compare.py", "rad/retrain.py", "rad/trials.py")


def _imports(path: pathlib.Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names)
    return out


def test_methods_never_import_the_runner():
    base = ROOT / "kdjax" / "methods"
    files = [p for p in base.rglob("*.py") if str(p.relative_to(base)) not in DRIVERS]
    assert len(files) > 20
    for path in files:
        forbidden = [r for r in RUNNER   # the API re-exports the loop's Teacher and FitResult
                     if not (path.name == "api.py" and r == "kdjax.train.loop")]
        bad = sorted(m for m in _imports(path)
                     if any(m == r or m.startswith(r + ".") for r in forbidden))
        assert not bad, f"{path.relative_to(ROOT)} imports the runner: {bad}"
    # ... and importing every method leaves the runner unloaded (no import cycle through it)
    names = [f"kdjax.methods.{p.parent.name}.method" for p in base.glob("*/method.py")]
    runner = ("kdjax.run", "kdjax.experiment", "kdjax.stages", "kdjax.workdir", "launch")
    code = (f"import sys\nfor m in {names!r}: __import__(m)\n"
            f"print([m for m in {runner!r} if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, timeout=120, env=dict(os.environ, JAX_PLATFORMS="cpu"))
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"


def test_models_never_import_the_trainer_or_the_runner():
    """kdjax/models is pure Flax: no module of it imports kdjax.train, the runner or a method."""
    base = ROOT / "kdjax" / "models"
    files = list(base.rglob("*.py"))
    assert len(files) > 10
    forbidden = ("kdjax.train",) + RUNNER + ("kdjax.methods",)
    for path in files:
        bad = sorted(m for m in _imports(path)
                     if any(m == r or m.startswith(r + ".") for r in forbidden))
        assert not bad, f"{path.relative_to(ROOT)} imports {bad}"


def test_only_the_sections_a_run_uses_are_kept():
    table = config_lib.base_config("disk", ("ce",))       # a DiSK table config with its CE row
    assert {"disk", "ce"} <= set(table) and "alm" not in table
    table.ce.warm_start_epochs = 2
    table.method = "ce"
    ce = config_lib.selected(table)
    assert set(ce) == config_lib.BASE_KEYS | {"ce"} and ce.ce.warm_start_epochs == 2
    assert set(config_lib.selected(tiny.get_config("kd"))) == config_lib.BASE_KEYS
    table.method, table.disk.variant = "disk", "simkd"     # DiSK's SimKD students read simkd
    assert set(config_lib.selected(table)) == config_lib.BASE_KEYS | {"disk", "simkd"}
    lrds = tiny.get_config("lrds")
    lrds.lrds.base = "alm"                                  # a base's section: its defaults
    sel = config_lib.selected(lrds)
    assert set(sel) == config_lib.BASE_KEYS | {"lrds", "alm"}
    assert sel.alm.to_dict() == config_lib.base_config("alm").alm.to_dict()
    config_lib.validate(sel)


def test_validation_names_the_field_in_a_methods_section():
    c = tiny.get_config("disk")
    c.disk.topk = 3
    with pytest.raises(config_lib.ConfigError, match="disk.topk is not declared in the config "
                       "section of method 'disk'; did you mean disk.top_k"):
        config_lib.validate(c)
    c = tiny.get_config("ce")
    c.ce.warm_start_epochs = -1
    with pytest.raises(config_lib.ConfigError, match="ce.warm_start_epochs=-1 must be >= 0"):
        config_lib.validate(c)
    c = tiny.get_config("kd")
    c.method = "disk"          # a selector beside method= is gone: CE is method='ce'
    c.disk = config_lib.base_config("disk").disk
    c.disk.variant = "ce"
    with pytest.raises(config_lib.ConfigError, match="disk.variant='ce' must be one of"):
        config_lib.validate(c)


def _record(workdir, config: dict) -> None:
    os.makedirs(os.path.join(workdir, "checkpoints", "4"), exist_ok=True)   # training state
    with open(os.path.join(workdir, "config.json"), "w") as f:
        json.dump(config, f)


def test_a_workdir_recorded_with_every_section_resumes(tmp_path):
    """config.json as the code before per-method sections wrote it (every method's section,
    ALM's label noise in its section) is still this run's config; a changed field of the
    run's own section is still refused."""
    config = tiny.get_config("lrds")
    new = json.loads(json.dumps(config_lib.selected(config).to_dict(), default=str))
    old = dict(new)
    for name in ("alm", "disk", "simkd"):
        old[name] = json.loads(json.dumps(config_lib.base_config(name)[name].to_dict()))
    old["alm"].update(label_noise=0.0, noise_seed=0)
    del old["data"]["label_noise"], old["data"]["noise_seed"]   # added since, at defaults
    _record(str(tmp_path), old)
    workdir_lib.check_config(str(tmp_path), config_lib.selected(config))
    config.lrds.ds.fraction = 0.5
    with pytest.raises(workdir_lib.WorkdirError, match="lrds.ds.fraction: 0.8 -> 0.5"):
        workdir_lib.check_config(str(tmp_path), config_lib.selected(config))


def test_a_workdir_recorded_with_the_claim_in_the_base_resumes(tmp_path):
    """config.json as written while `claim`, `figure` and `panel` were base fields: a RAD
    comparison (its claim now `active.claim`) and a KD run still resume, and a changed claim is
    still refused; no run carries those fields now but RAD's own claim."""
    from experiments import quickstart
    assert not {"claim", "figure", "panel"} & config_lib.BASE_KEYS
    config = quickstart.get_config()
    new = json.loads(json.dumps(config_lib.selected(config).to_dict(), default=str))
    old = copy.deepcopy(new)
    old["claim"] = {k: v for k, v in old["active"].pop("claim").items() if k != "margin"}
    old.update(figure="rad_fig3", panel="cifar10:resnet:e4:A1000:b500:T2")
    _record(str(tmp_path / "rad"), old)
    workdir_lib.check_config(str(tmp_path / "rad"), config_lib.selected(config))
    config.active.claim.kind = "not_worse"
    with pytest.raises(workdir_lib.WorkdirError,
                       match="active.claim.kind: 'greater' -> 'not_worse'"):
        workdir_lib.check_config(str(tmp_path / "rad"), config_lib.selected(config))
    kd = config_lib.selected(tiny.get_config("kd"))
    old = json.loads(json.dumps(kd.to_dict(), default=str))
    old.update(claim={"text": "", "kind": "greater", "pairs": [], "on": "all"}, figure="",
               panel="")
    _record(str(tmp_path / "kd"), old)
    workdir_lib.check_config(str(tmp_path / "kd"), kd)


FANCY = '''\
"""A method added later, in one file with its own section: KD with its own weight."""
import ml_collections

from kdjax.methods.kd.method import make_kd_loss
from kdjax.train.method import Method


def section():
    s = ml_collections.ConfigDict()
    s.kd_weight = 0.5
    return s


CHECKS = {"kd_weight": (lambda v: 0 <= v <= 1, "in [0, 1]")}


def make_method(config, run):
    return Method(loss=make_kd_loss(config.loss.temperature, config.fancy_kd.kd_weight))
'''


def _main(*args, env=None):
    return subprocess.run([sys.executable, "-m", "launch.main", "--compilation_cache=", *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)


def _plugin(tmp_path) -> dict:
    """The environment of a subprocess that sees a method added in a package of its own."""
    package = tmp_path / "plugins" / "extra"
    package.mkdir(parents=True, exist_ok=True)
    (package / "__init__.py").write_text("")
    (package / "fancy_kd.py").write_text(textwrap.dedent(FANCY))
    return dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=1",
                PYTHONPATH=os.pathsep.join([str(tmp_path / "plugins"),
                                            os.environ.get("PYTHONPATH", "")]))


ONE = ["--config.train.epochs=1", "--config.teacher.epochs=1"]


def test_a_method_added_later_leaves_existing_workdirs_resumable(tmp_path):
    """A CE run records no other method's section; a method added afterwards in a package of
    its own (a temporary one on PYTHONPATH) takes `--config.<its section>.<field>` (checked by
    its CHECKS), and the CE workdir made before it existed still resumes."""
    ce = str(tmp_path / "ce")
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=1")
    out = _main("--config=tests/configs/tiny.py:ce", f"--workdir={ce}", *ONE, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    recorded = json.loads(pathlib.Path(ce, "config.json").read_text())
    assert set(recorded) == config_lib.BASE_KEYS | {"ce"}
    env = _plugin(tmp_path)
    out = _main("--config=tests/configs/tiny.py:extra.fancy_kd", f"--workdir={tmp_path / 'f'}",
                "--config.fancy_kd.kd_weight=2.0", *ONE, env=env)
    assert out.returncode == 1
    assert out.stderr.strip().splitlines()[-1] == (
        "error: config field fancy_kd.kd_weight=2.0 must be in [0, 1]")
    out = _main("--config=tests/configs/tiny.py:ce", f"--workdir={ce}", *ONE, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "holds a finished run" in out.stdout


@pytest.mark.slow   # ~30 s / ~15 s through the real CLI; the default suite keeps ~10 min
def test_a_composed_methods_fields_are_set_on_the_command_line(tmp_path):
    """`--config.<section>.<field>` of a method the selected one composes (LR+DS's base) mounts
    that section before the flags apply, and the run records it; a field of a method's section
    the run does not read is refused in one line instead of being dropped."""
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=1")
    out = _main("--config=tests/configs/tiny.py:kd", f"--workdir={tmp_path / 'kd'}",
                "--config.disk.top_k=3", *ONE, env=env)
    assert out.returncode == 1
    assert out.stderr.strip().splitlines()[-1] == (
        "error: --config.disk.top_k: method 'kd' does not read section 'disk'; select 'disk' "
        "with --config.method or a composing field such as lrds.base / active.retrain")
    assert not (tmp_path / "kd").exists()
    work = tmp_path / "lr_disk"
    out = _main("--config=tests/configs/tiny.py:lrds", f"--workdir={work}",
                "--config.lrds.base=disk", "--config.disk.top_k=3", "--config.disk.lam_min=0.5",
                "--config.lrds.ds.enabled=False", *ONE, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    recorded = json.loads((work / "config.json").read_text())
    assert set(recorded) == config_lib.BASE_KEYS | {"lrds", "disk"}
    assert recorded["lrds"]["base"] == "disk"
    assert (recorded["disk"]["top_k"], recorded["disk"]["lam_min"]) == (3, 0.5)
    assert json.loads((work / "results.json").read_text())["method"] == "lrds"


@pytest.mark.slow  # ~1 min on 2 loaded cores: `make test-slow`
def test_a_single_file_method_runs_with_its_own_section(tmp_path):
    fancy = str(tmp_path / "fancy")
    out = _main("--config=tests/configs/tiny.py:extra.fancy_kd", f"--workdir={fancy}",
                "--config.fancy_kd.kd_weight=0.25", *ONE, env=_plugin(tmp_path))
    assert out.returncode == 0, out.stderr[-2000:]
    recorded = json.loads(pathlib.Path(fancy, "config.json").read_text())
    assert set(recorded) == config_lib.BASE_KEYS | {"fancy_kd"}
    assert recorded["fancy_kd"] == {"kd_weight": 0.25}
    results = json.loads(pathlib.Path(fancy, "results.json").read_text())
    assert results["method"] == "extra.fancy_kd" and 0.5 < results["test_accuracy"] <= 1.0
