"""ALM-KD: adaptive per-example loss mixing for knowledge distillation (Sarkar et al.).

The student minimises Eq. 5 (single teacher) / Eq. 12 (K teachers)

    L_student(θ, λ) = Σ_i (1 − max_k λ_ki)·CE_i(θ) + Σ_k λ_ki·τ²·KL(p_Tk^τ ‖ p_S^τ)_i

with one λ per training example (and per teacher) held in an array indexed by example id.
Every L steps (Alg. 1) the λ of the current training minibatch are moved along the
meta-gradient of the outer objective (Eq. 6 + Eq. 16)

    O(λ) = mean_V KL(p'_T ‖ p_S(θ'(λ))) + β·mean_B KL(p'_T ‖ p_S(θ'(λ))),   τ = 1,
    p'_T = (1 − α)·p_T + α·e_y,      θ'(λ) = θ − η·∇_θ (1/n)Σ_i L_student,i(θ, λ_i)   (Eq. 7)

    λ ← λ − η_λ·∇_λ O                                                       (Eq. 8-10, 14-15)

`meta_grad='exact'` differentiates through the look-ahead of the *whole* network with JAX
autodiff (reverse-over-reverse); `meta_grad='last_layer'` is the paper's approximation (Sec.
4.2): only the linear head takes the look-ahead step, on frozen penultimate features.

Model-agnostic: everything takes a `forward(params, x) -> (logits, features)` function; use
`flax_forward(module)` for a flax module following the kdjax model interface, or wrap any
plain apply function. Batches are dicts with 'image', 'label', 'id', optional 'mask' (0 for
padding) and 'teacher_logits' of shape (B, C) or (B, K, C).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

Array = jax.Array
Params = Any
Forward = Callable[[Params, Array], tuple[Array, Array]]

_CLIPS = ("none", "unit")
_META_GRADS = ("exact", "last_layer")


@dataclasses.dataclass(frozen=True)
class ALMConfig:
  """Hyper-parameters of ALM-KD. Fields marked (open) are not fixed by the paper."""
  temperature: float = 4.0        # τ of the student loss, Eq. 2/5 (open for Sec. 5)
  alpha: float = 0.2              # perturbation of the outer target, Eq. 6 (paper: 0.2)
  beta: float = 0.1               # weight of the training-batch outer term, Eq. 16 (paper: 0.1)
  lambda_lr: float = 1000.0       # η_λ, Eq. 10 (open); multiplies the raw Eq. 8 gradient (∝ η/n)
  update_every: int = 10          # L of Alg. 1 (paper: 10)
  lambda_init: float = 0.5        # initial λ (open)
  clip: str = "none"              # 'none' or 'unit' (project λ onto [0, 1] after each update; open)
  meta_grad: str = "exact"        # 'exact' (whole network) or 'last_layer' (Sec. 4.2)
  lookahead_lr: float | None = None  # η of Eq. 7; None = the optimiser's current learning rate
  outer_teacher: str | int = "mean"  # multi-teacher outer target: 'mean' of teacher probs or index k

  def __post_init__(self):
    if self.clip not in _CLIPS:
      raise ValueError(f"ALMConfig.clip must be one of {_CLIPS}, got {self.clip!r}")
    if self.meta_grad not in _META_GRADS:
      raise ValueError(f"ALMConfig.meta_grad must be one of {_META_GRADS}, got {self.meta_grad!r}")
    if self.temperature <= 0:
      raise ValueError(f"ALMConfig.temperature must be > 0, got {self.temperature}")
    if not 0.0 <= self.alpha <= 1.0:
      raise ValueError(f"ALMConfig.alpha must be in [0, 1], got {self.alpha}")
    if self.beta < 0:
      raise ValueError(f"ALMConfig.beta must be >= 0, got {self.beta}")
    if int(self.update_every) < 1:
      raise ValueError(f"ALMConfig.update_every must be >= 1, got {self.update_every}")
    if not (self.outer_teacher == "mean" or isinstance(self.outer_teacher, int)):
      raise ValueError("ALMConfig.outer_teacher must be 'mean' or a teacher index, "
                       f"got {self.outer_teacher!r}")

  @classmethod
  def from_dict(cls, d) -> "ALMConfig":
    """Build from a ConfigDict/dict, ignoring keys that are not fields."""
    names = {f.name for f in dataclasses.fields(cls)}
    d = d.to_dict() if hasattr(d, "to_dict") else dict(d)
    return cls(**{k: v for k, v in d.items() if k in names})


# ---------------------------------------------------------------- per-example losses (dtype-kept)
# kdjax.losses computes in float32; these keep float64 so finite-difference tests are exact.

def _float(x: Array) -> Array:
  return x.astype(jnp.promote_types(x.dtype, jnp.float32))


def _kl(logits: Array, target: Array, temperature: float | Array = 1.0) -> Array:
  """KL(target ‖ softmax(logits/T)) over the last axis."""
  log_q = jax.nn.log_softmax(_float(logits) / temperature, axis=-1)
  target = target.astype(log_q.dtype)
  return jnp.sum(jax.scipy.special.xlogy(target, target) - target * log_q, axis=-1)


def _ce(logits: Array, labels: Array) -> Array:
  log_q = jax.nn.log_softmax(_float(logits), axis=-1)
  return -jnp.take_along_axis(log_q, labels[..., None].astype(jnp.int32), axis=-1)[..., 0]


def _as_multi(teacher_logits: Array, lam: Array | None = None):
  """(B, C) / (B,) -> (B, 1, C) / (B, 1); (B, K, C) / (B, K) unchanged."""
  single = teacher_logits.ndim == 2
  t = teacher_logits[:, None, :] if single else teacher_logits
  if lam is None:
    return t, None, single
  lam = jnp.asarray(lam)
  if single and lam.ndim == 1:
    lam = lam[:, None]
  if lam.ndim != 2 or lam.shape[1] != t.shape[1]:
    raise ValueError(f"lambda shape {lam.shape} does not match teacher_logits {teacher_logits.shape}"
                     " (want (B,) for (B, C) teachers or (B, K) for (B, K, C))")
  return t, lam, single


def loss_terms(logits: Array, labels: Array, teacher_logits: Array,
               temperature: float) -> tuple[Array, Array]:
  """CE_i (B,) and τ²·KL(p_Tk^τ ‖ p_S^τ)_i (B, K) of Eq. 1-2 (K = 1 for a (B, C) teacher)."""
  t, _, _ = _as_multi(teacher_logits)
  p_t = jax.nn.softmax(_float(t) / temperature, axis=-1)                  # (B, K, C)
  kl = _kl(logits[:, None, :], p_t, temperature) * temperature**2          # (B, K)
  return _ce(logits, labels), kl


def student_loss(logits: Array, labels: Array, teacher_logits: Array, lam: Array,
                 temperature: float) -> Array:
  """Per-example ALM-KD student loss, Eq. 5 (λ (B,), teacher (B, C)) or Eq. 12 (λ (B, K))."""
  _, lam, _ = _as_multi(teacher_logits, lam)
  ce, kl = loss_terms(logits, labels, teacher_logits, temperature)
  lam = lam.astype(kl.dtype)
  return (1.0 - jnp.max(lam, axis=-1)) * ce + jnp.sum(lam * kl, axis=-1)


def perturbed_target(teacher_logits: Array, labels: Array, num_classes: int, alpha: float,
                     outer_teacher: str | int = "mean") -> Array:
  """p'_T = (1 − α)·p_T + α·e_y at τ = 1 (Eq. 6); multi-teacher: mean of p_Tk or teacher k."""
  t, _, _ = _as_multi(teacher_logits)
  p = jax.nn.softmax(_float(t), axis=-1)
  p = p.mean(axis=1) if outer_teacher == "mean" else p[:, outer_teacher]
  return (1.0 - alpha) * p + alpha * jax.nn.one_hot(labels, num_classes, dtype=p.dtype)


def _masked_mean(x: Array, mask: Array | None) -> Array:
  if mask is None:
    return jnp.mean(x)
  mask = mask.astype(x.dtype)
  return jnp.sum(x * mask) / jnp.maximum(jnp.sum(mask), 1.0)


# ---------------------------------------------------------------- λ storage

def init_lambdas(num_examples: int, num_teachers: int | None = None, value: float = 0.5,
                 dtype=jnp.float32) -> Array:
  """λ array indexed by example id: (N,) for one teacher, (N, K) for K teachers."""
  if num_examples < 1:
    raise ValueError(f"num_examples must be >= 1, got {num_examples}")
  shape = (num_examples,) if num_teachers is None else (num_examples, num_teachers)
  return jnp.full(shape, value, dtype)


def update_lambdas(lam: Array, ids: Array, grad: Array, cfg: ALMConfig,
                   mask: Array | None = None) -> Array:
  """Eq. 10 / 15: λ_ids ← λ_ids − η_λ·grad (duplicates add), then the optional [0, 1] clip."""
  step = -cfg.lambda_lr * grad
  if mask is not None:
    step = step * mask.reshape(mask.shape + (1,) * (step.ndim - 1)).astype(step.dtype)
  new = lam.at[ids].add(step.astype(lam.dtype))
  if cfg.clip == "unit":
    new = new.at[ids].set(jnp.clip(new[ids], 0.0, 1.0))
  return new


# ---------------------------------------------------------------- look-ahead and meta-gradient

def _train_objective(forward: Forward, params: Params, batch: dict, lam_b: Array,
                     temperature: float) -> Array:
  logits, _ = forward(params, batch["image"])
  per_ex = student_loss(logits, batch["label"], batch["teacher_logits"], lam_b, temperature)
  return _masked_mean(per_ex, batch.get("mask"))


def lookahead(forward: Forward, params: Params, batch: dict, lam_b: Array, lr: float | Array,
              temperature: float) -> Params:
  """θ' = θ − η·∇_θ (1/n)Σ_i L_student,i(θ, λ_i) (Eq. 7), differentiable in λ."""
  grads = jax.grad(lambda p: _train_objective(forward, p, batch, lam_b, temperature))(params)
  return jax.tree.map(lambda p, g: p - lr * g.astype(p.dtype), params, grads)


def _outer_from_logits(logits_val, logits_tr, val_batch, batch, cfg: ALMConfig) -> tuple:
  c = logits_val.shape[-1]
  tgt_v = perturbed_target(val_batch["teacher_logits"], val_batch["label"], c, cfg.alpha,
                           cfg.outer_teacher)
  tgt_t = perturbed_target(batch["teacher_logits"], batch["label"], c, cfg.alpha,
                           cfg.outer_teacher)
  val = _masked_mean(_kl(logits_val, tgt_v), val_batch.get("mask"))
  tr = _masked_mean(_kl(logits_tr, tgt_t), batch.get("mask"))
  return val + cfg.beta * tr, (val, tr)


def outer_objective(forward: Forward, params: Params, batch: dict, val_batch: dict,
                    cfg: ALMConfig) -> tuple[Array, tuple[Array, Array]]:
  """Eq. 6 + 16 at parameters `params`: KL to p'_T on validation + β·the same on training."""
  logits_v, _ = forward(params, val_batch["image"])
  logits_t, _ = forward(params, batch["image"])
  return _outer_from_logits(logits_v, logits_t, val_batch, batch, cfg)


def meta_objective(forward: Forward, params: Params, lam_b: Array, batch: dict, val_batch: dict,
                   lr: float | Array, cfg: ALMConfig) -> Array:
  """O(λ_B) = outer objective at the look-ahead parameters θ'(λ_B) — whole network."""
  new = lookahead(forward, params, batch, lam_b, lr, cfg.temperature)
  return outer_objective(forward, new, batch, val_batch, cfg)[0]


def _get_path(tree, path: Sequence[str]):
  for k in path:
    tree = tree[k]
  return tree


def _set_path(tree, path: Sequence[str], value):
  if not path:
    return value
  out = dict(tree)
  out[path[0]] = _set_path(tree[path[0]], path[1:], value)
  return out


def find_head_path(params: Params, feature_dim: int, num_classes: int) -> tuple[str, ...]:
  """Path to the unique {'kernel': (F, C), 'bias': (C,)} node of `params` (the linear head)."""
  hits = []

  def visit(node, path):
    if isinstance(node, dict) or hasattr(node, "items"):
      keys = set(node.keys())
      if "kernel" in keys and getattr(node["kernel"], "shape", None) == (feature_dim, num_classes):
        hits.append(path)
      for k, v in node.items():
        visit(v, path + (k,))

  visit(params, ())
  if len(hits) != 1:
    raise ValueError(f"expected one linear head with kernel ({feature_dim}, {num_classes}) in "
                     f"params, found {len(hits)}: {hits}; pass head_path explicitly")
  return hits[0]


def meta_objective_last_layer(forward: Forward, params: Params, lam_b: Array, batch: dict,
                              val_batch: dict, lr: float | Array, cfg: ALMConfig,
                              head_path: Sequence[str]) -> Array:
  """Last-layer approximation (Sec. 4.2): features frozen at θ, look-ahead on the head only.

  Assumes logits = features @ kernel + bias for the head at `head_path`.
  """
  head = _get_path(params, head_path)
  _, f_t = forward(params, batch["image"])
  _, f_v = forward(params, val_batch["image"])
  f_t, f_v = jax.lax.stop_gradient(f_t), jax.lax.stop_gradient(f_v)

  def head_apply(h, f):
    out = f @ h["kernel"]
    return out + h["bias"] if "bias" in h else out

  def inner(h):
    per_ex = student_loss(head_apply(h, f_t), batch["label"], batch["teacher_logits"], lam_b,
                          cfg.temperature)
    return _masked_mean(per_ex, batch.get("mask"))

  g = jax.grad(inner)(head)
  new_head = jax.tree.map(lambda p, d: p - lr * d.astype(p.dtype), head, g)
  return _outer_from_logits(head_apply(new_head, f_v), head_apply(new_head, f_t), val_batch,
                            batch, cfg)[0]


def meta_gradient(forward: Forward, params: Params, lam_b: Array, batch: dict, val_batch: dict,
                  lr: float | Array, cfg: ALMConfig,
                  head_path: Sequence[str] | None = None) -> tuple[Array, Array]:
  """(O(λ_B), ∇_{λ_B} O) — Eq. 8-9 (single teacher) / Eq. 14 (multi-teacher), exactly."""
  if cfg.meta_grad == "exact":
    fn = lambda l: meta_objective(forward, params, l, batch, val_batch, lr, cfg)
  else:
    if head_path is None:
      raise ValueError("meta_grad='last_layer' needs head_path (see find_head_path)")
    fn = lambda l: meta_objective_last_layer(forward, params, l, batch, val_batch, lr, cfg,
                                             head_path)
  return jax.value_and_grad(fn)(lam_b)


def meta_update(forward: Forward, params: Params, lam: Array, batch: dict, val_batch: dict,
                lr: float | Array, cfg: ALMConfig,
                head_path: Sequence[str] | None = None) -> tuple[Array, dict]:
  """One λ step of Alg. 1 (lines 5-8) on the minibatch's ids. Returns (new λ, metrics)."""
  lam_b = lam[batch["id"]]
  if cfg.lookahead_lr is not None:
    lr = cfg.lookahead_lr
  obj, g = meta_gradient(forward, params, lam_b, batch, val_batch, lr, cfg, head_path)
  new = update_lambdas(lam, batch["id"], g, cfg, batch.get("mask"))
  return new, {"meta_objective": obj, "meta_grad_norm": jnp.sqrt(jnp.sum(g * g))}


# ---------------------------------------------------------------- a full ALM-KD training step

def make_alm_step(forward: Forward, tx: optax.GradientTransformation,
                  lr_fn: Callable[[Array], Array], cfg: ALMConfig,
                  head_path: Sequence[str] | None = None) -> Callable:
  """Alg. 1 step t: every L steps update λ (Eq. 7-10), then θ by Eq. 11 with the new λ.

  Returns step(params, opt_state, lam, t, batch, val_batch) -> (params, opt_state, lam, metrics).
  `t` should be an unbatched integer so that the `t % L` branch stays a real conditional under
  vmap. Pure; wrap in jax.jit.
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


def student_loss_fn(temperature: float) -> Callable[[Array, Array, dict], Array]:
  """Adapter to kdjax.train's `loss_fn(logits, features, batch)`.

  λ of the batch comes in batch['lambda'] or, with the λ array held as the train state's
  per-example state (kdjax.train.loop.fit(example_state=λ)), in batch['example_state'].
  """

  def loss_fn(logits, features, batch):
    del features
    lam = batch["lambda"] if "lambda" in batch else batch["example_state"]
    return student_loss(logits, batch["label"], batch["teacher_logits"], lam, temperature)

  return loss_fn


# ---------------------------------------------------------------- teachers and forwards

def flax_forward(module, extra_variables: dict | None = None, train: bool = False) -> Forward:
  """forward(params, x) for a kdjax flax model returning (logits, features).

  `extra_variables` (e.g. {'batch_stats': ...}) are held fixed; with train=True the batch-stat
  updates are computed and discarded (the meta step must not change them).
  """
  extra = dict(extra_variables or {})

  def forward(params, x):
    variables = {"params": params, **extra}
    if train and "batch_stats" in extra:
      out, _ = module.apply(variables, x, train=True, mutable=["batch_stats"])
      return out
    return module.apply(variables, x, train=train)

  return forward


def teacher_logits_from_checkpoints(forward: Forward, checkpoints: Sequence[Params], x,
                                    batch_size: int = 1024) -> np.ndarray:
  """Logits of several teachers (e.g. early-stopped checkpoints of one run, Sec. 6.3).

  Returns (N, K, C) in checkpoint order. A single checkpoint of the student's own architecture
  is the self-distillation teacher of Sec. 6.5 (take [:, 0]).
  """
  if len(checkpoints) == 0:
    raise ValueError("teacher_logits_from_checkpoints needs at least one checkpoint")
  fwd = jax.jit(lambda p, xb: forward(p, xb)[0])
  x = np.asarray(x)
  out = []
  for p in checkpoints:
    chunks = [np.asarray(fwd(p, x[i:i + batch_size])) for i in range(0, len(x), batch_size)]
    out.append(np.concatenate(chunks, axis=0))
  return np.stack(out, axis=1)
