"""Cross-entropy on the ground-truth labels as a `Method` (no teacher).

Its section `ce` (declared here, as a single-file method declares it): `warm_start_epochs` > 0
first trains a CE student for that many epochs in `<workdir>/warm_start` and starts the run
from it — DiSK's A.5 recipe, so a table's CE row trains by the same recipe as its DiSK row.
"""
from __future__ import annotations

import copy

import ml_collections

from kdjax import losses
from kdjax.methods.api import Plan
from kdjax.train.method import Method

NEEDS_TEACHER = False   # the reproduce harness shares no teacher folder for it


def section() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.warm_start_epochs = 0    # CE epochs of a warm start the run starts from (0 = none)
    return c


CHECKS = {"warm_start_epochs": (lambda v: v >= 0, ">= 0")}


def ce_loss(logits, features, batch):
    """Plain cross-entropy on the ground truth."""
    return losses.cross_entropy(logits, batch["label"])


def warm_start(config, run, epochs: int) -> tuple[dict, dict] | None:
    """A.5's CE warm start: a CE student of `config.model` trained `epochs` epochs (seed
    `config.seed`) in `<workdir>/warm_start` -> (variables, its results: epochs, test
    accuracy); None when epochs is 0."""
    if epochs < 1:
        return None
    wcfg = copy.deepcopy(config)
    with wcfg.unlocked():
        wcfg.method = "ce"
        wcfg.train.epochs = epochs
    model = run.model(config.model)
    return run.stage("warm_start", wcfg, Method(loss=ce_loss), record=lambda result, v: {
        "epochs": epochs, "test_accuracy": run.accuracy(model, v, run.splits["test"])})


def make_method(config, run) -> Plan:
    warm = warm_start(config, run, config.ce.warm_start_epochs)
    if warm is None:
        return Plan(Method(loss=ce_loss))
    summary = {"warm_start": {"epochs": warm[1]["epochs"],
                              "test_accuracy": warm[1]["test_accuracy"]}}
    return Plan(Method(loss=ce_loss), init_variables=warm[0], summarize=lambda result: summary)
