"""bench/op_profile.py: op times join to the compiled HLO's instructions by name and role."""
from __future__ import annotations

import os
import re
import sys

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from bench import op_profile  # noqa: E402


def _conv_step():
    def loss(x, w):
        y = jax.lax.conv_general_dilated(x, w, (1, 1), "SAME",
                                         dimension_numbers=("NHWC", "HWIO", "NHWC"))
        return jnp.sum(jax.nn.relu(y) ** 2)
    x = jnp.asarray(np.random.default_rng(0).normal(size=(4, 8, 8, 24)), jnp.float32)
    w = jnp.asarray(np.random.default_rng(1).normal(size=(3, 3, 24, 24)), jnp.float32)
    return jax.jit(jax.grad(loss, argnums=(0, 1))).lower(x, w).compile()


def test_categories_cover_every_timed_instruction_once():
    text = _conv_step().as_text()
    entry = text[text.index("\nENTRY"):]
    names = re.findall(r"^\s*(?:ROOT )?%?([\w.\-]+) = \S+ [\w\-]+\(", entry, re.M)
    times = {n: float(i + 1) for i, n in enumerate(names)}
    times["not-an-instruction"] = 1000.0  # runtime events that are not HLO ops are left out
    by_category = op_profile.categorize(text, times)
    assert sum(by_category.values()) == sum(float(i + 1) for i in range(len(names)))
    convs = [k for k in by_category if "convolution" in k]
    # the forward convolution and its two gradients, each named by its role
    roles = {role for role in ("forward", "input gradient", "weight gradient")
             for k in convs if f"convolution, {role} " in k}
    assert roles == {"forward", "input gradient", "weight gradient"}, convs
    assert any("weight gradient f32[24,3,3,24]" in k for k in convs), convs
    assert all("[" in k for k in convs)  # with the output shape


def test_enable_adds_the_traceme_flag_once():
    env = {"XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    op_profile.enable(env)
    op_profile.enable(env)
    assert env["XLA_FLAGS"].split() == ["--xla_force_host_platform_device_count=2",
                                        op_profile.TRACEME_FLAG]
