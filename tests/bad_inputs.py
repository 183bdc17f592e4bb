"""Each bad input a user may give, and the one line it gets (docs/errors.md is rendered from
this list; tests/test_bad_inputs.py checks both the messages and the doc)."""
from __future__ import annotations

import dataclasses
import gzip
import os
import sys

import jax

from kdjax import config as config_lib
from kdjax import experiment
from kdjax import run as run_lib
from kdjax import workdir as workdir_lib
from kdjax.data import idx
from kdjax.methods.ce.method import ce_loss
from kdjax.train import checkpoint as ckpt_lib
from kdjax.train import loop
from kdjax.train import mesh as mesh_lib
from kdjax.train import state as state_lib
from kdjax.train.method import Method
from launch import failures
from tests.configs import tiny


@dataclasses.dataclass(frozen=True)
class Case:
    what: str        # the bad input, as the doc's first column says it
    cli: str         # how a user gives it (the doc's second column)
    message: str     # the line after 'error: ' ({tmp}: the test's folder; …: any text)
    attempt: object  # attempt(tmp) -> raises the error


def _validate(**overrides):
    def attempt(tmp):
        config_lib.validate(tiny.override(tiny.get_config(), **overrides))
    return attempt


def _typo_in_file(tmp):
    config = tiny.get_config()
    config.train.epoch = 1   # what a config file with a misspelt field does
    config_lib.validate(config)


def _trained(tmp, finished=False):
    """A workdir as a run leaves it: its config, a checkpoint, and results once finished."""
    workdir_lib.check_config(str(tmp), tiny.get_config())
    os.makedirs(tmp / "checkpoints" / "4", exist_ok=True)
    if finished:
        (tmp / "results.json").write_text("{}")


def _other_model(tmp):
    _trained(tmp)
    workdir_lib.check_config(str(tmp), tiny.override(tiny.get_config(),
                                                     **{"model.name": "cnn_small"}))


def _more_epochs(tmp):
    _trained(tmp)
    workdir_lib.check_config(str(tmp), tiny.override(tiny.get_config(), **{"train.epochs": 5}))


def _fewer_epochs(tmp):
    _trained(tmp, finished=True)
    workdir_lib.check_config(str(tmp), tiny.override(tiny.get_config(), **{"train.epochs": 1}),
                             allow=["train.epochs"])


def _workdir_in_use(tmp):
    with workdir_lib.claim(str(tmp)):
        with workdir_lib.claim(str(tmp)):
            pass


def _no_readable_checkpoint(tmp):
    config = tiny.override(tiny.get_config("ce"), **{"train.epochs": 1,
                                                     "train.keep_checkpoints": 1})
    splits, info = experiment.load_splits(config.data)
    model = experiment.build_model(config.model, info.num_classes)
    kw = dict(model=model, method=Method(loss=ce_loss), train=splits["train"], info=info)
    loop.fit(config, str(tmp), **kw)
    for root, _, files in os.walk(tmp / "checkpoints"):
        for name in files:
            with open(os.path.join(root, name), "wb") as f:
                f.write(b"\xff garbage")
    loop.fit(config, str(tmp), **kw)


def _fewer_epochs_than_trained(tmp):
    config = tiny.override(tiny.get_config("ce"), **{"train.epochs": 2,
                                                     "data.max_train_examples": 456})
    splits, info = experiment.load_splits(config.data)
    model = experiment.build_model(config.model, info.num_classes)
    kw = dict(model=model, method=Method(loss=ce_loss), train=splits["train"], info=info)
    loop.fit(config, str(tmp), **kw)   # as a run of 3 epochs killed after 2 leaves it
    loop.fit(tiny.override(config, **{"train.epochs": 1}), str(tmp), **kw)


def _diverging(tmp):
    config = tiny.override(tiny.get_config("ce"), **{"train.learning_rate": 1e30})
    splits, info = experiment.load_splits(config.data)
    loop.fit(config, str(tmp), model=experiment.build_model(config.model, info.num_classes),
             method=Method(loss=ce_loss), train=splits["train"], info=info)


def _truncated_idx(tmp):
    src = tmp / "train-images-idx3-ubyte.gz"
    with gzip.open(src, "wb") as f:
        f.write(bytes([0, 0, 8, 3]) + (10).to_bytes(4, "big") * 3 + bytes(1000))
    data = src.read_bytes()
    src.write_bytes(data[: len(data) // 2])
    idx.read_idx(src)


def _damaged_teacher(tmp):
    config = tiny.override(tiny.get_config("ce"), **{"train.epochs": 1})
    splits, info = experiment.load_splits(config.data)
    loop.fit(config, str(tmp / "teacher"), model=experiment.build_model(config.model,
                                                                         info.num_classes),
             method=Method(loss=ce_loss), train=splits["train"], info=info)
    for root, _, files in os.walk(tmp / "teacher" / "checkpoints"):
        for name in files:
            if "state" in root.split(os.sep):
                with open(os.path.join(root, name), "wb") as f:
                    f.write(b"\xff garbage")
    ckpt_lib.load_variables(str(tmp / "teacher"))


def _missing_teacher(tmp):
    ckpt_lib.load_variables(str(tmp / "nowhere"))


def _teacher_of_another_architecture(tmp):
    config = tiny.override(tiny.get_config(), **{"teacher.checkpoint": str(tmp / "teacher")})
    splits, info = experiment.load_splits(config.data)
    other = experiment.build_model(tiny.override(tiny.get_config(), **{
        "model.kwargs": {"hidden": (64,)}}).model, info.num_classes)
    variables = state_lib.init_variables(other, jax.random.PRNGKey(0), info.image_shape)
    saver = ckpt_lib.Checkpointer(str(tmp / "teacher" / "checkpoints"))
    saver.save(1, {"params": variables["params"], "batch_stats": {}})
    saver.close()
    experiment.get_teacher(config, str(tmp), splits, info, mesh_lib.make_mesh(
        config.mesh.axes))


def _shared_teacher_of_another_config(tmp):
    """A `teacher.workdir` that holds a teacher trained with other teacher settings."""
    from kdjax import stages
    shared = str(tmp / "teacher")
    trained = tiny.override(tiny.get_config(), **{"teacher.workdir": shared})
    stages.record(shared, "teacher", experiment.teacher_view(trained))
    (tmp / "teacher" / "results.json").write_text("{}")
    config = tiny.override(tiny.get_config(), **{"teacher.workdir": shared,
                                                 "teacher.epochs": 1})
    splits, info = experiment.load_splits(config.data)
    experiment.get_teacher(config, str(tmp / "run"), splits, info,
                           mesh_lib.make_mesh(config.mesh.axes))


def _unknown_method(tmp):
    run_lib.resolve("kdd")


def _method_raising_at_import(tmp):
    package = tmp / "boompkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "method.py").write_text("raise RuntimeError('boom at import')\n")
    sys.path.insert(0, str(tmp))
    try:
        run_lib.resolve("boompkg.method")
    finally:
        sys.path.remove(str(tmp))
        sys.modules.pop("boompkg", None)


def _alm_small_validation(tmp):
    config_lib.validate(tiny.override(tiny.get_config("alm"), **{"data.num_validation": 12}))


def _load(**overrides):
    def attempt(tmp):
        experiment.load_splits(tiny.override(tiny.get_config(), **overrides).data)
    return attempt



# launch.prepare and prepared folders (kdjax/data/prepare, kdjax/data/records.py)
def _prepare_md5(tmp):
    from kdjax.data.prepare import download
    (tmp / "cifar-10-python.tar.gz").write_bytes(b"a damaged download")
    download.fetch("cifar10", str(tmp), str(tmp / "cache"))


def _prepare_truncated_jpeg(tmp):
    from kdjax.data import prepare
    from tests.test_prepare import write_class_folders
    write_class_folders(str(tmp), per_class=1, splits=("train", "test"))
    victim = tmp / "train" / "bee" / "0.JPEG"
    victim.write_bytes(victim.read_bytes()[:200])
    prepare.prepare("folder", str(tmp), str(tmp / "out"), num_workers=1)


def _prepare_missing_source(tmp):
    from kdjax.data import prepare
    prepare.prepare("folder", str(tmp / "nowhere"), str(tmp / "out"))


def _prepare_wrong_layout(tmp):
    import numpy as np
    import scipy.io

    from kdjax.data import prepare
    for split in ("train", "test"):
        scipy.io.savemat(str(tmp / f"{split}_32x32.mat"),
                         {"X": np.zeros((4, 32, 32, 3), np.uint8), "y": np.ones((4, 1))})
    prepare.prepare("svhn", str(tmp), str(tmp / "out"), check_md5=False)


def _prepared_cifar(tmp) -> str:
    from kdjax.data import prepare
    from tests.test_prepare import write_cifar100_tarball
    write_cifar100_tarball(str(tmp / "c.tar.gz"), n_train=120, n_test=4)
    prepare.prepare("cifar100", str(tmp / "c.tar.gz"), str(tmp / "out"), num_workers=1,
                    check_md5=False, examples_per_shard=60)
    return str(tmp / "out")


def _prepared_damaged_shard(tmp):
    from kdjax.data.registry import load_dataset
    out = _prepared_cifar(tmp)
    shard = os.path.join(out, "train.array_record-00001-of-00002")
    data = bytearray(open(shard, "rb").read())
    data[len(data) // 2] ^= 0xFF
    open(shard, "wb").write(bytes(data))
    load_dataset(f"records:{out}")


def _prepared_more_classes(tmp):
    import json

    from kdjax.data.registry import load_dataset
    out = _prepared_cifar(tmp)
    path = os.path.join(out, "kdjax_dataset.json")
    meta = json.load(open(path))
    meta.update(num_classes=120, class_names=meta["class_names"] + ["x"] * 20)
    json.dump(meta, open(path, "w"))
    load_dataset(f"records:{out}")


CASES = [
    Case("misspelt field in a config file", "`c.train.epoch = 1` in the file",
         "config field train.epoch is not declared in kdjax/config.py; did you mean "
         "train.epochs?", _typo_in_file),
    Case("misspelt field on the command line", "`--config.train.epoch=3`",
         "--config.train.epoch: the config has no field 'epoch'; did you mean 'epochs'?", None),
    Case("negative epochs", "`--config.train.epochs=-2`",
         "config field train.epochs=-2 must be an integer >= 1", _validate(**{"train.epochs": -2})),
    Case("KD weight outside [0, 1]", "`--config.loss.kd_weight=1.5`",
         "config field loss.kd_weight=1.5 must be in [0, 1]",
         _validate(**{"loss.kd_weight": 1.5})),
    Case("zero temperature", "`--config.loss.temperature=0`",
         "config field loss.temperature=0.0 must be > 0",
         _validate(**{"loss.temperature": 0.0})),
    Case("a missing config file", "`--config=experiments/nosuch.py`",
         "config file experiments/nosuch.py does not exist", None),
    Case("an unknown method", "`--config.method=kdd`",
         "config.method='kdd' is unknown; known methods: alm, ce, … (or a module "
         "path / 'module:function')", _unknown_method),
    Case("a method module that raises at import", "`--config.method=boompkg.method`",
         "config.method='boompkg.method': importing boompkg.method failed at "
         "{tmp}/boompkg/method.py:1: RuntimeError: boom at import", _method_raising_at_import),
    Case("an unknown dataset", "`--config.data.name=nosuch`",
         "Unknown dataset 'nosuch'. Known: caltech_birds2011, cars196, cifar10, cifar100, digits, "
         "fashion_mnist, fgvc_aircraft, imagenet2012, mnist, oxford_iiit_pet, stanford_dogs, "
         "svhn_cropped, tiny_imagenet (or 'tfds:<name>' for another TFDS image-classification "
         "dataset, 'records:<dir>' for a folder written by launch.prepare, or your own reader "
         "as 'package.module:function')",
         _load(**{"data.name": "nosuch"})),
    Case("your own model's module does not import", "`--config.model.name=mynets:TinyNet`",
         "config field model.name 'mynets:TinyNet': module 'mynets' does not import (no module "
         "named 'mynets'; is its folder on PYTHONPATH?)",
         _validate(**{"model.name": "mynets:TinyNet"})),
    Case("your own dataset reader is not in its module", "`--config.data.name=tests.configs.tiny:load`",
         "config field data.name 'tests.configs.tiny:load': module tests.configs.tiny has no "
         "'load'", _validate(**{"data.name": "tests.configs.tiny:load"})),
    Case("a validation split as large as the training split",
         "`--config.data.num_validation=5000` on digits",
         "config.data.num_validation=5000 must be below the 1437 training examples of digits",
         _load(**{"data.num_validation": 5000})),
    Case("ALM-KD's held-out split smaller than one meta-batch",
         "`--config.data.num_validation=12` with `alm.variant='alm'`, batch 64",
         "config field data.num_validation=12 must be >= data.batch_size=64: "
         "alm.variant='alm' draws validation minibatches of data.batch_size held-out examples "
         "for its meta-update", _alm_small_validation),
    Case("a different model in a used workdir", "same `--workdir`, `--config.model.name=...`",
         "workdir {tmp} holds a run with a different config: model.name: 'mlp' -> "
         "'cnn_small'; use a new --workdir (or move this one away) to run this config",
         _other_model),
    Case("more epochs in a used workdir", "same `--workdir`, `--config.train.epochs=5`",
         "workdir {tmp} holds a run with a different config: train.epochs: 3 -> 5; pass "
         "--allow_changes=train.epochs to continue with them", _more_epochs),
    Case("fewer epochs than a finished run", "`--config.train.epochs=1 "
         "--allow_changes=train.epochs` after 3",
         "train.epochs: epochs done 3 > requested 1 (workdir {tmp} holds a finished run); a run "
         "can be extended, not shrunk: use a new --workdir", _fewer_epochs),
    Case("fewer epochs than an unfinished run trained", "`--config.train.epochs=1 "
         "--allow_changes=train.epochs` after 2 of 3 epochs",
         "{tmp}/checkpoints: epochs done 2 > requested 1; a run can be extended, not shrunk: "
         "use a new --workdir", _fewer_epochs_than_trained),
    Case("a workdir another run writes to", "the same `--workdir` while a run is at work",
         "workdir {tmp} is in use by PID … on … (since …); wait for it to finish or stop it, "
         "or use another --workdir", _workdir_in_use),
    Case("an empty workdir", "`--workdir=`",
         "--workdir is empty; name a folder for the run's checkpoints and results", None),
    Case("a full disk", "the workdir's file system fills up",
         "no space left on device: … is full (writing …); earlier checkpoints are intact "
         "(latest: step … in …): free space, then run the same command to resume", None),
    Case("Ctrl-C", "SIGINT while the run trains",
         "interrupted; run the same command to resume from step … (the last checkpoint, in …)",
         None),
    Case("no readable checkpoint in the workdir", "every checkpoint file damaged",
         "no readable checkpoint in {tmp}/checkpoints (tried steps [19]); move it away to "
         "start over", _no_readable_checkpoint),
    Case("a teacher checkpoint of another architecture",
         "`--config.teacher.checkpoint=DIR` holding another model",
         "teacher checkpoint {tmp}/teacher does not fit the model (MLP): layer "
         "params/dense_0/bias has shape (64,) there, (128,) in the model; fix the "
         "model's config or the checkpoint", _teacher_of_another_architecture),
    Case("a diverging run", "`--config.train.learning_rate=1e30`",
         "non-finite training loss (…) at step … (epoch 0); lower config.train.learning_rate or "
         "check the inputs, in a new --workdir (this one holds the run's checkpoints, last good "
         "in {tmp}/checkpoints)", _diverging),
    Case("a shared teacher folder trained with another teacher config",
         "`--config.teacher.workdir=DIR` of a teacher with other settings",
         "{tmp}/teacher holds a teacher trained with another config (teacher.epochs, "
         "train.epochs differ); use another folder or the config recorded in "
         "{tmp}/teacher/stage.json", _shared_teacher_of_another_config),
    Case("a truncated data file", "a cut `train-images-idx3-ubyte.gz`",
         "{tmp}/train-images-idx3-ubyte.gz: truncated or corrupt data file (Compressed file "
         "ended before the end-of-stream marker was reached); reinstall or re-download it",
         _truncated_idx),
    Case("a damaged teacher checkpoint", "`--config.teacher.checkpoint=DIR`, its files damaged",
         "checkpoint {tmp}/teacher/checkpoints/19 is unreadable (…); train it again or point "
         "to another checkpoint", _damaged_teacher),
    Case("a missing teacher checkpoint", "`--config.teacher.checkpoint=DIR` without one",
         "missing checkpoint: {tmp}/nowhere/checkpoints does not exist (train the teacher "
         "first or fix config.teacher.checkpoint)", _missing_teacher),
    # launch.prepare (one line, exit 1) and the prepared folders it writes
    Case("a download whose md5 is not the published one",
         "`launch.prepare --dataset=cifar10 --source=FILE`",
         "{tmp}/cifar-10-python.tar.gz: md5 … is not the published "
         "c58f30108f718f92721af3b95e74349a (truncated or corrupt download: delete it and fetch "
         "it again; --nocheck_md5 skips the check)", _prepare_md5),
    Case("a truncated JPEG", "`launch.prepare --dataset=folder` over a cut image",
         "{tmp}/train/bee/0.JPEG: not a decodable image (…)", _prepare_truncated_jpeg),
    Case("a missing source folder", "`launch.prepare --source=DIR` without DIR",
         "folder: --source must be the extracted dataset folder (got '{tmp}/nowhere'); see "
         "kdjax.data.prepare.readers for the layout", _prepare_missing_source),
    Case("a source file of the wrong layout", "an SVHN `.mat` whose X is (N, 32, 32, 3)",
         "{tmp}/train_32x32.mat: expected X (32, 32, 3, N) and y (N,), got (4, 32, 32, 3), "
         "(4,)", _prepare_wrong_layout),
    Case("a damaged shard in a prepared folder", "a byte changed in a shard",
         "{tmp}/out/train.array_record-00001-of-00002: sha256 differs from kdjax_dataset.json "
         "(damaged or replaced shard); prepare the folder again", _prepared_damaged_shard),
    Case("num_classes edited in a prepared folder", "`num_classes` in kdjax_dataset.json",
         "{tmp}/out/kdjax_dataset.json: num_classes=120 is larger than the 100 classes the "
         "train labels were prepared with", _prepared_more_classes),
]


def message_of(case: Case, tmp) -> str:
    """The one line the entry point prints for `case` (after 'error: ')."""
    try:
        case.attempt(tmp)
    except Exception as err:  # noqa: BLE001 - an unexpected one re-raises
        if not failures.expected(err):
            raise
        return failures.one_line(err).replace(str(tmp), "{tmp}")
    raise AssertionError(f"{case.what}: no error")


def matches(message: str, expected: str) -> bool:
    """`message` equals `expected`, where '…' in `expected` stands for any text."""
    import re
    return re.fullmatch(".*".join(map(re.escape, expected.split("…"))), message) is not None


def render() -> str:
    """docs/errors.md."""
    lines = ["# Bad inputs and the one line each gets",
             "",
             "Expected failures print `error: <message>` and exit 1 (`--traceback` shows the "
             "Python traceback). Each row is checked by `tests/test_bad_inputs.py`, which also "
             "keeps this page equal to `tests/bad_inputs.py` (`python -m tests.bad_inputs` "
             "rewrites it). `{tmp}` stands for the path in question, `…` for a list that grows.",
             "",
             "Which errors are one line (`launch/failures.py`): a `kdjax.errors.Error` (a method "
             "plug-in raises one for a failure its user can fix), an error kdjax or launch "
             "raises itself with a `raise` statement, an OSError naming a path, and a full disk. "
             "An error from inside a library (numpy, jax, flax, orbax) is a bug and keeps its "
             "traceback. Ctrl-C exits with status 130, the others with 1. The rows without a "
             "function in `tests/bad_inputs.py` are checked end to end by "
             "`tests/test_bad_inputs.py` and `tests/test_faults.py` (every runner in the slow "
             "suite: a second writer, kill -9, Ctrl-C, a full disk, each resumed to the "
             "uninterrupted result).",
             "",
             "An unreadable *latest* checkpoint is not an error: it is reported by name "
             "(`warning: checkpoint <dir>/<step> is unreadable (...); trying the previous one`), "
             "kept aside as `<dir>/unreadable-<step>`, and the run resumes from the newest "
             "readable one (`tests/test_train.py`). Orbax's INFO and WARNING lines are hidden "
             "unless `--verbosity` is given.",
             "",
             "| bad input | given as | message |", "|---|---|---|"]
    for case in CASES:
        lines.append(f"| {case.what} | {case.cli} | `{case.message}` |")
    return "\n".join(lines) + "\n"


DOC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs",
                   "errors.md")

if __name__ == "__main__":
    with open(DOC, "w") as f:
        f.write(render())
