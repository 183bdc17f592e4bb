"""Train state: student parameters, BatchNorm statistics, optimizer state and a method's state."""
from __future__ import annotations

from typing import Any

import flax
import jax
import jax.numpy as jnp
import optax
from flax.training import train_state

from kdjax import errors


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
    """Initialise a model on a dummy batch of shape (1, *input_shape), checking that it returns
    what every model returns (`check_outputs`)."""
    outputs, variables = model.init_with_output(rng, jnp.zeros((1, *input_shape), jnp.float32),
                                                train=False)
    check_outputs(model, outputs)
    return variables


def check_outputs(model: flax.linen.Module, outputs: Any) -> None:
    """Raise `errors.ConfigError` unless `outputs` of a batch of one is (logits (1, K),
    penultimate features (1, F)), K = `model.num_classes` where the model has that field."""
    shapes = [getattr(o, "shape", None) for o in outputs] if isinstance(outputs, tuple) else []
    k = getattr(model, "num_classes", None)
    if (len(shapes) == 2 and all(s is not None and len(s) == 2 and s[0] == 1 for s in shapes)
            and (not isinstance(k, int) or shapes[0][1] == k)):
        return
    got = (f"a tuple of shapes {shapes}" if isinstance(outputs, tuple) else
           f"a {type(outputs).__name__}" + (f" of shape {outputs.shape}"
                                           if hasattr(outputs, "shape") else ""))
    raise errors.ConfigError(
        f"model {type(model).__name__} returned {got} for a batch of one; a kdjax model returns "
        f"(logits (B, {k if isinstance(k, int) else 'num_classes'}), penultimate features "
        "(B, F)) (docs/custom_models.md)")


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
