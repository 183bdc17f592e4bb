"""Train state: student parameters, BatchNorm statistics, optimizer state, per-example state."""
from __future__ import annotations

from typing import Any

import flax
import jax
import jax.numpy as jnp
import optax
from flax.training import train_state


class TrainState(train_state.TrainState):
    """flax TrainState plus BatchNorm statistics and optional per-example state.

    `example_state` is a pytree of arrays whose leading axis is the example id (e.g. ALM-KD's
    per-instance λ); the train step gathers the rows of a batch into `batch['example_state']`.
    """
    batch_stats: Any = None
    example_state: Any = None
    teacher_variables: Any = None  # frozen; never checkpointed (teachers load from their own path)


def init_variables(model: flax.linen.Module, rng: jax.Array,
                   input_shape: tuple[int, ...]) -> dict:
    """Initialise a model on a dummy batch of shape (1, *input_shape)."""
    return model.init(rng, jnp.zeros((1, *input_shape), jnp.float32), train=False)


def create_train_state(model: flax.linen.Module, tx: optax.GradientTransformation,
                       rng: jax.Array, input_shape: tuple[int, ...], *,
                       example_state: Any = None,
                       teacher_variables: Any = None) -> TrainState:
    variables = init_variables(model, rng, input_shape)
    return TrainState.create(
        apply_fn=model.apply, params=variables["params"], tx=tx,
        batch_stats=variables.get("batch_stats", {}), example_state=example_state,
        teacher_variables=teacher_variables)


def checkpoint_items(state: TrainState) -> dict:
    """The pytree a checkpoint holds (the apply function and the optimizer are code)."""
    return {"step": state.step, "params": state.params, "batch_stats": state.batch_stats,
            "opt_state": state.opt_state, "example_state": state.example_state}


def restore_items(state: TrainState, items: dict) -> TrainState:
    return state.replace(**items)
