"""From a config to the pieces a run needs: data splits, models, a trained or loaded teacher.

Every method's runner starts here, so all of them read the same config fields the same way.
"""
from __future__ import annotations

import copy
import os

import jax
import ml_collections
import numpy as np

from kdjax.data import DatasetInfo, Split, load_dataset, split_validation, validate_split
from kdjax.models import get_model, load_teacher_variables
from kdjax.train import checkpoint as ckpt_lib
from kdjax.train import loop
from kdjax.train import mesh as mesh_lib
from kdjax.train.method import Method
from kdjax.methods.ce.method import ce_loss


def load_splits(data: ml_collections.ConfigDict) -> tuple[dict[str, Split], DatasetInfo]:
    """train / validation (held out of train, `num_validation`) / test, validated."""
    splits, info = load_dataset(data.name, data_dir=data.get("data_dir") or None)
    train = splits["train"]
    if data.get("max_train_examples"):
        keep = np.random.default_rng(data.get("subset_seed", 0)).permutation(
            len(train))[: data.max_train_examples]
        train = train.subset(np.sort(keep))
    out = {"test": splits["test"]}
    if data.num_validation >= len(train):
        raise ValueError(f"config.data.num_validation={data.num_validation} must be below the "
                         f"{len(train)} training examples of {data.name}")
    if data.num_validation:
        out["train"], out["validation"] = split_validation(train, data.num_validation,
                                                           data.get("split_seed", 0))
    else:
        out["train"] = train
    if data.get("max_test_examples"):
        out["test"] = out["test"].subset(np.arange(min(data.max_test_examples,
                                                       len(out["test"]))))
    for name, split in out.items():
        validate_split(split, info.num_classes)
    return out, info


def build_model(model_cfg: ml_collections.ConfigDict, num_classes: int):
    kwargs = dict(model_cfg.get("kwargs", {}) or {})
    if model_cfg.get("dtype", "float32") != "float32":
        kwargs["dtype"] = jax.numpy.dtype(model_cfg.dtype)
    return get_model(model_cfg.name, num_classes, **kwargs)


def teacher_config(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """The config that trains the teacher: CE, the teacher's model and epochs."""
    cfg = copy.deepcopy(config)
    with cfg.unlocked():
        cfg.method = "ce"
        cfg.model.name = config.teacher.name
        cfg.model.kwargs = dict(config.teacher.get("kwargs", {}) or {})
        cfg.train.epochs = config.teacher.epochs
        if config.teacher.get("learning_rate"):
            cfg.train.learning_rate = config.teacher.learning_rate
    return cfg


def get_teacher(config: ml_collections.ConfigDict, workdir: str, splits: dict[str, Split],
                info: DatasetInfo, mesh) -> tuple[loop.Teacher, dict]:
    """Load the teacher from `config.teacher.checkpoint`, or train it into `<workdir>/teacher`.

    Returns the frozen teacher (with its soft-label cache on the train split when
    `config.teacher.cache_logits` and inputs are not augmented) and its summary.
    """
    tcfg = teacher_config(config)
    model = build_model(tcfg.model, info.num_classes)
    summary: dict = {}
    if config.teacher.checkpoint:
        variables = load_teacher_variables(config.teacher.checkpoint, tcfg.model.name,
                                           info.num_classes, tcfg.model.get("kwargs"))
        summary["source"] = config.teacher.checkpoint
    else:
        tdir = os.path.join(workdir, "teacher")
        done = loop.read_results(tdir)
        if done is None:
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
    summary["test_accuracy"] = loop.evaluate_split(
        model, variables, splits["test"], info, config.data.eval_batch_size, mesh)[
            "eval/accuracy"]
    if not config.teacher.checkpoint:
        loop.write_results(os.path.join(workdir, "teacher"), summary)
    cache = None
    if config.teacher.cache_logits and not config.data.augment:
        cache, _ = loop.predict_split(model, variables, splits["train"], info,
                                      config.data.eval_batch_size, mesh)
    return loop.Teacher(model=model, variables=variables, logits_cache=cache), summary
