"""One run of the DiSK recipe (Alg. 1 at CNN scale) on `loop.fit`: one variant, seed and pair.

`config.method = 'disk'`; `config.disk.variant` picks the student, every one trained by the same
recipe so that they differ only in their loss (Table 3/4/7/8 rows):
  'disk'        Alg. 1: the guided loss Eq. 4 (+ α·CE), α = loss.ce_weight, τ_T = loss.temperature;
  'kd'          the baseline Hinton KD (loss.*); the CE row is `method='ce'` with
                `ce.warm_start_epochs` = `disk.warm_start_epochs` (the same recipe);
  'simkd'       SimKD (kdjax.methods.simkd): backbone + projector + the teacher's frozen head;
  'simkd_disk'  DiSK inside SimKD (A.7 Eq. 9: the guide censors each point's feature loss).

Stages, each asked of the run and skipped when finished: the teacher (`run.teacher()`) and its
logits and penultimate features on the un-augmented training split (`teacher_outputs.npz`);
the A.5 warm start, a CE student trained for `disk.warm_start_epochs` epochs in
`<workdir>/warm_start` (`run.stage`; 0 = from scratch; the SimKD students' backbones start from
it, their projector from a fresh initialisation), returned as the student's initial variables.

The student trains for `train.epochs` = R·`disk.s_epochs` epochs (the learning-rate schedule
spans them all). A guided variant's round r is `Method.epoch_start` at epoch r·s_epochs:
Alg. 1 lines 6-8 — τ_S (Sec. 3.2), λ_r (line 8), δ_r, then "argmin over g" = `disk.g_epochs`
epochs of guide SGD (guide.py) against the student's current logits — and the round's row
(λ, δ, τ_S, budget usage, mean g on misclassified points, guide objective before/after, train
accuracy before) joins the history. The guide's parameters, optimizer state and τ_S live in
`Method.extra`; g(x) and τ_S per example id in `Method.example_state`, where the student's
loss reads them (the student never sees the budget term). All checkpointed by `fit`, so a
killed run resumes mid-round.
"""
from __future__ import annotations

import dataclasses
import os

import jax
import jax.numpy as jnp
import numpy as np

from kdjax import storage
from kdjax.methods.api import Plan, Teacher
from kdjax.methods.ce import method as ce
from kdjax.methods.disk import loss
from kdjax.methods.disk.config import VARIANTS
from kdjax.methods.disk.guide import GuideTrainer, init_lambda, phase_lambda
from kdjax.methods.kd.method import make_kd_loss
from kdjax.methods.simkd import loss as simkd_loss
from kdjax.methods.simkd import method as simkd_method
from kdjax.methods.simkd.model import init_from_backbone
from kdjax.train.method import EpochContext, LossFn, Method
from kdjax.train.state import init_variables as fresh_variables

GUIDED = ("disk", "simkd_disk")     # variants with Alg. 1's guide phase
SIMKD = ("simkd", "simkd_disk")     # students = backbone + projector + teacher head


def uses(config) -> list[str]:
    """The SimKD students read `config.simkd` (kdjax.config.uses)."""
    return ["simkd"] if config.disk.variant in SIMKD else []


def check(config, num_classes: int | None = None) -> int:
    """Cross-field checks of a DiSK run (with the data set's `num_classes` when known);
    returns the number of rounds R."""
    d = config.disk
    if d.variant not in VARIANTS:
        raise ValueError(f"config.disk.variant={d.variant!r} is unknown; choose from {VARIANTS}")
    if num_classes is not None and d.variant in GUIDED and d.top_k > num_classes:
        raise ValueError(f"config.disk.top_k={d.top_k} exceeds the {num_classes} classes of "
                         f"data set {config.data.name!r}; set it to at most {num_classes}")
    if config.train.epochs % d.s_epochs:
        raise ValueError(f"config.train.epochs ({config.train.epochs}) must be a multiple of "
                         f"config.disk.s_epochs ({d.s_epochs})")
    if d.delta_mode == "ce_error" and d.warm_start_epochs < 1:
        raise ValueError("config.disk.delta_mode='ce_error' needs a CE warm start "
                         "(config.disk.warm_start_epochs >= 1)")
    if not d.tau_s_min < d.tau_s_max:
        raise ValueError(f"config.disk.tau_s_min ({d.tau_s_min}) must be < tau_s_max "
                         f"({d.tau_s_max})")
    if d.variant in ("disk", "kd") and abs(config.loss.kd_weight + config.loss.ce_weight - 1.0
                                           ) > 1e-9:
        raise ValueError(f"config.loss.kd_weight ({config.loss.kd_weight}) must be 1 − "
                         f"loss.ce_weight ({config.loss.ce_weight}): DiSK's KD weight is 1 − α")
    return config.train.epochs // d.s_epochs


def teacher_outputs(config, run, teacher) -> tuple[np.ndarray, np.ndarray]:
    """Teacher (logits, penultimate features) on the un-augmented training split; cached in
    `<workdir>/teacher_outputs.npz`."""
    path = os.path.join(run.workdir, "teacher_outputs.npz")
    cached = storage.load_npz(path)  # local or gs://
    if cached is not None:
        return cached["logits"], cached["features"]
    logits, features = run.predict(teacher.model, teacher.variables, run.splits["train"])
    if jax.process_index() == 0:
        storage.save_npz(path, logits=logits, features=features)  # atomic
    return logits, features


def _teacher(config, run) -> tuple[Teacher, np.ndarray, np.ndarray]:
    """The run's teacher as `fit` feeds it (cached logits, and features for SimKD, on
    un-augmented inputs; else it runs in the step) and its outputs on the training split."""
    teacher, _ = run.teacher()
    if teacher.logits_cache is not None and teacher.features_cache is not None:
        return teacher, teacher.logits_cache, teacher.features_cache   # handed in (RAD's rounds)
    t_logits, t_features = teacher_outputs(config, run, teacher)
    if teacher.logits_cache is not None:
        teacher = dataclasses.replace(teacher, logits_cache=t_logits, features_cache=(
            t_features if config.disk.variant in SIMKD else None))
    return teacher, t_logits, t_features


def make_disk_loss(config) -> LossFn:
    """Alg. 1 line 7 per example, g frozen: α·CE + (1 − α)·Eq. 4, with g and τ_S read from
    `example_state` (τ_S stored per example so that a new τ_S needs no recompilation)."""
    d, c = config.disk, config.loss

    def disk_loss(logits, features, batch):
        del features
        state = batch["example_state"]
        return loss.student_loss(logits, batch["teacher_logits"], batch["label"],
                                 state["guide"], alpha=c.ce_weight, tau_t=c.temperature,
                                 tau_s=jnp.mean(state["tau_s"]), top_k=d.top_k,
                                 include_label=d.include_label, target=d.target)

    return disk_loss


def student_loss(config) -> LossFn:
    variant = config.disk.variant
    if variant == "kd":
        return make_kd_loss(config.loss.temperature, config.loss.kd_weight)
    if variant in SIMKD:
        return simkd_method.make_loss(config.simkd.ce_weight, guided=variant == "simkd_disk")
    return make_disk_loss(config)


class GuidePhase:
    """`Method.epoch_start` of a guided variant: at the start of each round (every
    `disk.s_epochs` epochs) τ_S, λ_r, δ_r and the guide phase; g and τ_S to `example_state`."""

    def __init__(self, config, run, t_logits: np.ndarray, t_features: np.ndarray,
                 delta_ce: float | None):
        self.config, self.d = config, config.disk
        self.train = run.splits["train"]
        self.t_logits, self.t_features = t_logits, t_features
        self.delta_ce = delta_ce
        self.num_ids = int(self.train.ids.max()) + 1
        self.guide = GuideTrainer(config, config.data.batch_size,
                                  "simkd" if self.d.variant in SIMKD else "kd")

    def initial_state(self, rng) -> tuple[dict, dict]:
        """(example_state, extra) before round 1: g ≡ 0, τ_S = disk.tau_s, a fresh guide."""
        g_vars, g_opt = self.guide.init(rng, self.t_features, self.t_logits)
        tau = np.float32(self.d.tau_s)
        return ({"guide": np.zeros(self.num_ids, np.float32),
                 "tau_s": np.full(self.num_ids, tau, np.float32)},
                {"guide": g_vars, "guide_opt": g_opt, "tau_s": jnp.float32(tau)})

    def _tau_s(self, r: int, s_logits: np.ndarray, tau_s: float) -> float:
        d = self.d
        if d.variant == "disk" and (d.tau_s_mode == "fit_round"
                                    or (d.tau_s_mode == "fit" and r == 0)):
            tau = loss.fit_student_temperature(jnp.asarray(s_logits),
                                               jnp.asarray(self.t_logits),
                                               self.config.loss.temperature,
                                               tau_min=d.tau_s_min, tau_max=d.tau_s_max)
            return float(jnp.clip(tau, d.tau_s_min, d.tau_s_max))
        return tau_s

    def __call__(self, state, ctx: EpochContext):
        d, labels = self.d, self.train.labels
        if ctx.epoch % d.s_epochs:
            return state, {}
        r = ctx.epoch // d.s_epochs
        s_logits, s_features = ctx.predict(state)
        g_vars, g_opt = state.extra["guide"], state.extra["guide_opt"]
        tau_s = self._tau_s(r, s_logits, float(state.extra["tau_s"]))
        lam = float(phase_lambda(d, r, loss.lambda_schedule(r, d.lam_min, d.lam_max,
                                                            d.lam_period)))
        delta = self.delta_ce if self.delta_ce is not None else float(loss.budget_schedule(
            r, d.delta_min, d.delta_max, d.delta_period, d.delta_gamma))
        data = {"features": self.t_features, "teacher_logits": self.t_logits,
                "student_logits": s_logits, "label": labels}
        if d.variant == "simkd_disk":   # d_i of Eq. 9 for the current student (fixed)
            data["distance"] = np.asarray(simkd_loss.feature_distance(
                jnp.asarray(s_features), jnp.asarray(self.t_features)))
        row = {"disk/round": r + 1}
        kw = dict(lam=lam, delta=delta, tau_s=tau_s)
        if d.guide_zero:
            g_all = np.zeros(len(labels), np.float32)
        else:
            before = self.guide.objective(g_vars, data, **kw)
            seed = self.config.seed
            if r == 0 and d.guide_init_epochs:
                g_vars, g_opt = self.guide.train(g_vars, g_opt, data,
                                                 epochs=d.guide_init_epochs, seed=seed,
                                                 salt=10_000, lam=init_lambda(d), delta=delta,
                                                 tau_s=tau_s)
            g_vars, g_opt = self.guide.train(g_vars, g_opt, data, epochs=d.g_epochs,
                                             seed=seed, salt=r, **kw)
            row.update({"disk/guide_objective_before": before,
                        "disk/guide_objective_after": self.guide.objective(g_vars, data, **kw)})
            g_all = self.guide.values(g_vars, self.t_features, self.t_logits)
            if not np.all(np.isfinite(g_all)):
                raise FloatingPointError(
                    f"{d.variant}: the guide produced non-finite g in round {r + 1} (lower "
                    "config.disk.guide_learning_rate)")
        s, g, y = jnp.asarray(s_logits), jnp.asarray(g_all), jnp.asarray(labels)
        usage = loss.budget_usage(s, g, y, teacher_logits=jnp.asarray(self.t_logits),
                                  ce_target=d.ce_target, max_ce=d.max_ce, normalize=d.normalize)
        row.update({"disk/lam": lam, "disk/delta": delta, "disk/tau_s": tau_s,
                    "disk/budget_usage": float(usage),
                    "disk/guide_on_misclassified": float(loss.misclassified_guide_mean(s, g, y)),
                    "disk/guide_mean": float(np.mean(g_all)),
                    "disk/train_accuracy_before": float(np.mean(s_logits.argmax(-1) == labels))})
        guide_by_id = np.zeros(self.num_ids, np.float32)
        guide_by_id[self.train.ids] = g_all
        state = state.replace(
            example_state={"guide": guide_by_id,
                           "tau_s": np.full(self.num_ids, tau_s, np.float32)},
            extra={"guide": g_vars, "guide_opt": g_opt, "tau_s": jnp.float32(tau_s)})
        if jax.process_index() == 0:
            print(f"[{d.variant} seed {self.config.seed}] round {r + 1}: " + " ".join(
                f"{k[5:]}={v:.4g}" for k, v in row.items() if k != "disk/round"), flush=True)
        return state, row


def make_method(config, run) -> Plan:
    """The student of `disk.variant` on the run's teacher, started from the A.5 CE warm start
    (`disk.warm_start_epochs`; kdjax.methods.ce.warm_start)."""
    check(config, run.info.num_classes)
    variant = config.disk.variant
    teacher, t_logits, t_features = _teacher(config, run)
    warm = ce.warm_start(config, run, config.disk.warm_start_epochs)
    init = warm[0] if warm is not None else None
    model = run.model(config.model)
    if variant in SIMKD:
        model = simkd_method.wrapped_student(config, run, teacher)
    init_rng = jax.random.split(jax.random.PRNGKey(config.seed))[0]   # fit's init key
    if init is not None and variant in SIMKD:    # warm start = the backbone
        init = init_from_backbone(fresh_variables(model, init_rng, run.info.image_shape), init)
    method = Method(loss=student_loss(config), model=model if variant in SIMKD else None)
    if variant in GUIDED:
        delta_ce = None
        if config.disk.delta_mode == "ce_error":   # [paper] δ = the warm start's train error
            logits, _ = run.predict(model, init, run.splits["train"])
            delta_ce = (1.0 - float(np.mean(logits.argmax(-1) == run.splits["train"].labels))
                        + config.disk.delta_offset)
        phase = GuidePhase(config, run, t_logits, t_features, delta_ce)
        example_state, extra = phase.initial_state(jax.random.fold_in(init_rng, 7))
        method = dataclasses.replace(method, example_state=example_state, extra=extra,
                                     epoch_start=phase)
    return Plan(method, teachers=[teacher], init_variables=init,
                summarize=lambda result: summarize(config, warm, result))


def summarize(config, warm, result) -> dict:
    """results.json entries: the variant, the warm start's test accuracy and, for a guided
    variant, the last round's τ_S, budget usage and mean g on misclassified points."""
    out: dict = {"variant": config.disk.variant}
    if warm is not None:
        out["warm_start"] = {"epochs": warm[1]["epochs"],
                             "test_accuracy": warm[1]["test_accuracy"]}
    rounds = [h for h in result.history if "disk/round" in h]
    if rounds:
        last = rounds[-1]
        out["disk"] = {"rounds": len(rounds), "tau_s": last["disk/tau_s"],
                       "budget_usage": last["disk/budget_usage"],
                       "guide_on_misclassified": last["disk/guide_on_misclassified"]}
    return out
