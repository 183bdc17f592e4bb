"""Jittable on-device augmentation (CIFAR-style random crop + horizontal flip) and normalization.

Pure jnp; per-example randomness from one PRNG key, vmapped over the batch.
"""
from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp


def _crop_flip_one(image, dy, dx, flip, height: int, width: int):
    crop = jax.lax.dynamic_slice(image, (dy, dx, 0), (height, width, image.shape[-1]))
    return jnp.where(flip, crop[:, ::-1, :], crop)


def random_crop_flip(rng: jax.Array, images: jax.Array, pad: int = 4,
                     mode: str = "constant", flip: bool = True) -> jax.Array:
    """Pads each image by `pad` pixels, crops a random HxW window, flips left-right w.p. 1/2.

    images: (B, H, W, C), any dtype (kept). mode: 'constant' (zero padding, as in the CIFAR
    ResNet papers) or 'reflect'. Same rng -> same output.
    """
    if images.ndim != 4:
        raise ValueError(f"images must be (B, H, W, C), got shape {images.shape}")
    if pad < 0:
        raise ValueError(f"pad must be >= 0, got {pad}")
    if mode not in ("constant", "reflect"):
        raise ValueError(f"mode must be 'constant' or 'reflect', got {mode!r}")
    b, h, w, _ = images.shape
    padded = jnp.pad(images, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode=mode)
    ky, kx, kf = jax.random.split(rng, 3)
    dy = jax.random.randint(ky, (b,), 0, 2 * pad + 1)
    dx = jax.random.randint(kx, (b,), 0, 2 * pad + 1)
    flips = jax.random.bernoulli(kf, 0.5, (b,)) if flip else jnp.zeros((b,), bool)
    return jax.vmap(_crop_flip_one, in_axes=(0, 0, 0, 0, None, None))(padded, dy, dx, flips, h, w)


def normalize(images: jax.Array, mean: Sequence[float], std: Sequence[float]) -> jax.Array:
    """uint8 images -> float32 `(x / 255 - mean) / std` per channel (float input: no /255)."""
    x = images.astype(jnp.float32)
    if images.dtype == jnp.uint8:
        x = x / 255.0
    mean = jnp.asarray(mean, jnp.float32)
    std = jnp.asarray(std, jnp.float32)
    return (x - mean) / std


def preprocess(rng: jax.Array, images: jax.Array, mean: Sequence[float], std: Sequence[float],
               *, augment: bool = False, pad: int = 4, mode: str = "constant") -> jax.Array:
    """uint8 batch -> float32 model input: optional random crop + flip, then `normalize`."""
    if augment:
        images = random_crop_flip(rng, images, pad=pad, mode=mode)
    return normalize(images, mean, std)
