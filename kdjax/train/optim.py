"""Optimizers and learning-rate schedules from `config.train`.

The schedule is data. Its parameters (base rate, warm-up and cosine lengths, the piecewise
boundaries and scales, all in optimizer steps) are arrays that `schedule_data(cfg,
steps_per_epoch)` computes on the host and the optimizer state carries
(`ScheduleState.schedule`); the transformation depends only on the optimizer's structure
(`structure_key`), and the traced step only on the length of the piecewise table. Fits whose
steps per epoch, horizon, base rate or schedule kind differ (RAD's rounds: |A| + r·b examples) therefore share one `tx` and one
compiled train step; `with_schedule` points a fresh optimizer state at a fit's schedule. The
values are optax's schedules', bit for bit (tests/test_schedule_data.py).
"""
from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from optax._src import numerics

KINDS = ("constant", "cosine", "step", "rad_piecewise", "imagenet_piecewise")
_NEVER = np.iinfo(np.int32).max  # a boundary no step reaches: pads the table to a fixed length


class ScheduleState(NamedTuple):
    """count: optimizer updates so far (the schedule's step). schedule: `schedule_data`'s
    arrays (base, warmup, inv_warmup, cosine, decay_steps, angle, boundaries, scales)."""
    count: jax.Array
    schedule: dict


def _kind(cfg) -> str:
    kind = cfg.schedule
    if kind not in KINDS:
        raise ValueError(f"config.train.schedule={kind!r} is unknown; use one of "
                         f"{', '.join(KINDS)}")
    return kind


def _num_boundaries(cfg) -> int:
    """Length of the piecewise table: fixed by the config, not by steps per epoch (at least
    one entry: orbax does not save empty arrays)."""
    return max({"step": len(cfg.get("decay_epochs", ()) or ()), "rad_piecewise": 4,
                "imagenet_piecewise": 3}.get(_kind(cfg), 0), 1)


def _boundaries_and_scales(cfg, steps_per_epoch: int, warmup: int) -> dict[int, float]:
    """{step: scale} of the piecewise kinds (steps after warm-up), as optax's
    piecewise_constant_schedule takes them (equal boundaries collapse, the last one kept).

      step: ×`decay_factor` at each epoch of `decay_epochs` (e.g. 60/120/160).
      rad_piecewise: RAD App. D.1: 1e-3 for 2/5 of the epochs, then 1e-4 to 3/5, 1e-5 to 4/5,
        1e-6 to 9/10, 5e-7 to the end (scaled by `learning_rate` / 1e-3).
      imagenet_piecewise: RAD App. D.2: ×0.1 after epochs 35, 65 and 85.
    """
    kind = _kind(cfg)
    if kind == "step":
        return {int(e * steps_per_epoch): float(cfg.decay_factor) for e in cfg.decay_epochs}
    if kind == "rad_piecewise":
        e = cfg.epochs
        scales = {round(2 * e / 5): 0.1, round(3 * e / 5): 0.1, round(4 * e / 5): 0.1,
                  round(9 * e / 10): 0.5}
        return {int(k * steps_per_epoch): v for k, v in scales.items()}
    if kind == "imagenet_piecewise":
        return {int(k * steps_per_epoch) - warmup: 0.1 for k in (35, 65, 85)}
    return {}


def schedule_data(cfg: ml_collections.ConfigDict, steps_per_epoch: int) -> dict[str, np.ndarray]:
    """The schedule's parameters for `steps_per_epoch`, as arrays whose shapes depend on the
    config only: base rate, warm-up steps, whether to decay by a cosine, its decay steps
    (max(total - warmup, 1)) and angle per step (pi / decay steps), and the piecewise boundaries/scales padded
    with (never, 1.0)."""
    kind = _kind(cfg)
    base = float(cfg.learning_rate)
    total = int(cfg.epochs * steps_per_epoch)
    warmup = int(cfg.get("warmup_epochs", 0) * steps_per_epoch)
    table = sorted(_boundaries_and_scales(cfg, steps_per_epoch, warmup).items())
    if any(abs(b) >= _NEVER for b, _ in table):
        raise ValueError(f"config.train.schedule={kind!r}: a boundary exceeds int32 steps")
    table += [(_NEVER, 1.0)] * (_num_boundaries(cfg) - len(table))
    decay = np.float32(max(total - warmup, 1))
    # XLA compiles optax's `x / constant` as `x * (1 / constant)`; the reciprocals below are
    # those constants, so that the traced schedule rounds as the compiled closures did.
    return {"base": np.float32(base), "warmup": np.int32(warmup),
            "inv_warmup": np.float32(1) / np.float32(warmup) if warmup else np.float32(0),
            "cosine": np.bool_(kind == "cosine"),
            "decay_steps": decay,
            "angle": np.float32(np.float32(np.pi) * (np.float32(1) / decay)),
            "boundaries": np.asarray([b for b, _ in table], np.int32).reshape(-1),
            "scales": np.asarray([s for _, s in table], np.float32).reshape(-1)}


def learning_rate(data: dict, count: jax.Array) -> jax.Array:
    """The schedule's value after `count` updates: optax's constant / cosine_decay /
    piecewise_constant schedule (the same operations), after a linear warm-up from 0 joined
    as optax.join_schedules does, every parameter read from `data`. The kind is data too
    (`cosine` selects the cosine factor), so every kind with the same table length traces to
    the same program."""
    count = jnp.asarray(count, jnp.int32)
    base, steps = data["base"], data["warmup"]

    def after_warmup(c):
        d = jnp.minimum(c, data["decay_steps"])   # optax.cosine_decay_schedule, alpha 0
        cosine_decay = 0.5 * (1 + jnp.cos(d * data["angle"]))
        v = jnp.where(data["cosine"], base * ((1 - 0.0) * cosine_decay ** 1.0 + 0.0), base)
        for i in range(data["boundaries"].shape[0]):   # optax.piecewise_constant_schedule
            indicator = jnp.maximum(0.0, jnp.sign(data["boundaries"][i] - c))
            v = v * indicator + (1 - indicator) * data["scales"][i] * v
        return v

    c = jnp.clip(count, 0, steps)   # optax.linear_schedule(0, base, steps)
    frac = 1 - c * data["inv_warmup"]
    ramp = (0.0 - base) * (frac ** 1) + base
    return jnp.asarray(jnp.where(count < steps, ramp, after_warmup(count - steps)), jnp.float32)


_jitted_learning_rate = jax.jit(learning_rate)


def make_schedule(cfg: ml_collections.ConfigDict, steps_per_epoch: int) -> optax.Schedule:
    """Learning-rate schedule, indexed by optimizer step (one jitted function for all).

    Kinds: constant (`learning_rate` throughout); cosine (decay to 0 over `epochs`);
    step, rad_piecewise, imagenet_piecewise (see `_boundaries_and_scales`); each after
    `warmup_epochs` of linear warm-up from 0 when set.
    """
    data = schedule_data(cfg, steps_per_epoch)
    return lambda step: _jitted_learning_rate(data, step)


def scale_by_schedule_data(data: dict) -> optax.GradientTransformation:
    """optax.scale_by_learning_rate(schedule) with the schedule's parameters in the state
    (initialised to `data`; `with_schedule` replaces them)."""

    def init_fn(params):
        del params
        return ScheduleState(count=jnp.zeros([], jnp.int32),
                             schedule=jax.tree.map(jnp.asarray, data))

    def update_fn(updates, state, params=None):
        del params
        step_size = -1 * learning_rate(state.schedule, state.count)
        updates = jax.tree.map(lambda g: jnp.array(step_size, dtype=g.dtype) * g, updates)
        return updates, ScheduleState(count=numerics.safe_increment(state.count),
                                      schedule=state.schedule)

    return optax.GradientTransformation(init_fn, update_fn)


def structure_key(cfg: ml_collections.ConfigDict) -> tuple:
    """What `make_optimizer`'s transformation depends on besides its schedule's data."""
    _kind(cfg)
    return (cfg.optimizer, float(cfg.get("momentum", 0) or 0), bool(cfg.get("nesterov", False)),
            float(cfg.get("weight_decay", 0) or 0), float(cfg.get("grad_clip_norm", 0) or 0))


def make_optimizer(cfg: ml_collections.ConfigDict,
                   steps_per_epoch: int) -> tuple[optax.GradientTransformation, optax.Schedule]:
    """SGD (+momentum, Nesterov optional) or Adam, with coupled L2 weight decay as in PyTorch,
    and the (host-side) schedule; the state starts on `steps_per_epoch`'s schedule."""
    scale = scale_by_schedule_data(schedule_data(cfg, steps_per_epoch))
    if cfg.optimizer == "sgd":
        opt = optax.chain(
            optax.trace(decay=cfg.momentum, nesterov=bool(cfg.get("nesterov", False)))
            if cfg.momentum else optax.identity(), scale)
    elif cfg.optimizer == "adam":
        opt = optax.chain(optax.scale_by_adam(), scale)
    else:
        raise ValueError(f"config.train.optimizer={cfg.optimizer!r} is unknown; use sgd or adam")
    if cfg.weight_decay:
        opt = optax.chain(optax.add_decayed_weights(cfg.weight_decay), opt)
    if cfg.get("grad_clip_norm"):
        opt = optax.chain(optax.clip_by_global_norm(cfg.grad_clip_norm), opt)
    return opt, make_schedule(cfg, steps_per_epoch)


def _is_schedule_state(x) -> bool:
    return isinstance(x, ScheduleState)


def with_schedule(opt_state: Any, data: dict) -> Any:
    """`opt_state` with every ScheduleState's parameters replaced by `data`."""
    return jax.tree.map(
        lambda s: s._replace(schedule=jax.tree.map(jnp.asarray, data))
        if _is_schedule_state(s) else s, opt_state, is_leaf=_is_schedule_state)


def current_learning_rate(opt_state: Any) -> jax.Array | None:
    """The learning rate `opt_state`'s next update applies (None without a ScheduleState)."""
    states = [s for s in jax.tree.leaves(opt_state, is_leaf=_is_schedule_state)
              if _is_schedule_state(s)]
    if not states:
        return None
    return learning_rate(states[0].schedule, states[0].count)
