"""Your own model and dataset reader by import path (docs/custom_models.md): a temporary package
`mykd_user` on PYTHONPATH holds a Flax module and a reader; `launch.main` distils into the
module on the reader's data, and every way of getting them wrong is one line naming the path."""
import json
import os
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest

from kdjax import config as config_lib
from kdjax import errors
from kdjax.data import registry
from kdjax.models import get_model
from kdjax.train import state as state_lib
from tests.configs import tiny

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The example of docs/custom_models.md, plus a few wrong ones for the error tests.
NETS = '''
import flax.linen as nn


class TinyNet(nn.Module):
    num_classes: int
    width: int = 16

    @nn.compact
    def __call__(self, x, train=False):
        h = nn.relu(nn.Dense(self.width, name="hidden")(x.reshape((x.shape[0], -1))))
        return nn.Dense(self.num_classes, name="head")(h), h


def not_a_module(num_classes):
    return {"num_classes": num_classes}


class LogitsOnly(nn.Module):
    num_classes: int

    @nn.compact
    def __call__(self, x, train=False):
        return nn.Dense(self.num_classes)(x.reshape((x.shape[0], -1)))


WIDTH = 16
'''

DATA = '''
import numpy as np

from kdjax.data import DatasetInfo, make_split


def load(num_train=900, num_test=300, seed=0):
    """Three Gaussian blobs in 16 dimensions, float32 vectors."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(0.0, 2.0, (3, 16))

    def draw(n):
        y = rng.integers(0, 3, n)
        return make_split((centers[y] + rng.normal(0.0, 1.0, (n, 16))).astype(np.float32), y)

    return ({"train": draw(num_train), "test": draw(num_test)},
            DatasetInfo("blobs", 3, (16,), (0.0,), (1.0,)))


def no_test_split():
    splits, info = load()
    return {"train": splits["train"]}, info


def wrong_type():
    return load()[0]


def bad_labels():
    splits, info = load()
    return splits, DatasetInfo("blobs", 2, (16,), (0.0,), (1.0,))   # labels reach 2
'''

CONFIG = '''
from tests.configs import tiny


def get_config():
    c = tiny.get_config("kd")
    c.data.name = "mykd_user.data:load"
    c.data.num_validation = 100
    c.model.name = "mykd_user.nets:TinyNet"
    c.model.kwargs = {"width": 8}
    c.teacher.name = "mykd_user.nets:TinyNet"
    c.teacher.kwargs = {"width": 64}
    c.teacher.epochs = 2
    c.train.epochs = 2
    return c
'''


@pytest.fixture(scope="module")
def user_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("user")
    pkg = root / "mykd_user"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "nets.py").write_text(textwrap.dedent(NETS))
    (pkg / "data.py").write_text(textwrap.dedent(DATA))
    (root / "config.py").write_text(textwrap.dedent(CONFIG))
    sys.path.insert(0, str(root))
    yield root
    sys.path.remove(str(root))
    for name in [m for m in sys.modules if m == "mykd_user" or m.startswith("mykd_user.")]:
        del sys.modules[name]


def _main(user_root, *args):
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=1",
               PYTHONPATH=os.pathsep.join([str(user_root), os.environ.get("PYTHONPATH", ROOT)]))
    return subprocess.run([sys.executable, "-m", "launch.main", "--compilation_cache=",
                           f"--config={user_root}/config.py", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def test_launch_main_distils_into_a_user_module_on_user_data(user_root, tmp_path):
    out = _main(user_root, f"--workdir={tmp_path}")
    assert out.returncode == 0, out.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["config"]["model"]["name"] == "mykd_user.nets:TinyNet"
    assert results["config"]["data"]["name"] == "mykd_user.data:load"
    # The checkpoint holds the user's layers at the user's widths (student 8, teacher 64).
    from kdjax.train import checkpoint as ckpt_lib
    student = ckpt_lib.load_variables(str(tmp_path))
    teacher = ckpt_lib.load_variables(str(tmp_path / "teacher"))
    assert student["params"]["hidden"]["kernel"].shape == (16, 8)
    assert student["params"]["head"]["kernel"].shape == (8, 3)
    assert teacher["params"]["hidden"]["kernel"].shape == (16, 64)
    # Independent check: the user's module applied to the user's test split with the saved
    # student reproduces the run's test accuracy.
    from mykd_user import data, nets
    splits, _ = data.load()
    logits, _ = nets.TinyNet(3, width=8).apply(
        {"params": student["params"]}, splits["test"].images)
    acc = float(np.mean(np.argmax(np.asarray(logits), -1) == splits["test"].labels))
    assert acc == pytest.approx(results["test_accuracy"], abs=1e-6)
    assert acc > 0.6   # three separable blobs; chance is 1/3


def test_a_wrong_path_is_one_line_before_anything_trains(user_root, tmp_path):
    out = _main(user_root, f"--workdir={tmp_path}",
                "--config.model.name=mykd_user.nets:TinyNett")
    assert out.returncode == 1
    assert out.stderr.strip().splitlines()[-1] == (
        "error: config field model.name 'mykd_user.nets:TinyNett': module mykd_user.nets has "
        "no 'TinyNett'")
    assert not (tmp_path / "teacher").exists()


@pytest.mark.parametrize("name, message", [
    ("mykd_nowhere.nets:TinyNet", "module 'mykd_nowhere.nets' does not import (no module "
                                  "named 'mykd_nowhere'"),
    ("mykd_user.nets:Missing", "module mykd_user.nets has no 'Missing'"),
    ("mykd_user.nets:WIDTH", "WIDTH is not callable (it is a int)"),
    ("mykd_user.nets:not_a_module", "returned a dict, not a flax.linen.Module"),
    ("mykd_user.nets:", "an import path is 'package.module:name'"),
])
def test_model_path_errors_are_one_line(user_root, name, message):
    with pytest.raises(errors.ConfigError) as err:
        get_model(name, 3)
    assert message in str(err.value) and name in str(err.value)
    assert "\n" not in str(err.value)


def test_model_kwargs_that_do_not_fit_the_constructor(user_root):
    with pytest.raises(errors.ConfigError, match=r"cannot be called with num_classes and "
                                                 r"model.kwargs \['depth'\]"):
        get_model("mykd_user.nets:TinyNet", 3, depth=2)


def test_user_model_is_built_with_num_classes_and_kwargs(user_root):
    model = get_model("mykd_user.nets:TinyNet", 5, width=4)
    assert (model.num_classes, model.width) == (5, 4)
    variables = state_lib.init_variables(model, jax.random.PRNGKey(0), (16,))
    assert variables["params"]["head"]["kernel"].shape == (4, 5)


def test_a_module_breaking_the_contract_fails_when_initialised(user_root):
    model = get_model("mykd_user.nets:LogitsOnly", 3)
    with pytest.raises(errors.ConfigError, match=r"model LogitsOnly returned a ArrayImpl of "
                                                 r"shape \(1, 3\) for a batch of one; a kdjax "
                                                 r"model returns \(logits \(B, 3\)"):
        state_lib.init_variables(model, jax.random.PRNGKey(0), (16,))


def test_reader_by_import_path(user_root):
    splits, info = registry.load_dataset("mykd_user.data:load")
    assert info.num_classes == 3 and (len(splits["train"]), len(splits["test"])) == (900, 300)
    from mykd_user import data
    want, _ = data.load()
    np.testing.assert_array_equal(splits["test"].images, want["test"].images)


@pytest.mark.parametrize("name, data_dir, exc, message", [
    ("mykd_user.data:no_test_split", None, errors.ConfigError, "returned no 'test' split"),
    ("mykd_user.data:bad_labels", None, ValueError, "mykd_user.data:bad_labels/train"),
    ("mykd_user.data:load", "/some/dir", errors.ConfigError,
     "cannot be called with ['data_dir'] arguments"),
    ("mykd_user.data:wrong_type", None, errors.ConfigError, "returned a dict; a reader returns"),
    ("mykd_user.data:nothing", None, errors.ConfigError, "module mykd_user.data has no"),
])
def test_reader_errors_name_the_reader(user_root, name, data_dir, exc, message):
    with pytest.raises(exc) as err:
        registry.load_dataset(name, data_dir=data_dir)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_config_validation_accepts_paths_and_resolves_them(user_root):
    c = tiny.get_config("kd")
    c.model.name, c.teacher.name = "mykd_user.nets:TinyNet", "mykd_user.nets:TinyNet"
    c.data.name = "mykd_user.data:load"
    config_lib.validate(c)
    c.data.name = "tfds:mnist"   # the registry's own prefixes are not import paths
    config_lib.validate(c)
    c.teacher.name = "mykd_user.netz:TinyNet"
    with pytest.raises(errors.ConfigError, match="config field teacher.name 'mykd_user.netz"):
        config_lib.validate(c)
