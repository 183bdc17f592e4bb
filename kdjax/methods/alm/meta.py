"""ALM-KD's meta-update of λ (Alg. 1 lines 5-8): look-ahead, outer objective, meta-gradient.

Every L steps the λ of the current training minibatch move along the meta-gradient of the
outer objective (Eq. 6 + Eq. 16)

    O(λ) = mean_V KL(p'_T ‖ p_S(θ'(λ))) + β·mean_B KL(p'_T ‖ p_S(θ'(λ))),   τ = 1,
    θ'(λ) = θ − η·∇_θ (1/n)Σ_i L_student,i(θ, λ_i)                           (Eq. 7)
    λ ← λ − η_λ·∇_λ O                                                       (Eq. 8-10, 14-15)

`meta_grad='exact'` differentiates through the look-ahead of the whole network (JAX
reverse-over-reverse); `'last_layer'` is the paper's Sec. 4.2 approximation (only the linear
head takes the look-ahead step, on frozen penultimate features).

Model-agnostic: everything takes `forward(params, x) -> (logits, features)` (`flax_forward`
wraps a kdjax flax module). Batches are dicts with 'image', 'label', 'id', optional 'mask'
(0 for padding) and 'teacher_logits' (B, C) or (B, K, C).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import ml_collections
import optax

from kdjax.methods.alm import config as alm_config
from kdjax.methods.alm.loss import kl, masked_mean, perturbed_target, student_loss

Array = jax.Array
Params = Any
Forward = Callable[[Params, Array], tuple[Array, Array]]


@dataclasses.dataclass(frozen=True)
class MetaConfig:
    """The hyper-parameters the meta-update reads (see kdjax/methods/alm/config.py for each);
    `temperature` is the student loss's τ (config.loss.temperature), `lookahead_lr` None =
    the optimizer's learning rate, `outer_teacher` 'mean' or a teacher index."""
    temperature: float = 4.0
    alpha: float = 0.2
    beta: float = 0.1
    lambda_lr: float = 1000.0
    update_every: int = 10
    lambda_init: float = 0.5
    clip: str = "none"
    meta_grad: str = "exact"
    lookahead_lr: float | None = None
    outer_teacher: str | int = "mean"

    def __post_init__(self):
        if self.temperature <= 0:
            raise ValueError(f"loss.temperature={self.temperature!r} must be > 0")
        for name, (ok, what) in alm_config.CHECKS.items():
            value = getattr(self, name, None)
            if value is not None and not ok(value):
                raise ValueError(f"alm.{name}={value!r} must be {what}")

    @classmethod
    def from_config(cls, config: ml_collections.ConfigDict) -> "MetaConfig":
        """From a run config: `config.alm` and τ = `config.loss.temperature`."""
        a = config.alm
        outer = a.outer_teacher if a.outer_teacher == "mean" else int(a.outer_teacher)
        return cls(temperature=float(config.loss.temperature), alpha=a.alpha, beta=a.beta,
                   lambda_lr=a.lambda_lr, update_every=int(a.update_every),
                   lambda_init=a.lambda_init, clip=a.clip, meta_grad=a.meta_grad,
                   lookahead_lr=a.lookahead_lr or None, outer_teacher=outer)


# ---------------------------------------------------------------- λ storage

def init_lambdas(num_examples: int, num_teachers: int | None = None, value: float = 0.5,
                 dtype=jnp.float32) -> Array:
    """λ indexed by example id: (N,) for one teacher, (N, K) for K teachers."""
    if num_examples < 1:
        raise ValueError(f"num_examples must be >= 1, got {num_examples}")
    shape = (num_examples,) if num_teachers is None else (num_examples, num_teachers)
    return jnp.full(shape, value, dtype)


def update_lambdas(lam: Array, ids: Array, grad: Array, cfg: MetaConfig,
                   mask: Array | None = None) -> Array:
    """Eq. 10 / 15: λ_ids ← λ_ids − η_λ·grad (duplicates add), then the optional [0, 1] clip."""
    step = -cfg.lambda_lr * grad
    if mask is not None:
        step = step * mask.reshape(mask.shape + (1,) * (step.ndim - 1)).astype(step.dtype)
    new = lam.at[ids].add(step.astype(lam.dtype))
    if cfg.clip == "unit":
        new = new.at[ids].set(jnp.clip(new[ids], 0.0, 1.0))
    return new


# ---------------------------------------------------------------- look-ahead and outer loss

def _train_objective(forward: Forward, params: Params, batch: dict, lam_b: Array,
                     temperature: float) -> Array:
    logits, _ = forward(params, batch["image"])
    per_ex = student_loss(logits, batch["label"], batch["teacher_logits"], lam_b, temperature)
    return masked_mean(per_ex, batch.get("mask"))


def lookahead(forward: Forward, params: Params, batch: dict, lam_b: Array, lr: float | Array,
              temperature: float) -> Params:
    """θ' = θ − η·∇_θ (1/n)Σ_i L_student,i(θ, λ_i) (Eq. 7), differentiable in λ."""
    grads = jax.grad(lambda p: _train_objective(forward, p, batch, lam_b, temperature))(params)
    return jax.tree.map(lambda p, g: p - lr * g.astype(p.dtype), params, grads)


def _outer_from_logits(logits_val, logits_tr, val_batch, batch, cfg: MetaConfig) -> tuple:
    c = logits_val.shape[-1]
    tgt_v = perturbed_target(val_batch["teacher_logits"], val_batch["label"], c, cfg.alpha,
                             cfg.outer_teacher)
    tgt_t = perturbed_target(batch["teacher_logits"], batch["label"], c, cfg.alpha,
                             cfg.outer_teacher)
    val = masked_mean(kl(logits_val, tgt_v), val_batch.get("mask"))
    tr = masked_mean(kl(logits_tr, tgt_t), batch.get("mask"))
    return val + cfg.beta * tr, (val, tr)


def outer_objective(forward: Forward, params: Params, batch: dict, val_batch: dict,
                    cfg: MetaConfig) -> tuple[Array, tuple[Array, Array]]:
    """Eq. 6 + 16 at `params`: KL to p'_T on validation + β·the same on the training batch."""
    logits_v, _ = forward(params, val_batch["image"])
    logits_t, _ = forward(params, batch["image"])
    return _outer_from_logits(logits_v, logits_t, val_batch, batch, cfg)


def meta_objective(forward: Forward, params: Params, lam_b: Array, batch: dict,
                   val_batch: dict, lr: float | Array, cfg: MetaConfig) -> Array:
    """O(λ_B): the outer objective at the look-ahead parameters θ'(λ_B), whole network."""
    new = lookahead(forward, params, batch, lam_b, lr, cfg.temperature)
    return outer_objective(forward, new, batch, val_batch, cfg)[0]


def _get_path(tree, path: Sequence[str]):
    for k in path:
        tree = tree[k]
    return tree


def find_head_path(params: Params, feature_dim: int, num_classes: int) -> tuple[str, ...]:
    """Path to the unique {'kernel': (F, C), 'bias': (C,)} node of `params` (the linear head)."""
    hits = []

    def visit(node, path):
        if isinstance(node, dict) or hasattr(node, "items"):
            keys = set(node.keys())
            if "kernel" in keys and getattr(node["kernel"], "shape", None) == (feature_dim,
                                                                               num_classes):
                hits.append(path)
            for k, v in node.items():
                visit(v, path + (k,))

    visit(params, ())
    if len(hits) != 1:
        raise ValueError(f"expected one linear head with kernel ({feature_dim}, {num_classes}) "
                         f"in params, found {len(hits)}: {hits}; pass head_path explicitly")
    return hits[0]


def meta_objective_last_layer(forward: Forward, params: Params, lam_b: Array, batch: dict,
                              val_batch: dict, lr: float | Array, cfg: MetaConfig,
                              head_path: Sequence[str]) -> Array:
    """Last-layer approximation (Sec. 4.2): features frozen at θ, look-ahead on the head only.
    Assumes logits = features @ kernel + bias for the head at `head_path`."""
    head = _get_path(params, head_path)
    _, f_t = forward(params, batch["image"])
    _, f_v = forward(params, val_batch["image"])
    f_t, f_v = jax.lax.stop_gradient(f_t), jax.lax.stop_gradient(f_v)

    def head_apply(h, f):
        out = f @ h["kernel"]
        return out + h["bias"] if "bias" in h else out

    def inner(h):
        per_ex = student_loss(head_apply(h, f_t), batch["label"], batch["teacher_logits"],
                              lam_b, cfg.temperature)
        return masked_mean(per_ex, batch.get("mask"))

    g = jax.grad(inner)(head)
    new_head = jax.tree.map(lambda p, d: p - lr * d.astype(p.dtype), head, g)
    return _outer_from_logits(head_apply(new_head, f_v), head_apply(new_head, f_t), val_batch,
                              batch, cfg)[0]


def meta_gradient(forward: Forward, params: Params, lam_b: Array, batch: dict,
                  val_batch: dict, lr: float | Array, cfg: MetaConfig,
                  head_path: Sequence[str] | None = None) -> tuple[Array, Array]:
    """(O(λ_B), ∇_{λ_B} O): Eq. 8-9 (one teacher) / Eq. 14 (K teachers), by autodiff."""
    if cfg.meta_grad == "exact":
        fn = lambda l: meta_objective(forward, params, l, batch, val_batch, lr, cfg)
    else:
        if head_path is None:
            raise ValueError("meta_grad='last_layer' needs head_path (see find_head_path)")
        fn = lambda l: meta_objective_last_layer(forward, params, l, batch, val_batch, lr, cfg,
                                                 head_path)
    return jax.value_and_grad(fn)(lam_b)


def meta_update(forward: Forward, params: Params, lam: Array, batch: dict, val_batch: dict,
                lr: float | Array, cfg: MetaConfig,
                head_path: Sequence[str] | None = None) -> tuple[Array, dict]:
    """One λ step of Alg. 1 (lines 5-8) on the minibatch's ids. Returns (new λ, metrics)."""
    lam_b = lam[batch["id"]]
    if cfg.lookahead_lr is not None:
        lr = cfg.lookahead_lr
    obj, g = meta_gradient(forward, params, lam_b, batch, val_batch, lr, cfg, head_path)
    new = update_lambdas(lam, batch["id"], g, cfg, batch.get("mask"))
    return new, {"meta_objective": obj, "meta_grad_norm": jnp.sqrt(jnp.sum(g * g))}


# ---------------------------------------------------------------- a whole Alg. 1 step

def make_alm_step(forward: Forward, tx: optax.GradientTransformation,
                  lr_fn: Callable[[Array], Array], cfg: MetaConfig,
                  head_path: Sequence[str] | None = None) -> Callable:
    """Alg. 1 step t for a plain (params, optimizer) loop such as the Sec. 5 toys: every L
    steps update λ (Eq. 7-10), then θ by Eq. 11 with the new λ.

    Returns step(params, opt_state, lam, t, batch, val_batch) -> (params, opt_state, lam,
    metrics). `t` should be an unbatched integer so that the `t % L` branch stays a real
    conditional under vmap. Pure; wrap in jax.jit. (kdjax runs use `method.make_method`.)
    """

    def step(params, opt_state, lam, t, batch, val_batch):
        lr = lr_fn(t)

        def do_meta(lam):
            new, m = meta_update(forward, params, lam, batch, val_batch, lr, cfg, head_path)
            return new, m["meta_objective"].astype(jnp.float32)

        lam, meta_obj = jax.lax.cond(t % cfg.update_every == 0, do_meta,
                                     lambda l: (l, jnp.zeros((), jnp.float32)), lam)
        lam_b = lam[batch["id"]]
        loss, grads = jax.value_and_grad(
            lambda p: _train_objective(forward, p, batch, lam_b, cfg.temperature))(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        return params, opt_state, lam, {"loss": loss, "meta_objective": meta_obj}

    return step


def flax_forward(module, extra_variables: dict | None = None, train: bool = False) -> Forward:
    """forward(params, x) for a kdjax flax model returning (logits, features).

    `extra_variables` (e.g. {'batch_stats': ...}) are held fixed; with train=True the
    batch-statistics updates are computed and discarded (the meta step must not change them).
    """
    extra = dict(extra_variables or {})

    def forward(params, x):
        variables = {"params": params, **extra}
        if train and "batch_stats" in extra:
            out, _ = module.apply(variables, x, train=True, mutable=["batch_stats"])
            return out
        return module.apply(variables, x, train=train)

    return forward
