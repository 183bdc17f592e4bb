"""LR+DS: Label Revision and Data Selection around any KD loss (Lan et al., arXiv 2404.03693).

Label Revision (LR): the softened teacher distribution p^t is mixed with the one-hot label y,

    p = beta * p^t + (1 - beta) * y,   beta = eta / (p^t_max - p^t_target + 1),  eta in (0, 1),

which satisfies the paper's constraint beta < 1 / (p^t_max - p^t_target + 1), so the label is
the strict arg-max of p for every example, while the ratios among the other classes are kept.
For examples the teacher already gets right, beta = eta and the revision only sharpens.

Data Selection (DS): a boolean mask D^t over training-example ids (top fraction of an influence
score, `kdjax.methods.influence`) says which examples get teacher supervision. The per-example
objective is

    loss_i = lambda1 * [i in D^t] * KD_term_i(revised targets) + lambda2 * CE_i   (CE on all of D).

Choice (documented deviation risk): the paper's summary says D^s is "supervised by ground truth
alone"; we keep the CE term on *every* example (D^t and D^s), as in vanilla KD, so that DS with
fraction 1.0 (and LR off) is exactly Hinton KD with alpha = lambda1, 1 - alpha = lambda2, and
D^s examples get only CE. For KD losses that already contain their own CE term (DiSK, ALM-KD), use
`kd_includes_ce=True`: loss_i = [i in D^t] * full_i + [i not in D^t] * lambda2 * CE_i.

Pluggability: `wrap_kd_loss(kd_fn, ...)` swaps `batch['teacher_logits']` for the revised targets
expressed as logits at the revision temperature T (T * log p, so softmax(. / T) = p exactly) and
applies the mask, so any loss with the train step's signature `loss_fn(logits, features, batch)`
that reads `teacher_logits` gets LR and DS without being copied. A KD loss that softens the
teacher at a different temperature T' sees softmax(T log p / T') = p^(T/T') renormalised (same
arg-max, so the label stays the arg-max).
"""
from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from kdjax import losses

Array = jax.Array
LossFn = Callable[[Array, Array, dict], Array]


# --------------------------------------------------------------------------- Label Revision

def _check_eta(eta: float) -> None:
    if not (isinstance(eta, (int, float, np.floating)) and 0.0 < float(eta) < 1.0):
        raise ValueError(f"label revision eta must lie strictly in (0, 1), got {eta!r}")


def _is_concrete(x) -> bool:
    return not isinstance(x, jax.core.Tracer)


def revise_targets(teacher_probs: Array, labels: Array, eta: float) -> tuple[Array, Array]:
    """Label Revision: p = beta p^t + (1 - beta) y, beta = eta / (p^t_max - p^t_y + 1).

    Args:
      teacher_probs: (B, C) teacher distribution (already temperature-softened), or (B, K, C)
        for K teachers (ALM-KD's multi-teacher form; each teacher is revised on its own).
      labels: (B,) int ground-truth classes in [0, C).
      eta: in (0, 1).
    Returns:
      revised targets of the input's shape and a (B,) / (B, K) bool array: True where the
      teacher's arg-max was not the label (those targets were corrected; the others were only
      sharpened).
    """
    _check_eta(eta)
    if teacher_probs.ndim not in (2, 3) or labels.ndim != 1 \
            or teacher_probs.shape[0] != labels.shape[0]:
        raise ValueError(f"need teacher_probs (B, C) or (B, K, C) and labels (B,), got "
                         f"{teacher_probs.shape} and {labels.shape}")
    num_classes = teacher_probs.shape[-1]
    if _is_concrete(labels) and labels.size:
        lo, hi = int(jnp.min(labels)), int(jnp.max(labels))
        if lo < 0 or hi >= num_classes:
            raise ValueError(f"labels must lie in [0, {num_classes}), got range [{lo}, {hi}]")
    lab = labels if teacher_probs.ndim == 2 else labels[:, None]
    y = jax.nn.one_hot(lab, num_classes, dtype=teacher_probs.dtype)
    p_max = jnp.max(teacher_probs, axis=-1)
    p_tar = jnp.sum(teacher_probs * y, axis=-1)
    beta = (eta / (p_max - p_tar + 1.0))[..., None]
    revised = beta * teacher_probs + (1.0 - beta) * y
    wrong = jnp.argmax(teacher_probs, axis=-1) != lab
    return revised, wrong


def revised_teacher_logits(teacher_logits: Array, labels: Array, *, eta: float,
                           temperature: float) -> tuple[Array, Array]:
    """Revised targets of softmax(z_t / T), returned as logits T * log p (softmax(./T) = p)."""
    probs = losses.teacher_probs(teacher_logits, temperature)
    revised, wrong = revise_targets(probs, labels, eta)
    tiny = jnp.finfo(revised.dtype).tiny
    return temperature * jnp.log(jnp.maximum(revised, tiny)), wrong


# --------------------------------------------------------------------------- Data Selection mask

def mask_by_id(selected: np.ndarray, ids: np.ndarray, num_examples: int) -> np.ndarray:
    """Scatter a per-position selection (aligned with `ids`) into a mask indexed by example id."""
    selected, ids = np.asarray(selected, bool), np.asarray(ids)
    if selected.shape != ids.shape:
        raise ValueError(f"selected {selected.shape} and ids {ids.shape} must match")
    if ids.size and (ids.min() < 0 or ids.max() >= num_examples):
        raise ValueError(f"ids must lie in [0, {num_examples})")
    mask = np.zeros((num_examples,), bool)
    mask[ids] = selected
    return mask


def _batch_mask(batch: dict, ds_mask: Array | None, size: int) -> Array:
    """D^t membership of the batch's examples, (B,) float32.

    Looked up, in order, in batch['ds_mask'], batch['example_state']['ds_mask'] (the train
    state's per-example state) or the closed-over `ds_mask` indexed by batch['id']; all ones if
    none is given (DS off).
    """
    if "ds_mask" in batch:
        return batch["ds_mask"].astype(jnp.float32)
    ex = batch.get("example_state")
    if isinstance(ex, dict) and "ds_mask" in ex:
        return ex["ds_mask"].astype(jnp.float32)
    if ds_mask is not None:
        return jnp.asarray(ds_mask)[batch["id"]].astype(jnp.float32)
    return jnp.ones((size,), jnp.float32)


# --------------------------------------------------------------------------- pluggable wrapper

def hinton_kd_term(temperature: float) -> LossFn:
    """The distillation part of Hinton KD: T^2 KL(softmax(z_t/T) || softmax(z_s/T)), (B,)."""

    def fn(logits: Array, features: Array, batch: dict) -> Array:
        del features
        target = losses.teacher_probs(batch["teacher_logits"], temperature)
        return temperature**2 * losses.kl_divergence(logits, target, temperature)

    return fn


def wrap_kd_loss(kd_fn: LossFn, *, temperature: float, lambda1: float = 1.0,
                 lambda2: float = 1.0, eta: float | None = None, ds_mask=None,
                 ds_enabled: bool = True, kd_includes_ce: bool = False) -> LossFn:
    """Add LR and DS to any KD loss with the train step's signature.

    Args:
      kd_fn: `kd_fn(logits, features, batch) -> (B,)` reading batch['teacher_logits'].
      temperature: T at which the teacher is softened before revision.
      lambda1, lambda2: weights of the KD term on D^t and of the CE term (see module doc).
      eta: label-revision strength in (0, 1); None turns LR off.
      ds_mask: optional bool array indexed by example id (D^t); the batch's own 'ds_mask' or
        'example_state'['ds_mask'] take precedence; None and neither present turns DS off.
      ds_enabled: False ignores every mask (all examples in D^t).
      kd_includes_ce: kd_fn is a full loss with its own CE (DiSK, ALM-KD): D^t examples get
        kd_fn, D^s examples lambda2 * CE, and lambda1 is not used.
    Returns:
      loss_fn(logits, features, batch) -> (B,). When LR is on, batch['lr_revised'] (bool, the
      teacher's arg-max was wrong) is available to kd_fn.
    """
    if eta is not None:
        _check_eta(eta)
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if lambda1 < 0 or lambda2 < 0:
        raise ValueError(f"lambda1, lambda2 must be >= 0, got {lambda1}, {lambda2}")
    if ds_mask is not None:
        ds_mask = jnp.asarray(np.asarray(ds_mask, bool))

    def loss_fn(logits: Array, features: Array, batch: dict) -> Array:
        batch = dict(batch)
        if eta is not None:
            batch["teacher_logits"], batch["lr_revised"] = revised_teacher_logits(
                jax.lax.stop_gradient(batch["teacher_logits"]), batch["label"], eta=eta,
                temperature=temperature)
        m = _batch_mask(batch, ds_mask, logits.shape[0]) if ds_enabled else \
            jnp.ones((logits.shape[0],), jnp.float32)
        kd = kd_fn(logits, features, batch)
        ce = losses.cross_entropy(logits, batch["label"])
        if kd_includes_ce:
            return m * kd + (1.0 - m) * lambda2 * ce
        return lambda1 * m * kd + lambda2 * ce

    return loss_fn


def lrds_kd_loss(logits: Array, labels: Array, teacher_logits: Array, ds_mask: Array | None = None,
                 *, temperature: float = 4.0, eta: float | None = 0.8, lambda1: float = 0.9,
                 lambda2: float = 0.1) -> Array:
    """Hinton KD with LR and DS on arrays: lambda1 [D^t] T^2 KL(p_rev || s^T) + lambda2 CE, (B,).

    `ds_mask` here is the batch's (B,) D^t membership. With eta=None and an all-ones mask this is
    `losses.kd_loss(..., alpha=lambda1)` when lambda2 = 1 - lambda1.
    """
    batch = {"label": labels, "teacher_logits": teacher_logits}
    if ds_mask is not None:
        batch["ds_mask"] = ds_mask
    fn = wrap_kd_loss(hinton_kd_term(temperature), temperature=temperature, lambda1=lambda1,
                      lambda2=lambda2, eta=eta)
    return fn(logits, None, batch)


# --------------------------------------------------------------------------- config

def default_lrds_config() -> ml_collections.ConfigDict:
    """The `config.lrds` block: LR/DS switches and loss weights (paper defaults: eta ~ 0.8)."""
    c = ml_collections.ConfigDict()
    c.base_kd = "hinton"        # the built-in wrapped loss; DiSK / ALM-KD pass theirs as kd_fn
    c.temperature = 4.0
    c.lambda1 = 0.9             # weight of the (revised) KD term on D^t
    c.lambda2 = 0.1             # weight of CE (all examples)
    c.lr = ml_collections.ConfigDict({"enabled": True, "eta": 0.8})
    c.ds = ml_collections.ConfigDict({
        "enabled": True,
        "fraction": 0.8,        # |D^t| / |D|
        "scorer": "influence",  # one of kdjax.methods.influence.SCORERS
        "hessian": "auto",      # exact | kfac | auto (exact up to 16384 head params)
        "damping": 1e-3,
        "warmup_epochs": 1,     # CE epochs of the student before scoring
        "batch_size": 512,
        "tracin_val": False,    # 'tracin': validation-gradient dot products instead of self
    })
    c.variants = ("kd", "kd_lr", "kd_ds", "kd_lr_ds")  # see kdjax.methods.lrds_train.VARIANTS
    c.eta_sweep = ()            # extra KD+LR+DS runs at these eta (ablation)
    c.fraction_sweep = ()       # extra KD+LR+DS runs at these |D^t| fractions (ablation)
    c.scorer_sweep = ()         # extra KD+LR+DS runs with these DS scorers (ablation)
    c.seeds = (0,)
    return c


def loss_from_config(cfg: Any, kd_fn: LossFn | None = None, ds_mask=None,
                     kd_includes_ce: bool = False) -> LossFn:
    """Build the wrapped loss from a `config.lrds` block (see `default_lrds_config`).

    `kd_fn` defaults to Hinton's KD term at cfg.temperature. `ds_mask` is only used when
    cfg.ds.enabled (otherwise every example is in D^t).
    """
    if kd_fn is None:
        if cfg.get("base_kd", "hinton") != "hinton":
            raise ValueError(f"lrds.base_kd={cfg.base_kd!r}: only 'hinton' is built in; DiSK and "
                             "ALM-KD pass their own loss as kd_fn (with kd_includes_ce=True)")
        kd_fn = hinton_kd_term(cfg.temperature)
    return wrap_kd_loss(kd_fn, temperature=cfg.temperature, lambda1=cfg.lambda1,
                        lambda2=cfg.lambda2, eta=cfg.lr.eta if cfg.lr.enabled else None,
                        ds_mask=ds_mask, ds_enabled=cfg.ds.enabled,
                        kd_includes_ce=kd_includes_ce)
