"""DiSK's guide g(x) ∈ [0, 1] (A.4) and its per-round trainer (Alg. 1 line 6).

The guide phase minimises the guide objective of Eq. 5 — (1 − α)·L_dist + λ·L_budget (+ the
official log(1 + K·g) penalty) — over the guide's parameters, against the student's logits
held fixed for the phase. L_dist is Eq. 4 (`disk.loss.guide_loss`) or, inside SimKD, A.7
Eq. 9 (`simkd.loss.guide_loss`).
"""
from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from kdjax.methods.disk import loss as disk_loss
from kdjax.methods.simkd import loss as simkd_loss
from kdjax.train.optim import make_optimizer

Array = jax.Array
OBJECTIVES = ("kd", "simkd")


class GuideMLP(nn.Module):
    """Guide g(x) ∈ [0, 1] (A.4): MLP on concat(teacher features, teacher logits).

    Default widths (64, 128) then 1, BatchNorm + ReLU between layers and a sigmoid out, as in
    A.4 and the official `B23_Inst_RoutingNetworkD` (which, unlike the paper, feeds features
    only; we follow the paper and append the logits). BatchNorm momentum 0.9 = PyTorch's 0.1.
    `hidden=()` gives a logistic guide (used for the 1D toy, whose teacher has 2 features).
    `out_bias` initialises the output layer's bias (0 = flax's zeros, the official default;
    [ours] `disk.guide_start='budget'` sets logit(guide_start_g), see `output_bias`).
    """

    hidden: Sequence[int] = (64, 128)
    use_bn: bool = True
    out_bias: float = 0.0
    logit_cap: float = 0.0      # [ours] c > 0: g = σ(c·tanh(z/c)) ∈ [σ(−c), σ(c)]; 0 = σ(z)

    @nn.compact
    def __call__(self, features: Array, logits: Array, train: bool = False) -> Array:
        x = jnp.concatenate([features.reshape(features.shape[0], -1),
                             logits.reshape(logits.shape[0], -1)], axis=-1)
        x = x.astype(jnp.float32)
        for width in self.hidden:
            x = nn.Dense(width)(x)
            if self.use_bn:
                x = nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5)(x)
            x = nn.relu(x)
        out = nn.Dense(1, bias_init=nn.initializers.constant(self.out_bias))(x)
        if self.logit_cap > 0:
            out = self.logit_cap * jnp.tanh(out / self.logit_cap)
        return nn.sigmoid(out)[:, 0]


def guide_module(d: ml_collections.ConfigDict) -> GuideMLP:
    """The guide of `config.disk`: widths, output bias (`output_bias`) and logit cap."""
    return GuideMLP(hidden=tuple(d.guide_hidden), out_bias=output_bias(d),
                    logit_cap=float(d.get("guide_logit_cap", 0.0)))


def output_bias(d: ml_collections.ConfigDict) -> float:
    """Initial output bias of the guide for `config.disk`: 0 (official) or, under
    guide_start='budget' [ours], logit(guide_start_g) so that g starts at guide_start_g."""
    if d.get("guide_start", "official") != "budget":
        return 0.0
    g0 = float(d.guide_start_g)
    return float(np.log(g0) - np.log1p(-g0))


def phase_lambda(d: ml_collections.ConfigDict, r, lam):
    """λ of round r: the schedule's `lam`, or lam_max for r < guide_start_rounds under
    guide_start='budget' [ours] (the budget binds while the student picks its basin)."""
    if d.get("guide_start", "official") != "budget":
        return lam
    return jnp.where(jnp.asarray(r) < d.guide_start_rounds, jnp.float32(d.lam_max), lam)


def init_lambda(d: ml_collections.ConfigDict) -> float:
    """λ of the guide-only init epochs: [official] lam_min; [ours] lam_max under 'budget'."""
    return d.lam_max if d.get("guide_start", "official") == "budget" else d.lam_min


def guide_optimizer(d: ml_collections.ConfigDict) -> optax.GradientTransformation:
    """SGD at the constant `disk.guide_learning_rate`, momentum and coupled weight decay."""
    cfg = ml_collections.ConfigDict({
        "optimizer": "sgd", "schedule": "constant", "learning_rate": d.guide_learning_rate,
        "momentum": d.guide_momentum, "weight_decay": d.guide_weight_decay, "epochs": 1})
    return make_optimizer(cfg, 1)[0]


class GuideTrainer:
    """The guide network and its jitted SGD epoch / full-data objective.

    Works on host arrays of the whole training split (rows in split order): the teacher's
    penultimate `features` and `teacher_logits`, the student's current `student_logits` (fixed
    during the phase), `label`, and for objective 'simkd' the current feature `distance`
    d_i of Eq. 9. Runs replicated (the guide is a small MLP); batches come from a
    (seed, salt, epoch)-determined permutation. `config` supplies `config.disk`, α =
    `config.loss.ce_weight` (objective 'kd') or `config.simkd.ce_weight` ('simkd') and
    τ_T = `config.loss.temperature`.
    """

    def __init__(self, config: ml_collections.ConfigDict, batch_size: int,
                 objective: str = "kd"):
        if objective not in OBJECTIVES:
            raise ValueError(f"guide objective must be one of {OBJECTIVES}, got {objective!r}")
        d = config.disk
        self.kind = objective
        self.batch_size = batch_size
        self.model = guide_module(d)
        self.tx = guide_optimizer(d)
        usage = dict(ce_target=d.ce_target, max_ce=d.max_ce, normalize=d.normalize)
        if objective == "simkd":
            self.kw = dict(alpha=config.simkd.ce_weight, top_k=d.top_k, penalty=d.penalty,
                           **usage)
        else:
            self.kw = dict(alpha=config.loss.ce_weight, tau_t=config.loss.temperature,
                           top_k=d.top_k, include_label=d.include_label, target=d.target,
                           penalty=d.penalty,
                           penalty_scale=d.get("penalty_scale", "official"), **usage)
        self._epoch = jax.jit(self._epoch_fn)
        self._objective = jax.jit(self._objective_fn)
        self._apply = jax.jit(lambda v, f, z: self.model.apply(v, f, z, train=False))

    def init(self, rng: Array, features: np.ndarray, logits: np.ndarray) -> tuple[Any, Any]:
        """(guide variables, optimizer state), initialised on two rows."""
        variables = self.model.init(rng, jnp.asarray(features[:2]), jnp.asarray(logits[:2]))
        return variables, self.tx.init(variables["params"])

    def _loss(self, params, variables, batch, lam, delta, tau_s, train: bool):
        if train:
            g, new = self.model.apply({**variables, "params": params}, batch["features"],
                                      batch["teacher_logits"], train=True,
                                      mutable=["batch_stats"])
        else:
            g, new = self.model.apply({**variables, "params": params}, batch["features"],
                                      batch["teacher_logits"], train=False), {}
        if self.kind == "simkd":
            loss = simkd_loss.guide_loss(batch["student_logits"], batch["teacher_logits"],
                                         batch["label"], g, batch["distance"], lam=lam,
                                         delta=delta, **self.kw)
        else:
            loss = disk_loss.guide_loss(batch["student_logits"], batch["teacher_logits"],
                                        batch["label"], g, lam=lam, delta=delta, tau_s=tau_s,
                                        **self.kw)
        return loss, new

    def _epoch_fn(self, variables, opt_state, data, perm, lam, delta, tau_s):
        def step(carry, idx):
            variables, opt_state = carry
            batch = jax.tree.map(lambda a: a[idx], data)
            grads, new = jax.grad(self._loss, has_aux=True)(
                variables["params"], variables, batch, lam, delta, tau_s, True)
            updates, opt_state = self.tx.update(grads, opt_state, variables["params"])
            params = optax.apply_updates(variables["params"], updates)
            return ({**variables, **new, "params": params}, opt_state), None

        (variables, opt_state), _ = jax.lax.scan(step, (variables, opt_state), perm)
        return variables, opt_state

    def _objective_fn(self, variables, data, lam, delta, tau_s):
        return self._loss(variables["params"], variables, data, lam, delta, tau_s, False)[0]

    def train(self, variables, opt_state, data: dict, *, epochs: int, seed: int, salt: int,
              lam, delta, tau_s):
        """`epochs` epochs of guide SGD on `data` at fixed λ, δ, τ_S."""
        n = len(data["label"])
        steps = n // self.batch_size
        if steps == 0:
            raise ValueError(f"guide phase: {n} training rows < batch size {self.batch_size}")
        dev = jax.tree.map(jnp.asarray, data)
        for e in range(epochs):
            order = np.random.default_rng([seed, salt, e]).permutation(n)
            perm = jnp.asarray(order[: steps * self.batch_size].reshape(steps, -1))
            variables, opt_state = self._epoch(variables, opt_state, dev, perm,
                                               jnp.float32(lam), jnp.float32(delta),
                                               jnp.float32(tau_s))
        return variables, opt_state

    def objective(self, variables, data: dict, *, lam, delta, tau_s) -> float:
        """Full-data guide objective, guide in eval mode: the quantity the phase minimises, as
        the student sees it."""
        return float(self._objective(variables, jax.tree.map(jnp.asarray, data),
                                     jnp.float32(lam), jnp.float32(delta),
                                     jnp.float32(tau_s)))

    def values(self, variables, features: np.ndarray, logits: np.ndarray,
               chunk: int = 4096) -> np.ndarray:
        """g(x) in eval mode on every row (float32)."""
        out = [np.asarray(self._apply(variables, jnp.asarray(features[i:i + chunk]),
                                      jnp.asarray(logits[i:i + chunk])))
               for i in range(0, len(logits), chunk)]
        return np.concatenate(out).astype(np.float32)
