"""From a config to the pieces a run needs: data splits, models, a trained or loaded teacher.

Every method's runner starts here, so all of them read the same config fields the same way.
"""
from __future__ import annotations

import copy
import os

import jax
import ml_collections
import numpy as np

from kdjax import errors, methods
from kdjax import stages
from kdjax.data import (DatasetInfo, Split, flip_labels, load_dataset, split_validation,
                        validate_split)
from kdjax.models import from_torch, get_model, is_torch_checkpoint
from kdjax.train import checkpoint as ckpt_lib
from kdjax.train import loop
from kdjax.train import mesh as mesh_lib
from kdjax.train import state as state_lib
from kdjax.train.method import Method
from kdjax.methods.api import teacher_seed
from kdjax.methods.ce.method import ce_loss


def load_teacher_variables(path: str, model_name: str, num_classes: int,
                           model_kwargs=None) -> dict:
    """`config.teacher.checkpoint` -> variables: a .pth/.pt file is converted on load
    (`kdjax.models.from_torch`), anything else is a kdjax run (workdir or its checkpoints/ dir)
    read by `checkpoint.load_variables`."""
    if is_torch_checkpoint(path):
        return from_torch(model_name, num_classes, path, model_kwargs)
    return ckpt_lib.load_variables(path)


def load_splits(data: ml_collections.ConfigDict) -> tuple[dict[str, Split], DatasetInfo]:
    """train / validation (held out of train, `num_validation`) / test, validated; with
    `data.label_noise`, that fraction of the training labels flipped to another class."""
    splits, info = load_dataset(data.name, data_dir=data.data_dir or None)
    train = splits["train"]
    if data.max_train_examples:
        keep = np.random.default_rng(data.subset_seed).permutation(
            len(train))[: data.max_train_examples]
        train = train.subset(np.sort(keep))
    out = {"test": splits["test"]}
    if data.num_validation >= len(train):
        raise ValueError(f"config.data.num_validation={data.num_validation} must be below the "
                         f"{len(train)} training examples of {data.name}")
    if data.num_validation:
        out["train"], out["validation"] = split_validation(train, data.num_validation,
                                                           data.split_seed)
    else:
        out["train"] = train
    if data.max_test_examples:
        out["test"] = out["test"].subset(np.arange(min(data.max_test_examples,
                                                       len(out["test"]))))
    for name, split in out.items():
        validate_split(split, info.num_classes)
    if data.get("label_noise", 0.0) > 0:
        out["train"], _ = flip_labels(out["train"], data.label_noise, info.num_classes,
                                      data.noise_seed)
    return out, info


def build_model(model_cfg: ml_collections.ConfigDict, num_classes: int):
    kwargs = dict(model_cfg.kwargs or {})
    if model_cfg.get("dtype", "float32") != "float32":   # the teacher section has no dtype
        kwargs["dtype"] = jax.numpy.dtype(model_cfg.dtype)
    return get_model(model_cfg.name, num_classes, **kwargs)


def teacher_dir(config: ml_collections.ConfigDict, workdir: str) -> str:
    """Where the teacher trains: `teacher.workdir`, or `<workdir>/teacher` when it is ''."""
    return config.teacher.workdir or os.path.join(workdir, "teacher")


def teacher_config(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """The config that trains the teacher: CE, the teacher's model, epochs and seed."""
    cfg = copy.deepcopy(config)
    with cfg.unlocked():
        cfg.method = "ce"
        cfg.seed = teacher_seed(config)
        cfg.model.name = config.teacher.name
        cfg.model.kwargs = dict(config.teacher.get("kwargs", {}) or {})
        cfg.train.epochs = config.teacher.epochs
        if config.teacher.get("learning_rate"):
            cfg.train.learning_rate = config.teacher.learning_rate
    return cfg


# teacher.* fields that say where the teacher lives or how it is used, not how it trains.
_TEACHER_PLACE = ("checkpoint", "workdir", "cache_logits")


def teacher_view(config: ml_collections.ConfigDict) -> dict:
    """Everything that determines the teacher `get_teacher` trains: the data section, the
    teacher's model / epochs / learning rate / seed, the train recipe and the mesh (as
    `teacher_config` sets them), and the fields of the method's section listed in its config
    module's `TEACHER_FIELDS` (e.g. ALM's label noise and early-stop epochs). Recorded in the
    teacher's folder (`kdjax.stages`)."""
    t = teacher_config(config).to_dict()
    view = {"seed": t["seed"], "data": _data_view(t["data"]), "model": t["model"],
            "train": t["train"],
            "mesh": t["mesh"],
            "teacher": {k: v for k, v in t["teacher"].items() if k not in _TEACHER_PLACE}}
    module = methods.declaration(config.method)
    name = methods.section_name(config.method)
    for f in getattr(module, "TEACHER_FIELDS", ()):
        view[f"{name}.{f}"] = t[name][f]
    return view


def teacher_key(config: ml_collections.ConfigDict) -> str:
    """16 hex digits of sha256 over `teacher_view`. Two runs with the same key can share one
    teacher folder."""
    return stages.key_of(teacher_view(config))


def stage_view(config: ml_collections.ConfigDict) -> dict:
    """What determines a CE stage trained with `config` (DiSK's warm start, LR+DS's warm-up):
    its seed, data, model, train recipe and mesh."""
    t = config.to_dict()
    return {k: _data_view(t[k]) if k == "data" else t[k]
            for k in ("seed", "data", "model", "train", "mesh")}


def _data_view(data: dict) -> dict:
    """The data section as views record it; without label noise, as it was before
    `data.label_noise` existed (so recorded views and keys still match)."""
    return {k: v for k, v in data.items()
            if data.get("label_noise") or k not in ("label_noise", "noise_seed")}


def get_teacher(config: ml_collections.ConfigDict, workdir: str, splits: dict[str, Split],
                info: DatasetInfo, mesh) -> tuple[loop.Teacher, dict]:
    """Load the teacher from `config.teacher.checkpoint`, or train it (seed `teacher_seed`)
    into `teacher_dir(config, workdir)` (once per folder: `kdjax.stages.claim`), or read it
    back from there.

    Returns the frozen teacher (with its soft-label cache on the train split when
    `config.teacher.cache_logits` and inputs are not augmented) and its summary.
    """
    tcfg = teacher_config(config)
    model = build_model(tcfg.model, info.num_classes)
    summary: dict = {}
    if config.teacher.checkpoint:
        variables = load_teacher_variables(config.teacher.checkpoint, tcfg.model.name,
                                           info.num_classes, tcfg.model.get("kwargs"))
        check_variables(model, variables, info.image_shape,
                        f"teacher checkpoint {config.teacher.checkpoint}")
        summary["source"] = config.teacher.checkpoint
        variables = mesh_lib.replicate(variables, mesh)
        summary["test_accuracy"] = _test_accuracy(model, variables, splits, info, config, mesh)
    else:
        tdir = teacher_dir(config, workdir)
        with stages.claim(tdir, "teacher", teacher_view(config)) as train:
            if train:
                result = loop.fit(tcfg, tdir, model=model, method=Method(loss=ce_loss),
                                  train=splits["train"],
                                  info=info, evals={"validation": splits["validation"]}
                                  if "validation" in splits else None, mesh=mesh)
                variables = loop.variables_of(result.state)
                summary["train_wall_time"] = result.wall_time
            else:
                variables = ckpt_lib.load_variables(tdir)
            summary["source"] = tdir
            variables = mesh_lib.replicate(variables, mesh)
            summary["test_accuracy"] = _test_accuracy(model, variables, splits, info, config,
                                                      mesh)
            if train:
                loop.write_results(tdir, summary)
    cache = None
    if config.teacher.cache_logits and not config.data.augment:
        cache, _ = loop.predict_split(model, variables, splits["train"], info,
                                      config.data.eval_batch_size, mesh)
    return loop.Teacher(model=model, variables=variables, logits_cache=cache), summary


def _test_accuracy(model, variables, splits, info, config, mesh) -> float:
    return loop.evaluate_split(model, variables, splits["test"], info,
                               config.data.eval_batch_size, mesh)["eval/accuracy"]


def check_variables(model, variables: dict, input_shape: tuple[int, ...], what: str) -> None:
    """Raise `errors.ConfigError` naming `what`, the first layer that differs and both shapes
    when `variables` do not fit `model` (e.g. a teacher checkpoint of another architecture)."""
    from flax import traverse_util
    want = jax.eval_shape(lambda: state_lib.init_variables(model, jax.random.PRNGKey(0),
                                                           input_shape))
    flat = {}
    for name, tree in (("want", want), ("got", variables)):
        flat[name] = {"/".join(k): tuple(v.shape) for k, v in traverse_util.flatten_dict(
            {c: tree.get(c) or {} for c in ("params", "batch_stats")}).items()}
    for key in sorted(set(flat["want"]) | set(flat["got"])):
        got, shape = flat["got"].get(key), flat["want"].get(key)
        if got == shape:
            continue
        layer = f"layer {key} has shape {got} there, {shape} in the model"
        if got is None:
            layer = f"layer {key} (shape {shape} in the model) is missing there"
        elif shape is None:
            layer = f"layer {key} (shape {got} there) is not in the model"
        raise errors.ConfigError(f"{what} does not fit the model ({type(model).__name__}): "
                                 f"{layer}; fix the model's config or the checkpoint")
