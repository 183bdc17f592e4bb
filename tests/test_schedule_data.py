"""The learning-rate schedule as data (kdjax.train.optim): the same values and parameters as
optax's closure schedules it replaced, and one traced train step for fits whose steps per
epoch differ (RAD's rounds)."""
import itertools

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from kdjax import experiment
from kdjax.data import Split
from kdjax.methods.ce.method import ce_loss
from kdjax.train import compiled, loop, optim
from kdjax.train.method import Method
from kdjax.train.state import create_train_state
from kdjax.train.step import make_train_step
from tests import fit_probes
from tests.configs import tiny


def optax_schedule(cfg, steps_per_epoch):
    """The schedule as kdjax built it before (optax closures over Python constants)."""
    base = float(cfg.learning_rate)
    total = int(cfg.epochs * steps_per_epoch)
    warmup = int(cfg.get("warmup_epochs", 0) * steps_per_epoch)
    kind = cfg.schedule
    if kind == "constant":
        sched = optax.constant_schedule(base)
    elif kind == "cosine":
        sched = optax.cosine_decay_schedule(base, max(total - warmup, 1))
    elif kind == "step":
        bounds = {int(e * steps_per_epoch): float(cfg.decay_factor) for e in cfg.decay_epochs}
        sched = optax.piecewise_constant_schedule(base, bounds)
    elif kind == "rad_piecewise":
        e = cfg.epochs
        scales = {round(2 * e / 5): 0.1, round(3 * e / 5): 0.1, round(4 * e / 5): 0.1,
                  round(9 * e / 10): 0.5}
        sched = optax.piecewise_constant_schedule(
            base, {int(k * steps_per_epoch): v for k, v in scales.items()})
    else:
        sched = optax.piecewise_constant_schedule(
            base, {int(k * steps_per_epoch) - warmup: 0.1 for k in (35, 65, 85)})
    if warmup:
        sched = optax.join_schedules([optax.linear_schedule(0.0, base, warmup), sched], [warmup])
    return sched


def _cfg(kind, epochs, warmup=0.0, lr=0.1, **kw):
    return ml_collections.ConfigDict(dict(
        schedule=kind, epochs=epochs, warmup_epochs=warmup, learning_rate=lr,
        decay_epochs=kw.get("decay_epochs", (3, 6, 8)), decay_factor=0.2, optimizer="sgd",
        momentum=0.9, nesterov=False, weight_decay=5e-4, grad_clip_norm=0.0))


CASES = [("constant", 10, 0.0), ("constant", 10, 2.0), ("cosine", 10, 0.0), ("cosine", 10, 2.5),
         ("step", 10, 0.0), ("step", 10, 1.0), ("rad_piecewise", 10, 0.0),
         ("rad_piecewise", 2, 0.0), ("imagenet_piecewise", 100, 5.0), ("cosine", 3, 0.4)]


@pytest.mark.parametrize("kind,epochs,warmup", CASES)
def test_schedule_values_are_optaxs_bit_for_bit(kind, epochs, warmup):
    for spe in (1, 3, 7):
        cfg = _cfg(kind, epochs, warmup, lr=0.05)
        steps = jnp.arange(int(epochs * spe) + 3, dtype=jnp.int32)
        # Scalar programs, as in the train step (XLA:CPU's vectorised division rounds
        # differently from its scalar one).
        sched = optax_schedule(cfg, spe)
        want = jax.jit(lambda s: jax.lax.map(lambda c: jnp.float32(sched(c)), s))(steps)
        data = optim.schedule_data(cfg, spe)
        got = jax.jit(lambda d, s: jax.lax.map(lambda c: optim.learning_rate(d, c), s))(
            data, steps)
        np.testing.assert_array_equal(got, want, err_msg=f"{kind} warmup={warmup} spe={spe}")
        host = optim.make_schedule(cfg, spe)
        np.testing.assert_array_equal([host(int(s)) for s in steps[::5]], got[::5])


def test_collapsed_boundaries_keep_optaxs_table():
    """rad_piecewise with 2 epochs: round(2e/5) == round(3e/5), so optax's dict kept one entry;
    the padded table must not apply the 0.1 twice."""
    data = optim.schedule_data(_cfg("rad_piecewise", 2), 10)
    assert data["boundaries"].shape == (4,)
    assert list(data["boundaries"][2:]) == [np.iinfo(np.int32).max] * 2
    with pytest.raises(ValueError, match="schedule='bogus'"):
        optim.schedule_data(_cfg("bogus", 2), 10)


@pytest.mark.parametrize("optimizer,warmup", [("sgd", 1.0), ("adam", 0.0)])
def test_train_steps_match_the_optax_schedule_optimizer(optimizer, warmup):
    """N real train steps (tiny MLP, cosine + warm-up, momentum, weight decay) give the same
    parameters with the schedule as data as with optax's closure schedule."""
    config = tiny.get_config()
    cfg = _cfg("cosine", 3, warmup, lr=0.1)
    cfg.optimizer = optimizer
    spe = 4
    if optimizer == "sgd":
        old_tx = optax.chain(optax.add_decayed_weights(cfg.weight_decay),
                             optax.sgd(optax_schedule(cfg, spe), momentum=cfg.momentum))
    else:
        old_tx = optax.chain(optax.add_decayed_weights(cfg.weight_decay),
                             optax.adam(optax_schedule(cfg, spe)))
    new_tx, _ = optim.make_optimizer(cfg, 1)   # re-targeted to spe below, as fit does
    model = experiment.build_model(config.model, 10)
    rng = np.random.default_rng(0)
    batches = [{"image": rng.integers(0, 17, (16, 8, 8, 1)).astype(np.uint8),
                "label": rng.integers(0, 10, 16).astype(np.int32),
                "mask": np.ones(16, np.float32), "id": np.arange(16)} for _ in range(3 * spe)]
    step = jax.jit(make_train_step(model, Method(loss=ce_loss), mean=(8.0,), std=(4.0,)))
    params = []
    for tx in (old_tx, new_tx):
        state = create_train_state(model, tx, jax.random.key(0), (8, 8, 1))
        if tx is new_tx:
            state = state.replace(opt_state=optim.with_schedule(
                state.opt_state, optim.schedule_data(cfg, spe)))
        for batch in batches:
            state, _ = step(state, batch, jax.random.key(1))
        params.append(jax.device_get(state.params))
    for a, b in zip(jax.tree.leaves(params[0]), jax.tree.leaves(params[1])):
        np.testing.assert_array_equal(a, b)


def test_rounds_with_different_steps_per_epoch_trace_the_step_once(tmp_path, monkeypatch):
    """Two fits on 320 and 448 examples (5 and 7 steps per epoch, as RAD's growing P) share
    one traced train step, and the second one's parameters equal a fresh process's."""
    config = tiny.override(tiny.get_config(), **{"train.epochs": 2})
    splits, info = experiment.load_splits(config.data)
    train = splits["train"]
    subsets = [Split(train.images[:n], train.labels[:n], train.ids[:n]) for n in (320, 448)]
    traces = []
    fit_probes.count_traces(monkeypatch, traces)
    results = []
    for i, split in enumerate(subsets):
        model = experiment.build_model(config.model, info.num_classes)
        results.append(loop.fit(config, str(tmp_path / str(i)), model=model,
                                method=Method(loss=ce_loss), train=split, info=info))
    assert len(traces) == 1, f"two rounds traced the train step {len(traces)} times"
    assert [int(r.state.step) for r in results] == [10, 14]
    compiled.clear()
    model = experiment.build_model(config.model, info.num_classes)
    fresh = loop.fit(config, str(tmp_path / "fresh"), model=model, method=Method(loss=ce_loss),
                     train=subsets[1], info=info)
    for a, b in itertools.zip_longest(jax.tree.leaves(jax.device_get(results[1].state.params)),
                                      jax.tree.leaves(jax.device_get(fresh.state.params))):
        np.testing.assert_array_equal(a, b)
    last = results[1].state.opt_state
    np.testing.assert_allclose(optim.current_learning_rate(last),
                               optax_schedule(config.train, 7)(14), rtol=0)
