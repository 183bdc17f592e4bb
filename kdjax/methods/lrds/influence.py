"""Per-example scores of training examples on the student, for LR+DS Data Selection.

Lan et al. (arXiv 2404.03693, Data Selection) rank the training set by each example's
*influence* on the student and distil only the top fraction D^t. All scorers here work on the
student's last layer (a linear soft-max classifier on the penultimate features phi), where the
per-example gradient and the Hessian have closed forms (theta = [W; b], shape (F+1, C)):

    g_i = phi~_i (p_i - y_i)^T,
    H   = 1/N sum_i (phi~_i phi~_i^T) kron (diag p_i - p_i p_i^T) + damping I,

with phi~ = [phi, 1] and p = softmax(logits). Only features, logits and labels are needed, so the
scorers are independent of the model's parameter names. Scorers (higher = more influential;
`select_subset` keeps the top fraction):

- 'influence' (the default, what DS uses): ||H^-1 g_i||_2, the norm of Koh & Liang's (2017)
  I_up,params(z_i) = -H^-1 g_i, i.e. how far up-weighting z_i moves the student's parameters
  (the summary: "influence scores estimate each sample's effect on model parameters"; leaving z_i
  out moves theta by about H^-1 g_i / N).
- 'self_influence': g_i^T H^-1 g_i (the LOO increase of z_i's own loss, times N).
- 'val_influence': g_val^T H^-1 g_i = -I_up,loss(z_i, D_val) (how much the mean validation loss
  rises when z_i is removed, times N: high = helpful). Needs a validation set.
- 'tracin': sum_k lr_k g_i^(k) . g_i^(k) (TracIn self-influence over checkpoints k), or
  sum_k lr_k g_val^(k) . g_i^(k) with a validation set.
- 'loss': CE(z_i, y_i);  'margin': max_{c != y} z_c - z_y (large = hard).

The Hessian is either 'exact' (dense (F+1)C x (F+1)C, eigendecomposed once; for small heads),
'kfac' (A kron S with the damping added to the exact eigenvalues of the Kronecker product; for
heads such as ImageNet's 512 x 1000) or 'auto' (exact up to `max_exact_dim` parameters).
The CE here is the student's ground-truth CE at its current parameters (the scoring point is the
caller's choice; `selection.py` uses a CE warm-up student). Every pass over the data is a jitted
function of one fixed batch shape (the last batch is padded and masked), so the whole set
compiles once per pass.
"""
from __future__ import annotations

from functools import partial
from typing import Callable, Iterator, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array

SCORERS = ("influence", "self_influence", "val_influence", "tracin", "loss", "margin")
HESSIANS = ("exact", "kfac", "auto")


class Outputs(NamedTuple):
    """The student's penultimate features (N, F) and logits (N, C) on a set of examples."""
    features: np.ndarray
    logits: np.ndarray


# --------------------------------------------------------------------------- batching helpers

def _batches(n: int, batch_size: int) -> Iterator[tuple[int, int]]:
    for start in range(0, n, batch_size):
        yield start, min(start + batch_size, n)


def _padded(arr, start: int, stop: int, batch_size: int) -> np.ndarray:
    """Rows [start, stop) of `arr`, zero-padded to `batch_size` rows (one compiled shape)."""
    chunk = np.asarray(arr[start:stop])
    if stop - start == batch_size:
        return chunk
    pad = np.zeros((batch_size - (stop - start),) + chunk.shape[1:], chunk.dtype)
    return np.concatenate([chunk, pad], axis=0)


def _iterate(arrays: Sequence, n: int, batch_size: int):
    """Yield (start, stop, padded arrays..., mask) over the first axis."""
    for start, stop in _batches(n, batch_size):
        dtype = np.asarray(arrays[0][:1]).dtype
        mask = np.zeros((batch_size,), dtype if np.issubdtype(dtype, np.floating) else np.float32)
        mask[: stop - start] = 1
        yield (start, stop, *[_padded(a, start, stop, batch_size) for a in arrays], mask)


def _check_inputs(outputs: Outputs, labels, name: str = "train") -> tuple[int, int, int]:
    f, z, y = np.shape(outputs.features), np.shape(outputs.logits), np.shape(labels)
    if len(f) != 2 or len(z) != 2 or len(y) != 1 or not f[0] == z[0] == y[0]:
        raise ValueError(f"{name}: need features (N, F), logits (N, C), labels (N,); got "
                         f"{f}, {z}, {y}")
    labels = np.asarray(labels)
    if labels.size and (labels.min() < 0 or labels.max() >= z[1]):
        raise ValueError(f"{name}: labels must lie in [0, {z[1]}), got range "
                         f"[{labels.min()}, {labels.max()}]")
    return f[0], f[1], z[1]


# --------------------------------------------------------------------------- closed-form pieces

def _phi(features: Array, fit_bias: bool) -> Array:
    if not fit_bias:
        return features
    return jnp.concatenate([features, jnp.ones_like(features[:, :1])], axis=1)


def _residual(logits: Array, labels: Array) -> Array:
    """dCE/dlogits = softmax(z) - onehot(y), (B, C)."""
    return jax.nn.softmax(logits, axis=-1) - jax.nn.one_hot(labels, logits.shape[-1],
                                                            dtype=logits.dtype)


def last_layer_grads(features: Array, logits: Array, labels: Array,
                     fit_bias: bool = True) -> Array:
    """Per-example CE gradients w.r.t. the last layer [W; b], shape (B, F+1, C)."""
    return _phi(features, fit_bias)[:, :, None] * _residual(logits, labels)[:, None, :]


@jax.jit
def _ce_margin(logits: Array, labels: Array) -> tuple[Array, Array]:
    logp = jax.nn.log_softmax(logits, axis=-1)
    ce = -jnp.take_along_axis(logp, labels[:, None], axis=1)[:, 0]
    z_y = jnp.take_along_axis(logits, labels[:, None], axis=1)[:, 0]
    others = jnp.where(jax.nn.one_hot(labels, logits.shape[-1], dtype=bool), -jnp.inf, logits)
    return ce, jnp.max(others, axis=-1) - z_y


# --------------------------------------------------------------------------- jitted batch kernels
# Module-level, with the switches static, so every call with the same batch shape reuses one
# compiled program.

@partial(jax.jit, static_argnames="fit_bias")
def _exact_hessian_batch(features, logits, mask, *, fit_bias):
    """sum_b (phi phi^T) kron (diag p - p p^T) over the batch's real rows, (D, D)."""
    phi = _phi(features, fit_bias) * mask[:, None]
    p = jax.nn.softmax(logits, axis=-1)
    b, f = phi.shape
    c = p.shape[1]
    m = jnp.einsum("bf,bg,bc->fgc", phi, phi, p)
    diag = jnp.einsum("fgc,cd->fcgd", m, jnp.eye(c, dtype=p.dtype)).reshape(f * c, f * c)
    j = (phi[:, :, None] * p[:, None, :]).reshape(b, f * c)
    return diag - j.T @ j


@partial(jax.jit, static_argnames="fit_bias")
def _kfac_batch(features, logits, mask, *, fit_bias):
    """Batch sums of the K-FAC factors: sum phi phi^T and sum (diag p - p p^T)."""
    phi = _phi(features, fit_bias) * mask[:, None]
    p = jax.nn.softmax(logits, axis=-1) * mask[:, None]
    return phi.T @ phi, jnp.diag(jnp.sum(p, 0)) - p.T @ p


@partial(jax.jit, static_argnames="fit_bias")
def _grad_sum_batch(features, logits, labels, mask, *, fit_bias):
    return jnp.einsum("bfc,b->fc", last_layer_grads(features, logits, labels, fit_bias), mask)


def _reduce_kind(v: Array, ev: Array, vv: Array, kind: str) -> Array:
    if kind == "influence":
        return jnp.sqrt(jnp.sum(v**2 / ev**2, axis=1))
    if kind == "self_influence":
        return jnp.sum(v**2 / ev, axis=1)
    return v @ vv


@partial(jax.jit, static_argnames=("kind", "fit_bias"))
def _exact_score_batch(features, logits, y, q, evals, v_val, *, kind, fit_bias):
    """Scores in H's eigenbasis: v = Q^T g_i, H^-1 = Q diag(1/evals) Q^T."""
    g = last_layer_grads(features, logits, y, fit_bias)
    return _reduce_kind(g.reshape(g.shape[0], -1) @ q, evals, v_val, kind)


@partial(jax.jit, static_argnames=("kind", "fit_bias"))
def _kfac_score_batch(features, logits, y, ua, ug, lam, v_val, *, kind, fit_bias):
    """(A kron S + damping I)^-1 via the eigenbases of A and S: v = (U_a^T phi~) kron (U_s^T r)."""
    a_i = _phi(features, fit_bias) @ ua
    r_i = _residual(logits, y) @ ug
    v = (a_i[:, :, None] * r_i[:, None, :]).reshape(a_i.shape[0], -1)
    return _reduce_kind(v, lam.reshape(-1), v_val.reshape(-1), kind)


@partial(jax.jit, static_argnames="fit_bias")
def _tracin_self_batch(features, logits, y, *, fit_bias):
    """||g_i||^2 = ||phi~_i||^2 ||p_i - y_i||^2 for the rank-one last-layer gradient."""
    return jnp.sum(_phi(features, fit_bias)**2, 1) * jnp.sum(_residual(logits, y)**2, 1)


@partial(jax.jit, static_argnames="fit_bias")
def _tracin_val_batch(features, logits, y, g_val, *, fit_bias):
    """<g_val, g_i> = phi~_i^T G_val r_i."""
    return jnp.einsum("bf,fc,bc->b", _phi(features, fit_bias), g_val, _residual(logits, y))


# --------------------------------------------------------------------------- Hessian passes

def exact_hessian(outputs: Outputs, *, damping: float, batch_size: int = 1024,
                  fit_bias: bool = True) -> Array:
    """Exact Hessian of the mean last-layer CE plus damping*I, flattened row-major (f, c)."""
    n, _, _ = _check_inputs(outputs, np.zeros(len(outputs.logits), np.int32))
    total = None
    for _, _, f, z, m in _iterate([outputs.features, outputs.logits], n, batch_size):
        h = _exact_hessian_batch(f, z, m, fit_bias=fit_bias)
        total = h if total is None else total + h
    return total / n + damping * jnp.eye(total.shape[0], dtype=total.dtype)


def _kfac_factors(outputs: Outputs, batch_size: int, fit_bias: bool) -> tuple[Array, Array]:
    n = len(outputs.logits)
    a = s = None
    for _, _, f, z, m in _iterate([outputs.features, outputs.logits], n, batch_size):
        da, ds = _kfac_batch(f, z, m, fit_bias=fit_bias)
        a, s = (da, ds) if a is None else (a + da, s + ds)
    return a / n, s / n


def _val_gradient(val: Outputs, val_labels, batch_size: int, fit_bias: bool) -> Array:
    """Mean last-layer CE gradient over a validation set, (F+1, C)."""
    n, _, _ = _check_inputs(val, val_labels, "val")
    total = None
    for _, _, f, z, y, m in _iterate([val.features, val.logits, val_labels], n, batch_size):
        g = _grad_sum_batch(f, z, y, m, fit_bias=fit_bias)
        total = g if total is None else total + g
    return total / n


# --------------------------------------------------------------------------- public scorers

def influence_scores(outputs: Outputs, labels, *, kind: str = "influence",
                     val: Outputs | None = None, val_labels=None, damping: float = 1e-3,
                     hessian: str = "exact", batch_size: int = 1024, fit_bias: bool = True,
                     max_exact_dim: int = 16384) -> np.ndarray:
    """Influence-function scores (Koh & Liang 2017) of every training example, (N,).

    kind: 'influence' (||H^-1 g_i||), 'self_influence' (g_i^T H^-1 g_i) or 'val_influence'
    (g_val^T H^-1 g_i). H is the Hessian of the mean CE over `outputs` (the training set) plus
    `damping`*I, 'exact', 'kfac' or 'auto' (exact up to `max_exact_dim` parameters). Scores
    are unscaled: leaving z_i out changes theta by ~H^-1 g_i / N.
    """
    if kind not in ("influence", "self_influence", "val_influence"):
        raise ValueError(f"kind must be influence/self_influence/val_influence, got {kind!r}")
    if hessian not in HESSIANS:
        raise ValueError(f"hessian must be one of {HESSIANS}, got {hessian!r}")
    if not damping >= 0:
        raise ValueError(f"damping must be >= 0, got {damping}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    n, feat, c = _check_inputs(outputs, labels)
    if kind == "val_influence" and (val is None or val_labels is None):
        raise ValueError("kind='val_influence' needs val outputs and val_labels")
    d = (feat + int(fit_bias)) * c
    if hessian == "auto":
        hessian = "exact" if d <= max_exact_dim else "kfac"
    g_val = _val_gradient(val, val_labels, batch_size, fit_bias) if kind == "val_influence" \
        else None

    if hessian == "exact":
        if d > max_exact_dim:
            raise ValueError(f"exact Hessian of dimension {d} > max_exact_dim={max_exact_dim}; "
                             "use hessian='kfac' (or raise max_exact_dim)")
        evals, q = jnp.linalg.eigh(exact_hessian(outputs, damping=damping,
                                                 batch_size=batch_size, fit_bias=fit_bias))
        v_val = (g_val.reshape(-1) @ q) / evals if g_val is not None else jnp.zeros_like(evals)
        consts, kernel = (q, evals, v_val), _exact_score_batch
    else:
        a, s = _kfac_factors(outputs, batch_size, fit_bias)
        sa, ua = jnp.linalg.eigh(a)
        sg, ug = jnp.linalg.eigh(s)
        lam = sa[:, None] * sg[None, :] + damping
        v_val = (ua.T @ g_val @ ug) / lam if g_val is not None else jnp.zeros_like(lam)
        consts, kernel = (ua, ug, lam, v_val), _kfac_score_batch

    fn = partial(kernel, kind=kind, fit_bias=fit_bias)
    return _map_batches(fn, [outputs.features, outputs.logits, labels], n, batch_size, consts)


def _map_batches(fn: Callable, arrays: Sequence, n: int, batch_size: int,
                 consts: tuple = ()) -> np.ndarray:
    """fn(*padded_batch, *consts) over fixed-size batches, concatenated and unpadded."""
    out = []
    for start, stop, *padded, _ in _iterate(arrays, n, batch_size):
        out.append(np.asarray(fn(*padded, *consts))[: stop - start])
    return np.concatenate(out) if out else np.zeros((0,), np.float32)


def tracin_scores(checkpoints: Sequence[Outputs], labels, *, lrs: Sequence[float] | None = None,
                  val: Sequence[Outputs] | None = None, val_labels=None,
                  batch_size: int = 1024, fit_bias: bool = True) -> np.ndarray:
    """TracIn (Pruthi et al. 2020) on the last layer: sum_k lr_k <g^(k), g_i^(k)>, (N,).

    With `val` (one Outputs per checkpoint) the left factor is the mean validation gradient;
    otherwise it is g_i itself (self-influence, ||phi~_i||^2 ||p_i - y_i||^2 per checkpoint).
    """
    if not checkpoints:
        raise ValueError("tracin_scores needs at least one checkpoint's outputs")
    lrs = [1.0] * len(checkpoints) if lrs is None else list(lrs)
    if len(lrs) != len(checkpoints):
        raise ValueError(f"got {len(lrs)} learning rates for {len(checkpoints)} checkpoints")
    if val is not None and (val_labels is None or len(val) != len(checkpoints)):
        raise ValueError("val needs val_labels and one Outputs per checkpoint")
    total = None
    for k, (ckpt, lr) in enumerate(zip(checkpoints, lrs)):
        n, _, _ = _check_inputs(ckpt, labels, f"checkpoint {k}")
        if val is None:
            fn, consts = partial(_tracin_self_batch, fit_bias=fit_bias), ()
        else:
            fn = partial(_tracin_val_batch, fit_bias=fit_bias)
            consts = (_val_gradient(val[k], val_labels, batch_size, fit_bias),)
        s = lr * _map_batches(fn, [ckpt.features, ckpt.logits, labels], n, batch_size, consts)
        total = s if total is None else total + s
    return total


def loss_scores(outputs: Outputs, labels, *, kind: str = "loss",
                batch_size: int = 1024) -> np.ndarray:
    """Per-example CE ('loss') or negative margin max_{c!=y} z_c - z_y ('margin'), (N,)."""
    if kind not in ("loss", "margin"):
        raise ValueError(f"kind must be 'loss' or 'margin', got {kind!r}")
    n, _, _ = _check_inputs(outputs, labels)
    idx = 0 if kind == "loss" else 1
    return _map_batches(lambda z, y: _ce_margin(z, y)[idx], [outputs.logits, labels], n,
                        batch_size)


def score_examples(scorer: str, outputs: Outputs, labels, *,
                   checkpoints: Sequence[Outputs] | None = None,
                   checkpoint_lrs: Sequence[float] | None = None,
                   val: Outputs | None = None, val_labels=None, damping: float = 1e-3,
                   hessian: str = "exact", batch_size: int = 1024,
                   fit_bias: bool = True) -> np.ndarray:
    """One entry point for every scorer in SCORERS (config field `ds.scorer`).

    `outputs` are the student's features/logits on the training set at the scoring point;
    'tracin' uses `checkpoints` (defaults to [outputs]) and, if given, `val` for every checkpoint
    is taken as `[val]` when only the current model's validation outputs are passed.
    """
    if scorer not in SCORERS:
        raise ValueError(f"unknown scorer {scorer!r}; choose from {SCORERS}")
    if scorer in ("influence", "self_influence", "val_influence"):
        return influence_scores(outputs, labels, kind=scorer, val=val, val_labels=val_labels,
                                damping=damping, hessian=hessian, batch_size=batch_size,
                                fit_bias=fit_bias)
    if scorer == "tracin":
        ckpts = list(checkpoints) if checkpoints else [outputs]
        vals = None if val is None else [val] * len(ckpts)
        return tracin_scores(ckpts, labels, lrs=checkpoint_lrs, val=vals, val_labels=val_labels,
                             batch_size=batch_size, fit_bias=fit_bias)
    return loss_scores(outputs, labels, kind=scorer, batch_size=batch_size)


def select_subset(scores, fraction: float) -> np.ndarray:
    """Boolean mask of the top `round(fraction * N)` scores: D^t of LR+DS (ties -> lower index).

    Returned in the order of `scores` (index by example id if scores are indexed by id).
    """
    scores = np.asarray(scores)
    if scores.ndim != 1:
        raise ValueError(f"scores must be 1-D, got shape {scores.shape}")
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must lie in [0, 1], got {fraction}")
    if np.isnan(scores).any():
        raise ValueError("scores contain NaN")
    k = int(round(fraction * scores.size))
    order = np.lexsort((np.arange(scores.size), -scores))  # by -score, then by index
    mask = np.zeros(scores.shape, bool)
    mask[order[:k]] = True
    return mask

