"""DiSK's equations as pure jnp functions (Kag et al., "Distilling Selective Knowledge").

α is the CE weight (`config.loss.ce_weight`, KD weight 1 − α as in the paper) and τ_T the
teacher temperature (`config.loss.temperature`); τ_S is DiSK's own (`config.disk.tau_s`).

* `guided_distillation_loss` — Eq. 4, per example: g added to the softened student probabilities
  on the teacher's top-K classes, teacher temperature τ_T, student temperature τ_S.
* `budget_usage` / `budget_loss` — Eq. 3 (CE relaxation of the budget, hinge at δ), with the
  official code's optional variants (normalise by the number of misclassified points, clamp
  the per-example CE, CE against the teacher's arg-max).
* `guide_penalty` — the official code's extra term mean(c·log(1 + K·g)) pushing g down;
  `penalty_weight` its weight c: the official l_nll, or [ours] l_nll·τ_T·τ_S (the weight of the
  guided term it normalises, `penalty_scale='guided'`).
* `student_loss` (per example, guide frozen) and `guide_loss` / `lagrangian` (scalar) — Eq. 5;
  as in Alg. 1 the student is not trained on the budget term.
* `lambda_schedule` — Alg. 1 line 8; `budget_schedule` — the official code's cosine on δ.
* `fit_student_temperature` — Sec. 3.2, τ_S = argmin_τ Σ_i KL(t^{τ_T}(x_i) || s^τ(x_i)).

Choices taken from the official PyTorch code (anilkagak2/DiSK_Distilling_Scaffolded_Knowledge,
`DiSK.py`, penalty 24 / use_prob 50 as in its `runner.sh`) where the paper is ambiguous are
named in each docstring; every one is a keyword argument, so configs choose.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from kdjax import losses

Array = jax.Array

_NORMALIZE = ("mean", "misclassified")
_CE_TARGETS = ("label", "teacher")
_TARGETS = ("full", "topk")


def topk_mask(teacher_logits: Array, k: int, labels: Array | None = None) -> Array:
    """(B, C) float 0/1 mask of the teacher's top-k classes (∪ the label when `labels` given).

    Adding the label is the official code's `one_hot = max(topk_one_hot, y_one_hot)`.
    """
    num_classes = teacher_logits.shape[-1]
    if not 1 <= k <= num_classes:
        raise ValueError(f"top_k must be in [1, {num_classes}], got {k}")
    _, idx = jax.lax.top_k(teacher_logits, k)
    mask = jnp.max(jax.nn.one_hot(idx, num_classes), axis=-2)
    if labels is not None:
        mask = jnp.maximum(mask, jax.nn.one_hot(labels, num_classes))
    return mask


def _check_temperature(name: str, tau) -> None:
    if isinstance(tau, (int, float)) and tau <= 0:
        raise ValueError(f"{name} must be > 0, got {tau}")


def guided_distillation_loss(student_logits: Array, teacher_logits: Array, guide: Array, *,
                             tau_t: float, tau_s: float | Array, top_k: int,
                             labels: Array | None = None, include_label: bool = False,
                             target: str = "full") -> Array:
    """Eq. 4 per example: τ_T·τ_S·Σ_y t_y (log t_y − log(s_y^{τ_S} + 1[y ∈ topK]·g)).

    Written as a KL (the teacher-entropy term is constant in s and g), so with g ≡ 0 and
    τ_S = τ_T = τ it is exactly the τ²·KL(t^τ || s^τ) of vanilla KD.
    target='full' sums over all classes as Eq. 4 does; target='topk' is the official code's
    use_prob=50 target: teacher logits outside the mask replaced by the (raw) minimum logit
    before the softmax, then the target restricted to the mask (not renormalised).
    include_label=True adds the label to the top-K mask (official code).
    """
    if target not in _TARGETS:
        raise ValueError(f"target must be one of {_TARGETS}, got {target!r}")
    _check_temperature("tau_t", tau_t)
    _check_temperature("tau_s", tau_s)
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(f"student/teacher logits shapes differ: {student_logits.shape} vs "
                         f"{teacher_logits.shape}")
    if include_label and labels is None:
        raise ValueError("include_label=True needs labels")
    z_t = teacher_logits.astype(jnp.float32)
    mask = topk_mask(z_t, top_k, labels if include_label else None)
    if target == "full":
        t = jax.nn.softmax(z_t / tau_t, axis=-1)
    else:
        z_min = jnp.min(z_t, axis=-1, keepdims=True)
        t = jax.nn.softmax(mask * z_t / tau_t + (1.0 - mask) * z_min, axis=-1) * mask
    s = jax.nn.softmax(student_logits.astype(jnp.float32) / tau_s, axis=-1)
    q = s + mask * guide.astype(jnp.float32)[:, None]
    neg_entropy = jnp.sum(jax.scipy.special.xlogy(t, t), axis=-1)
    # log of 1 where t = 0: keeps the masked-out branch's gradient finite when s underflows
    cross = -jnp.sum(jnp.where(t > 0, t * jnp.log(jnp.where(t > 0, q, 1.0)), 0.0), axis=-1)
    return tau_t * tau_s * (neg_entropy + cross)


def budget_usage(student_logits: Array, guide: Array, labels: Array, *,
                 teacher_logits: Array | None = None, ce_target: str = "label",
                 max_ce: float | None = None, normalize: str = "mean",
                 mask: Array | None = None) -> Array:
    """Scalar Σ_i g_i·CE_i / Z, the relaxed budget of Eq. 3 before the hinge.

    Paper (Eq. 3): CE against the label, Z = N. Official code (penalty 24): CE against the
    teacher's arg-max (ce_target='teacher'), clamped at max_ce (5), Z = number of points the
    student misclassifies w.r.t. the label (normalize='misclassified'; we floor Z at 1).
    `mask` (B,) zeroes padded examples.
    """
    if ce_target not in _CE_TARGETS:
        raise ValueError(f"ce_target must be one of {_CE_TARGETS}, got {ce_target!r}")
    if normalize not in _NORMALIZE:
        raise ValueError(f"normalize must be one of {_NORMALIZE}, got {normalize!r}")
    if ce_target == "teacher":
        if teacher_logits is None:
            raise ValueError("ce_target='teacher' needs teacher_logits")
        target = jnp.argmax(teacher_logits, axis=-1)
    else:
        target = labels
    ce = losses.cross_entropy(student_logits, target)
    if max_ce is not None:
        ce = jnp.minimum(ce, max_ce)
    m = jnp.ones(ce.shape, jnp.float32) if mask is None else mask.astype(jnp.float32)
    total = jnp.sum(m * guide.astype(jnp.float32) * ce)
    if normalize == "mean":
        z = jnp.maximum(jnp.sum(m), 1.0)
    else:
        wrong = (jnp.argmax(student_logits, axis=-1) != labels).astype(jnp.float32)
        z = jnp.maximum(jnp.sum(m * wrong), 1.0)
    return total / z


def budget_loss(student_logits: Array, guide: Array, labels: Array, *, delta: float | Array,
                **usage_kw) -> Array:
    """Eq. 3: (budget_usage − δ)_+ (scalar)."""
    return jax.nn.relu(budget_usage(student_logits, guide, labels, **usage_kw) - delta)


def guide_penalty(guide: Array, top_k: int, mask: Array | None = None) -> Array:
    """Official code's extra term mean(log(1 + K·g)) (scaled by its l_nll in `guide_loss`)."""
    g = guide.astype(jnp.float32)
    m = jnp.ones(g.shape, jnp.float32) if mask is None else mask.astype(jnp.float32)
    return jnp.sum(m * jnp.log1p(top_k * g)) / jnp.maximum(jnp.sum(m), 1.0)


PENALTY_SCALES = ("official", "guided")


def penalty_weight(penalty: float, penalty_scale: str, tau_t: float,
                   tau_s: float | Array) -> float | Array:
    """Weight c of `guide_penalty` in the guide objective.

    'official': c = l_nll (0.9), as DiSK.py. 'guided' [ours, not the paper's]: c = l_nll·τ_T·τ_S,
    the factor Eq. 4 puts on the guided term. log(1 + K·g) is the log of the mass of the
    guided "distribution" s + g·1[top-K] (≈ 1 + K·g), so at this weight (with penalty = 1 − α)
    the two terms are (1 − α)·τ_T·τ_S·KL(t || (s + g·mask)/(1 + K·g)) up to the masked target's
    mass: the renormalised Eq. 4, whose optimum in g is interior on points the student fits.
    At the official weight the term is ~τ_T·τ_S = 16x weaker and g saturates at 1.
    """
    if penalty_scale not in PENALTY_SCALES:
        raise ValueError(f"penalty_scale must be one of {PENALTY_SCALES}, got {penalty_scale!r}")
    return penalty if penalty_scale == "official" else penalty * tau_t * tau_s


def student_loss(student_logits: Array, teacher_logits: Array, labels: Array, guide: Array, *,
                 alpha: float, tau_t: float, tau_s: float | Array, top_k: int,
                 include_label: bool = False, target: str = "full") -> Array:
    """Per-example student objective of Alg. 1 line 7: α·CE + (1 − α)·L_dist (g frozen).

    No budget term for the student (Sec. 3.2: "not optimizing the student model on budget loss
    gives more stable results"; the official code zeroes it too). α = official l_aux.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    dist = guided_distillation_loss(student_logits, teacher_logits, jax.lax.stop_gradient(guide),
                                    tau_t=tau_t, tau_s=tau_s, top_k=top_k, labels=labels,
                                    include_label=include_label, target=target)
    return alpha * losses.cross_entropy(student_logits, labels) + (1.0 - alpha) * dist


def guide_loss(student_logits: Array, teacher_logits: Array, labels: Array, guide: Array, *,
               lam: float | Array, delta: float | Array, alpha: float, tau_t: float,
               tau_s: float | Array, top_k: int, include_label: bool = False,
               target: str = "full", penalty: float = 0.0, penalty_scale: str = "official",
               mask: Array | None = None, **usage_kw) -> Array:
    """Scalar guide objective of Alg. 1 line 6: (1 − α)·L_dist + λ·L_budget (+ penalty term).

    The student logits are held fixed (stop-gradient); `penalty` is the official l_nll weight of
    `guide_penalty` (0 = the paper's Eq. 5 exactly), scaled per `penalty_weight`
    (`penalty_scale`). The α·CE term of Eq. 5 is constant in g.
    """
    s = jax.lax.stop_gradient(student_logits)
    dist = guided_distillation_loss(s, teacher_logits, guide, tau_t=tau_t, tau_s=tau_s,
                                    top_k=top_k, labels=labels, include_label=include_label,
                                    target=target)
    m = jnp.ones(dist.shape, jnp.float32) if mask is None else mask.astype(jnp.float32)
    dist = jnp.sum(m * dist) / jnp.maximum(jnp.sum(m), 1.0)
    budget = budget_loss(s, guide, labels, delta=delta, teacher_logits=teacher_logits,
                         mask=mask, **usage_kw)
    out = (1.0 - alpha) * dist + lam * budget
    if penalty:
        weight = penalty_weight(penalty, penalty_scale, tau_t, tau_s)
        out = out + weight * guide_penalty(guide, top_k, mask)
    return out


def lagrangian(student_logits: Array, teacher_logits: Array, labels: Array, guide: Array, *,
               lam: float | Array, delta: float | Array, alpha: float, tau_t: float,
               tau_s: float | Array, top_k: int, include_label: bool = False,
               target: str = "full", **usage_kw) -> Array:
    """Eq. 5 (scalar): α·L_CE(s) + (1 − α)·L_dist(s, g) + λ·L_budget(s, g), batch means."""
    ce = jnp.mean(losses.cross_entropy(student_logits, labels))
    dist = jnp.mean(guided_distillation_loss(student_logits, teacher_logits, guide, tau_t=tau_t,
                                             tau_s=tau_s, top_k=top_k, labels=labels,
                                             include_label=include_label, target=target))
    budget = budget_loss(student_logits, guide, labels, delta=delta,
                         teacher_logits=teacher_logits, **usage_kw)
    return alpha * ce + (1.0 - alpha) * dist + lam * budget


def lambda_schedule(r: int | Array, lam_min: float, lam_max: float, period: int) -> Array:
    """Alg. 1 line 8: λ_r = λ_min + (λ_max − λ_min)·(1 − cos(π·(r mod λ_T)/λ_T))/2.

    Rises from λ_min to λ_max within each period of λ_T rounds, then restarts (official
    lmbda_adaptive=5), so it increases monotonically in the final period.
    """
    if period <= 0:
        raise ValueError(f"period must be > 0, got {period}")
    if lam_max < lam_min:
        raise ValueError(f"lam_max ({lam_max}) < lam_min ({lam_min})")
    phase = jnp.mod(jnp.asarray(r, jnp.float32), period) / period
    return lam_min + (lam_max - lam_min) * (1.0 - jnp.cos(jnp.pi * phase)) / 2.0


def budget_schedule(r: int | Array, delta_min: float, delta_max: float, period: int,
                    gamma: float = 1.0) -> Array:
    """Official code's budget δ_r: cosine from δ_max down to δ_min in each period of rounds.

    δ_max is multiplied by `gamma` at every period boundary (official budget_g_gamma, 0.9).
    δ_min = δ_max gives the paper's constant δ.
    """
    if period <= 0:
        raise ValueError(f"period must be > 0, got {period}")
    r = jnp.asarray(r, jnp.float32)
    top = delta_max * gamma ** jnp.floor(r / period)
    phase = jnp.mod(r, period) / period
    return top + (delta_min - top) * (1.0 - jnp.cos(jnp.pi * phase)) / 2.0


def mean_kl_at_temperature(student_logits: Array, teacher_logits: Array, tau_t: float,
                           tau: float | Array) -> Array:
    """mean_i KL(t^{τ_T}(x_i) || s^τ(x_i))."""
    t = losses.teacher_probs(teacher_logits, tau_t)
    return jnp.mean(losses.kl_divergence(student_logits, t, tau))


def fit_student_temperature(student_logits: Array, teacher_logits: Array, tau_t: float, *,
                            tau_min: float = 0.05, tau_max: float = 100.0, grid: int = 65,
                            iters: int = 40) -> Array:
    """Sec. 3.2: τ_S = argmin_τ Σ_i KL(t^{τ_T}(x_i) || s^τ(x_i)) over [tau_min, tau_max].

    Log-spaced grid search, then golden-section refinement (in log τ) in the bracket around the
    best grid point. Pure and jittable. The bounds are the paper's gap ("how τ_S is bounded");
    configs set them.
    """
    if not 0 < tau_min < tau_max:
        raise ValueError(f"need 0 < tau_min < tau_max, got {tau_min}, {tau_max}")
    f = lambda log_tau: mean_kl_at_temperature(student_logits, teacher_logits, tau_t,
                                               jnp.exp(log_tau))
    logs = jnp.linspace(jnp.log(tau_min), jnp.log(tau_max), grid)
    vals = jax.vmap(f)(logs)
    i = jnp.argmin(vals)
    lo = logs[jnp.maximum(i - 1, 0)]
    hi = logs[jnp.minimum(i + 1, grid - 1)]
    ratio = (jnp.sqrt(5.0) - 1.0) / 2.0

    def body(_, bracket):
        a, b = bracket
        c, d = b - ratio * (b - a), a + ratio * (b - a)
        left = f(c) < f(d)
        return jnp.where(left, a, c), jnp.where(left, d, b)

    a, b = jax.lax.fori_loop(0, iters, body, (lo, hi))
    return jnp.exp((a + b) / 2.0)


def misclassified_guide_mean(student_logits: Array, guide: Array, labels: Array) -> Array:
    """Log metric: mean g on the points the student misclassifies (0 when there are none)."""
    wrong = (jnp.argmax(student_logits, axis=-1) != labels).astype(jnp.float32)
    return jnp.sum(wrong * guide) / jnp.maximum(jnp.sum(wrong), 1.0)
