"""Train state: student parameters, BatchNorm statistics, optimizer state and a method's state."""
from __future__ import annotations

from typing import Any

import flax
import jax
import jax.numpy as jnp
import optax
from flax.training import train_state


class TrainState(train_state.TrainState):
    """flax TrainState plus BatchNorm statistics, a method's state and frozen inputs.

    example_state: pytree of arrays whose leading axis is the example id (ALM-KD's λ, DiSK's
        g); the train step gathers a batch's rows into `batch['example_state']`. Checkpointed.
    extra: any other state a method carries (DiSK's guide network and its optimizer, τ_S).
        Checkpointed.
    frozen: what the step reads but never changes: the teachers' variables
        (`frozen['teachers']`, a list) and a method's constants (`frozen['method']`). Never
        checkpointed: teachers load from their own path and constants are rebuilt.
    """
    batch_stats: Any = None
    example_state: Any = None
    extra: Any = None
    frozen: Any = None


def init_variables(model: flax.linen.Module, rng: jax.Array,
                   input_shape: tuple[int, ...]) -> dict:
    """Initialise a model on a dummy batch of shape (1, *input_shape)."""
    return model.init(rng, jnp.zeros((1, *input_shape), jnp.float32), train=False)


def create_train_state(model: flax.linen.Module, tx: optax.GradientTransformation,
                       rng: jax.Array, input_shape: tuple[int, ...], *,
                       example_state: Any = None, extra: Any = None,
                       frozen: Any = None) -> TrainState:
    variables = init_variables(model, rng, input_shape)
    return TrainState.create(
        apply_fn=model.apply, params=variables["params"], tx=tx,
        batch_stats=variables.get("batch_stats", {}), example_state=example_state,
        extra=extra, frozen=frozen)


def checkpoint_items(state: TrainState) -> dict:
    """The pytree a checkpoint holds (the apply function, optimizer and frozen inputs are code
    or load from elsewhere)."""
    return {"step": state.step, "params": state.params, "batch_stats": state.batch_stats,
            "opt_state": state.opt_state, "example_state": state.example_state,
            "extra": state.extra}
