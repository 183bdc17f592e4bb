"""Optimizers and learning-rate schedules from `config.train`."""
from __future__ import annotations

import ml_collections
import optax


def make_schedule(cfg: ml_collections.ConfigDict, steps_per_epoch: int) -> optax.Schedule:
    """Learning-rate schedule, indexed by optimizer step.

    Kinds:
      constant: `learning_rate` throughout.
      cosine: cosine decay to 0 over `epochs` after `warmup_epochs` of linear warm-up.
      step: multiply by `decay_factor` at each epoch in `decay_epochs` (e.g. 60/120/160).
      rad_piecewise: RAD App. D.1: 1e-3 for 2/5 of the epochs, then 1e-4 to 3/5, 1e-5 to 4/5,
        1e-6 to 9/10, 5e-7 to the end (scaled by `learning_rate` / 1e-3).
      imagenet_piecewise: RAD App. D.2: 5 warm-up epochs to `learning_rate`, then ×0.1 after
        epochs 35, 65 and 85.
    """
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
    elif kind == "imagenet_piecewise":
        sched = optax.piecewise_constant_schedule(
            base, {int(k * steps_per_epoch) - warmup: 0.1 for k in (35, 65, 85)})
    else:
        raise ValueError(
            f"config.train.schedule={kind!r} is unknown; use one of constant, cosine, step, "
            "rad_piecewise, imagenet_piecewise")
    if warmup:
        sched = optax.join_schedules(
            [optax.linear_schedule(0.0, base, warmup), sched], [warmup])
    return sched


def make_optimizer(cfg: ml_collections.ConfigDict,
                   steps_per_epoch: int) -> tuple[optax.GradientTransformation, optax.Schedule]:
    """SGD (+momentum, Nesterov optional) or Adam, with coupled L2 weight decay as in PyTorch."""
    schedule = make_schedule(cfg, steps_per_epoch)
    if cfg.optimizer == "sgd":
        opt = optax.sgd(schedule, momentum=cfg.momentum or None,
                        nesterov=bool(cfg.get("nesterov", False)))
    elif cfg.optimizer == "adam":
        opt = optax.adam(schedule)
    else:
        raise ValueError(f"config.train.optimizer={cfg.optimizer!r} is unknown; use sgd or adam")
    if cfg.weight_decay:
        opt = optax.chain(optax.add_decayed_weights(cfg.weight_decay), opt)
    if cfg.get("grad_clip_norm"):
        opt = optax.chain(optax.clip_by_global_norm(cfg.grad_clip_norm), opt)
    return opt, schedule
