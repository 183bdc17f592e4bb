"""ALM-KD's meta-update of λ (Alg. 1 lines 5-8): look-ahead, outer objective, meta-gradient.

Every L steps the λ of the current training minibatch move along the meta-gradient of the
outer objective (Eq. 6 + Eq. 16)

    O(λ) = mean_V KL(p'_T ‖ p_S(θ'(λ))) + β·mean_B KL(p'_T ‖ p_S(θ'(λ))),   τ = 1,
    θ'(λ) = θ − η·∇_θ (1/n)Σ_i L_student,i(θ, λ_i)                           (Eq. 7)
    λ ← λ − η_λ·∇_λ O                                                       (Eq. 8-10, 14-15)

OURS (issue 20; config.alm, defaults = the paper): `lambda_model='confidence'` replaces the
free λ table by λ = g_φ(p_T(y|x)) and takes the meta-gradient step on φ (pooled.py);
`outer_train='separate'` evaluates the β term of Eq. 16 on another training batch
(`outer_batch`), `'teacher'` against the plain teacher p_T instead of p'_T.

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
from kdjax.methods.alm import pooled
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
    lambda_model: str = "table"
    pool_hidden: int = 0
    pool_lr: float = 0.0
    outer_train: str = "own"

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
                   lookahead_lr=a.lookahead_lr or None, outer_teacher=outer,
                   lambda_model=a.get("lambda_model", "table"),
                   pool_hidden=int(a.get("pool_hidden", 0)), pool_lr=a.get("pool_lr", 0.0),
                   outer_train=a.get("outer_train", "own"))


# ---------------------------------------------------------------- λ storage

def init_lambdas(num_examples: int, num_teachers: int | None = None, value: float = 0.5,
                 dtype=jnp.float32) -> Array:
    """λ indexed by example id: (N,) for one teacher, (N, K) for K teachers."""
    if num_examples < 1:
        raise ValueError(f"num_examples must be >= 1, got {num_examples}")
    shape = (num_examples,) if num_teachers is None else (num_examples, num_teachers)
    return jnp.full(shape, value, dtype)


def init_lambda_state(num_examples: int, num_teachers: int | None, cfg: MetaConfig,
                      dtype=jnp.float32):
    """The λ state meta_update moves: the (N,) / (N, K) table ('table'), or for
    lambda_model='confidence' {'table': λ of each id at its last update (for reporting),
    'phi': the parameters of g_φ}."""
    table = init_lambdas(num_examples, num_teachers, cfg.lambda_init, dtype)
    if cfg.lambda_model == "table":
        return table
    return {"table": table, "phi": pooled.init_phi(cfg.pool_hidden, cfg.lambda_init)}


def batch_lambda(lam, batch: dict, cfg: MetaConfig) -> Array:
    """λ of the batch's rows: table[ids], or g_φ(p_T(y|x)) of the batch ('confidence')."""
    if cfg.lambda_model == "table":
        return lam[batch["id"]]
    conf = pooled.teacher_confidence(batch["teacher_logits"], batch["label"])
    return pooled.pooled_lambda(lam["phi"], conf).astype(lam["table"].dtype)


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
    """`batch` is the batch of the β term (the λ-batch, or the separate one)."""
    c = logits_val.shape[-1]
    tgt_v = perturbed_target(val_batch["teacher_logits"], val_batch["label"], c, cfg.alpha,
                             cfg.outer_teacher)
    alpha_t = 0.0 if cfg.outer_train == "teacher" else cfg.alpha
    tgt_t = perturbed_target(batch["teacher_logits"], batch["label"], c, alpha_t,
                             cfg.outer_teacher)
    val = masked_mean(kl(logits_val, tgt_v), val_batch.get("mask"))
    tr = masked_mean(kl(logits_tr, tgt_t), batch.get("mask"))
    return val + cfg.beta * tr, (val, tr)


def _term_batch(batch: dict, outer_batch: dict | None, cfg: MetaConfig) -> dict:
    """The batch of Eq. 16's β term: the λ-batch, or `outer_batch` for outer_train='separate'."""
    if cfg.outer_train != "separate":
        return batch
    if outer_batch is None:
        raise ValueError("alm.outer_train='separate' needs an outer_batch (a second training "
                         "batch) in the meta-update")
    return outer_batch


def outer_objective(forward: Forward, params: Params, batch: dict, val_batch: dict,
                    cfg: MetaConfig, outer_batch: dict | None = None
                    ) -> tuple[Array, tuple[Array, Array]]:
    """Eq. 6 + 16 at `params`: KL to p'_T on validation + β·the same on the training batch
    (or on `outer_batch` / against p_T, see cfg.outer_train)."""
    term = _term_batch(batch, outer_batch, cfg)
    logits_v, _ = forward(params, val_batch["image"])
    logits_t, _ = forward(params, term["image"])
    return _outer_from_logits(logits_v, logits_t, val_batch, term, cfg)


def meta_objective(forward: Forward, params: Params, lam_b: Array, batch: dict,
                   val_batch: dict, lr: float | Array, cfg: MetaConfig,
                   outer_batch: dict | None = None) -> Array:
    """O(λ_B): the outer objective at the look-ahead parameters θ'(λ_B), whole network."""
    new = lookahead(forward, params, batch, lam_b, lr, cfg.temperature)
    return outer_objective(forward, new, batch, val_batch, cfg, outer_batch)[0]


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
                              head_path: Sequence[str], outer_batch: dict | None = None
                              ) -> Array:
    """Last-layer approximation (Sec. 4.2): features frozen at θ, look-ahead on the head only.
    Assumes logits = features @ kernel + bias for the head at `head_path`."""
    head = _get_path(params, head_path)
    term = _term_batch(batch, outer_batch, cfg)
    _, f_t = forward(params, batch["image"])
    _, f_v = forward(params, val_batch["image"])
    f_t, f_v = jax.lax.stop_gradient(f_t), jax.lax.stop_gradient(f_v)
    f_o = f_t if term is batch else jax.lax.stop_gradient(forward(params, term["image"])[1])

    def head_apply(h, f):
        out = f @ h["kernel"]
        return out + h["bias"] if "bias" in h else out

    def inner(h):
        per_ex = student_loss(head_apply(h, f_t), batch["label"], batch["teacher_logits"],
                              lam_b, cfg.temperature)
        return masked_mean(per_ex, batch.get("mask"))

    g = jax.grad(inner)(head)
    new_head = jax.tree.map(lambda p, d: p - lr * d.astype(p.dtype), head, g)
    return _outer_from_logits(head_apply(new_head, f_v), head_apply(new_head, f_o), val_batch,
                              term, cfg)[0]


def _objective_of_lambda(forward, params, batch, val_batch, lr, cfg, head_path, outer_batch):
    if cfg.meta_grad == "exact":
        return lambda l: meta_objective(forward, params, l, batch, val_batch, lr, cfg,
                                        outer_batch)
    if head_path is None:
        raise ValueError("meta_grad='last_layer' needs head_path (see find_head_path)")
    return lambda l: meta_objective_last_layer(forward, params, l, batch, val_batch, lr, cfg,
                                               head_path, outer_batch)


def meta_gradient(forward: Forward, params: Params, lam_b: Array, batch: dict,
                  val_batch: dict, lr: float | Array, cfg: MetaConfig,
                  head_path: Sequence[str] | None = None,
                  outer_batch: dict | None = None) -> tuple[Array, Array]:
    """(O(λ_B), ∇_{λ_B} O): Eq. 8-9 (one teacher) / Eq. 14 (K teachers), by autodiff."""
    fn = _objective_of_lambda(forward, params, batch, val_batch, lr, cfg, head_path,
                              outer_batch)
    return jax.value_and_grad(fn)(lam_b)


def _norm(tree) -> Array:
    return jnp.sqrt(sum(jnp.sum(g * g) for g in jax.tree.leaves(tree)))


def meta_update(forward: Forward, params: Params, lam, batch: dict, val_batch: dict,
                lr: float | Array, cfg: MetaConfig,
                head_path: Sequence[str] | None = None,
                outer_batch: dict | None = None) -> tuple[Any, dict]:
    """One λ step of Alg. 1 (lines 5-8) on the minibatch's ids. Returns (new λ, metrics).

    `lam` is the λ state of init_lambda_state: the table, or for lambda_model='confidence'
    {'table', 'phi'}, where φ takes the step (η_φ = cfg.pool_lr or cfg.lambda_lr) and the
    batch's table rows record g_φ of the new φ."""
    if cfg.lookahead_lr is not None:
        lr = cfg.lookahead_lr
    if cfg.lambda_model == "table":
        lam_b = lam[batch["id"]]
        obj, g = meta_gradient(forward, params, lam_b, batch, val_batch, lr, cfg, head_path,
                               outer_batch)
        new = update_lambdas(lam, batch["id"], g, cfg, batch.get("mask"))
        return new, {"meta_objective": obj, "meta_grad_norm": _norm(g)}
    conf = pooled.teacher_confidence(batch["teacher_logits"], batch["label"])
    fn = _objective_of_lambda(forward, params, batch, val_batch, lr, cfg, head_path,
                              outer_batch)
    obj, g = jax.value_and_grad(lambda phi: fn(pooled.pooled_lambda(phi, conf)))(lam["phi"])
    eta = cfg.pool_lr or cfg.lambda_lr
    phi = jax.tree.map(lambda p, d: p - eta * d.astype(p.dtype), lam["phi"], g)
    lam_b = pooled.pooled_lambda(phi, conf).astype(lam["table"].dtype)
    table = lam["table"]
    mask = batch.get("mask")
    if mask is not None:
        keep = mask.reshape(mask.shape + (1,) * (lam_b.ndim - 1)) > 0
        lam_b = jnp.where(keep, lam_b, table[batch["id"]])
    return {"table": table.at[batch["id"]].set(lam_b), "phi": phi}, {
        "meta_objective": obj, "meta_grad_norm": _norm(g)}


# ---------------------------------------------------------------- a whole Alg. 1 step

def make_alm_step(forward: Forward, tx: optax.GradientTransformation,
                  lr_fn: Callable[[Array], Array], cfg: MetaConfig,
                  head_path: Sequence[str] | None = None) -> Callable:
    """Alg. 1 step t for a plain (params, optimizer) loop such as the Sec. 5 toys: every L
    steps update λ (Eq. 7-10), then θ by Eq. 11 with the new λ.

    Returns step(params, opt_state, lam, t, batch, val_batch, outer_batch=None) -> (params,
    opt_state, lam, metrics); `lam` is the λ state (init_lambda_state), `outer_batch` the
    second training batch of outer_train='separate'. `t` should be an unbatched integer so that the `t % L` branch stays a real
    conditional under vmap. Pure; wrap in jax.jit. (kdjax runs use `method.make_method`.)
    """

    def step(params, opt_state, lam, t, batch, val_batch, outer_batch=None):
        lr = lr_fn(t)

        def do_meta(lam):
            new, m = meta_update(forward, params, lam, batch, val_batch, lr, cfg, head_path,
                                 outer_batch)
            return new, m["meta_objective"].astype(jnp.float32)

        lam, meta_obj = jax.lax.cond(t % cfg.update_every == 0, do_meta,
                                     lambda l: (l, jnp.zeros((), jnp.float32)), lam)
        lam_b = batch_lambda(lam, batch, cfg)
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
