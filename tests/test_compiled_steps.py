"""kdjax.train.compiled: every fit / predict_split / evaluate_split with the same key reuses one
jitted step (one trace and compile per shape), with the numbers of a fresh build."""
import jax
import numpy as np
import pytest

from kdjax import experiment
from kdjax.methods.ce.method import ce_loss
from kdjax.train import compiled, loop
from kdjax.train.method import Method
from tests import fit_probes
from tests.configs import tiny


@pytest.fixture(scope="module")
def digits():
    return experiment.load_splits(tiny.get_config().data)


def test_fits_share_one_train_step_and_keep_their_numbers(tmp_path, digits, monkeypatch):
    splits, info = digits
    config = tiny.override(tiny.get_config(), **{"train.epochs": 1})
    traces = []
    fit_probes.count_traces(monkeypatch, traces)
    params = []
    for i in range(2):  # a fresh module and Method per fit, as multi-round methods build them
        model = experiment.build_model(config.model, info.num_classes)
        res = loop.fit(config, str(tmp_path / str(i)), model=model, method=Method(loss=ce_loss),
                       train=splits["train"], info=info)
        params.append(jax.device_get(res.state.params))
    assert len(traces) == 1, f"two equal fits traced the train step {len(traces)} times"
    compiled.clear()
    model = experiment.build_model(config.model, info.num_classes)
    fresh = loop.fit(config, str(tmp_path / "fresh"), model=model, method=Method(loss=ce_loss),
                     train=splits["train"], info=info)
    assert len(traces) == 2
    for a, b, c in zip(*(jax.tree.leaves(p) for p in
                         (params[0], params[1], jax.device_get(fresh.state.params)))):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)


def test_predict_and_eval_steps_are_cached_by_model_and_normalisation():
    config = tiny.get_config()
    a = experiment.build_model(config.model, 10)
    b = experiment.build_model(config.model, 10)
    assert compiled.predict_step(a, (0.5,), (0.25,)) is compiled.predict_step(b, [0.5], [0.25])
    assert compiled.eval_step(a, (0.5,), (0.25,)) is compiled.eval_step(b, (0.5,), (0.25,))
    assert compiled.eval_step(a, (0.5,), (0.25,)) is not compiled.eval_step(a, (0.4,), (0.25,))
    assert compiled.canonical_model(b) is compiled.canonical_model(a)
