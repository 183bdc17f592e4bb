"""Jitted steps shared by every `fit`, `predict_split` and `evaluate_split` call of a process.

`jax.jit` reuses an executable only for the same function object and the same static parts of
its arguments. Built afresh per call, a step is re-traced, re-lowered and re-compiled by every
`fit` of a multi-round method (RAD's rounds x strategies x trials, sweeps). This module keeps one
jitted function per key of everything the step closes over, so a step compiles once per
(key, input shapes):

- eval / predict steps: (model, mean, std);
- optimizer: its structure (`optim.structure_key`: optimizer, momentum, Nesterov, weight
  decay, clipping): equal structures give the same `tx` object, and `TrainState.tx` is a
  static field of the state's tree structure. The learning-rate schedule is data in the
  optimizer state (`optim.ScheduleState`), so fits whose steps per epoch or horizon differ
  (RAD's rounds) share the `tx` and the compiled step;
- train step: (model, the method's loss and pre-step functions, mean, std, augment, teacher
  modules, shardings);
- models: one canonical instance per equal module (`TrainState.apply_fn` is a bound method,
  and bound methods compare equal only for the same instance).

Anything unhashable in a key (e.g. a module with a list field) falls back to a fresh build.
"""
from __future__ import annotations

import collections
import dataclasses
from typing import Any, Callable, Hashable, Sequence

import jax
import ml_collections
import optax

from kdjax.train.optim import make_optimizer, structure_key
from kdjax.train.step import make_eval_step, make_predict_step

MAX_ENTRIES = 64  # per cache; the least recently used entry goes first
_caches: dict[str, collections.OrderedDict] = collections.defaultdict(collections.OrderedDict)


def _cached(kind: str, key: Hashable, build: Callable[[], Any]) -> Any:
    """`build()`'s value, kept under `key` in the `kind` cache (built fresh if unhashable)."""
    cache = _caches[kind]
    try:
        hash(key)
    except TypeError:
        return build()
    if key in cache:
        cache.move_to_end(key)
        return cache[key]
    value = cache[key] = build()
    if len(cache) > MAX_ENTRIES:
        cache.popitem(last=False)
    return value


def clear() -> None:
    """Forget every cached step (tests; freeing executables)."""
    _caches.clear()


def _floats(values) -> tuple[float, ...]:
    return tuple(float(v) for v in values)


def canonical_model(model: Any) -> Any:
    """The first-seen module equal to `model` (same class and fields)."""
    return _cached("model", model, lambda: model)


def eval_step(model, mean, std) -> Callable:
    """jit(make_eval_step(model, mean, std)), one per (model, mean, std)."""
    mean, std = _floats(mean), _floats(std)
    return _cached("eval", (model, mean, std),
                   lambda: jax.jit(make_eval_step(model, mean=mean, std=std)))


def predict_step(model, mean, std) -> Callable:
    """jit(make_predict_step(model, mean, std)), one per (model, mean, std)."""
    mean, std = _floats(mean), _floats(std)
    return _cached("predict", (model, mean, std),
                   lambda: jax.jit(make_predict_step(model, mean=mean, std=std)))


def optimizer(cfg: ml_collections.ConfigDict) -> optax.GradientTransformation:
    """make_optimizer(cfg, ·)'s transformation, one per optimizer structure; point its state
    at a fit's schedule with `optim.with_schedule(opt_state, optim.schedule_data(cfg, n))`."""
    return _cached("optimizer", structure_key(cfg), lambda: make_optimizer(cfg, 1)[0])


def train_step(make: Callable, model, method, *, mean, std, augment: bool,
               teachers: Sequence[Any], shardings: Any,
               batch_sharding: Any, replicated: Any) -> Callable:
    """jit(make(model, method, ...)) with the state donated, one per key of what it closes
    over (`make` included: normally `kdjax.train.step.make_train_step`). The step reads its
    learning rate from the optimizer state's schedule data."""
    mean, std = _floats(mean), _floats(std)
    leaves, treedef = jax.tree.flatten(shardings)
    key = (make, model, method.loss, method.pre_step, mean, std, bool(augment), tuple(teachers),
           treedef, tuple(leaves), batch_sharding, replicated)

    def build():
        # The step reads the method's functions only; its data stays out of the cache.
        slim = dataclasses.replace(method, per_example={}, example_state=None, extra=None,
                                   constants=None)
        fn = make(model, slim, mean=mean, std=std, augment=augment, teachers=list(teachers))
        return jax.jit(fn, in_shardings=(shardings, batch_sharding, replicated),
                       out_shardings=(shardings, replicated), donate_argnums=(0,))

    return _cached("train", key, build)
