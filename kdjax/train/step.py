"""The jitted train and eval steps, built from a pluggable per-example loss.

A step is a pure function `train_step(state, batch, rng) -> (state, metrics)`. A method plugs
in through a `kdjax.train.method.Method`: its per-example loss `(logits, features, batch) ->
(B,)` and optionally a pre-step hook; the step owns augmentation, normalisation, the frozen
teachers' forward pass (unless the batch already carries cached `teacher_logits`), masking,
averaging and the optimizer update.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from kdjax.data.augment import normalize, random_crop_flip
from kdjax.train import optim
from kdjax.train.method import LossFn, Method, StepContext
from kdjax.train.state import TrainState

Array = jax.Array


def preprocess(images: Array, mean, std, rng: Array | None = None,
               augment: bool = False) -> Array:
    """uint8/float images -> standardised float32, with CIFAR-style crop+flip when training."""
    if augment and images.ndim == 4:
        images = random_crop_flip(rng, images)
    return normalize(images, mean, std)


def teacher_forward(teacher: nn.Module, variables: Any, x: Array) -> tuple[Array, Array]:
    """Frozen teacher in inference mode; no gradient flows into it."""
    logits, features = teacher.apply(variables, x, train=False)
    return jax.lax.stop_gradient(logits), jax.lax.stop_gradient(features)


def masked_mean(values: Array, mask: Array) -> Array:
    """Mean of `values` over the real (mask = 1) examples."""
    return jnp.sum(values * mask) / jnp.maximum(jnp.sum(mask), 1.0)


def gradient_step(model: nn.Module, loss_fn: LossFn, state: TrainState, x: Array, batch: dict,
                  mask: Array, dropout_rng: Array) -> tuple[TrainState, dict]:
    """One optimizer step on the masked mean of `loss_fn`, updating BatchNorm statistics.

    Returns the new state and metrics summed over real examples (loss_sum, correct, count) plus
    the gradient norm; methods with their own step (e.g. ALM-KD's meta-step) call it too.
    """

    def objective(params):
        (logits, features), updates = model.apply(
            {"params": params, "batch_stats": state.batch_stats}, x, train=True,
            mutable=["batch_stats"], rngs={"dropout": dropout_rng})
        per_example = loss_fn(logits, features, batch)
        return masked_mean(per_example, mask), (logits, updates, per_example)

    grads, (logits, updates, per_example) = jax.grad(objective, has_aux=True)(state.params)
    state = state.apply_gradients(grads=grads, batch_stats=updates.get("batch_stats", {}))
    correct = (jnp.argmax(logits, -1) == batch["label"]) * mask
    return state, {"loss_sum": jnp.sum(per_example * mask), "correct": jnp.sum(correct),
                   "count": jnp.sum(mask), "grad_norm": optax.global_norm(grads)}


def teacher_outputs(teachers: Sequence[nn.Module], variables: Sequence[Any],
                    x: Array) -> tuple[Array, Array | None]:
    """Frozen teachers on x: logits (B, C) and features for one teacher; (B, K, C) logits
    (float32) and no features for K > 1."""
    if len(teachers) == 1:
        return teacher_forward(teachers[0], variables[0], x)
    logits = [teacher_forward(t, v, x)[0].astype(jnp.float32)
              for t, v in zip(teachers, variables)]
    return jnp.stack(logits, axis=1), None


def make_train_step(model: nn.Module, method: Method, *, mean, std, augment: bool = False,
                    teachers: Sequence[nn.Module] = (),
                    schedule: Callable[[Array], Array] | None = None) -> Callable:
    """Build `train_step(state, batch, rng) -> (state, metrics)` for `method`.

    The teachers run inside the step on the (augmented) images, with variables
    `state.frozen['teachers']`, unless the batch already carries cached `teacher_logits`.
    A method's `pre_step` runs before the gradient step, with the learning rate
    `schedule(step)` or, without `schedule`, the one the optimizer state's schedule data gives
    (zero if none). Metrics are sums over real (mask = 1) examples so that they aggregate
    exactly over steps and hosts.
    """

    def train_step(state: TrainState, batch: dict, rng: Array):
        rng = jax.random.fold_in(rng, state.step)
        aug_rng, dropout_rng = jax.random.split(rng)
        x = preprocess(batch["image"], mean, std, aug_rng, augment)
        batch = dict(batch)
        if teachers and "teacher_logits" not in batch:
            logits, features = teacher_outputs(teachers, state.frozen["teachers"], x)
            batch["teacher_logits"] = logits
            if features is not None:
                batch["teacher_features"] = features
        metrics = {}
        if method.pre_step is not None:
            lr = (schedule(state.step) if schedule is not None
                  else optim.current_learning_rate(state.opt_state))
            lr = jnp.zeros(()) if lr is None else lr
            ctx = StepContext(model=model, x=x, rng=rng, dropout_rng=dropout_rng,
                              learning_rate=lr)
            state, batch, metrics = method.pre_step(state, batch, ctx)
        if state.example_state is not None:
            batch["example_state"] = jax.tree.map(lambda a: a[batch["id"]], state.example_state)
        mask = batch["mask"].astype(jnp.float32)
        state, step_metrics = gradient_step(model, method.loss, state, x, batch, mask,
                                            dropout_rng)
        return state, {**step_metrics, **metrics}

    return train_step


def make_eval_step(model: nn.Module, *, mean, std) -> Callable:
    """`eval_step(variables, batch) -> metrics` with sums over real examples."""

    def eval_step(variables: Any, batch: dict):
        x = preprocess(batch["image"], mean, std)
        logits, _ = model.apply(variables, x, train=False)
        mask = batch["mask"].astype(jnp.float32)
        ce = jax.nn.logsumexp(logits, -1) - jnp.take_along_axis(
            logits, batch["label"][:, None], -1)[:, 0]
        return {"loss_sum": jnp.sum(ce * mask),
                "correct": jnp.sum((jnp.argmax(logits, -1) == batch["label"]) * mask),
                "count": jnp.sum(mask)}

    return eval_step


def make_predict_step(model: nn.Module, *, mean, std) -> Callable:
    """`predict(variables, images) -> (logits, features)` in inference mode."""

    def predict(variables: Any, images: Array):
        return model.apply(variables, normalize(images, mean, std), train=False)

    return predict
