"""DiSK runner (Alg. 1 at CNN scale): teacher -> CE warm start -> CE / KD / DiSK students.

`run(config, workdir)` (config.method = 'disk', configs in `experiments/disk/`):
  1. trains or loads the teacher (`kdjax.experiment.get_teacher`) and computes its logits and
     penultimate features on the (un-augmented) training split once (`teacher_outputs.npz`);
  2. per seed, the A.5 warm start: a CE student trained for `disk.warm_start_epochs` with `fit`
     (0 = start from scratch); every variant of that seed starts from it;
  3. per variant ('ce', 'kd', 'disk') and seed, `train_variant` runs R rounds. A DiSK round is
     Alg. 1 lines 6-8: τ_S (Sec. 3.2, `fit_student_temperature`), λ_r (`lambda_schedule`),
     δ_r; "argmin over g" = `g_epochs` epochs of SGD on the guide (GuideMLP on teacher
     features ++ logits, A.4) with the guide objective of Eq. 5 against the student's current
     logits; then "argmin over s" = `s_epochs` epochs of the guided loss Eq. 4 (+ α·CE) with
     g(x) of the new guide fed per example (the student never sees the budget term).
     CE and KD run the same loop without the guide phase, so all three share the warm start,
     the batch order, the learning-rate schedule (over `train.epochs` = R·s_epochs) and the
     number of student steps.
     'simkd' / 'simkd_disk' (Table 8, A.7) switch the student's distillation loss to SimKD's
     feature loss (`kdjax.methods.simkd`: backbone + projector + the teacher's frozen head),
     without / with the guide phase (Eq. 9: the guide censors a point's feature loss).

Why not `kdjax.train.loop.fit` for the student phase: fit's learning-rate schedule spans its
own `epochs` and it has no initial-state hook for the warm start, so R resumed calls would
restart the cosine. This module reuses fit's pieces instead (`make_train_step`,
`iterate_batches`, `make_optimizer`, `Checkpointer`, `predict_split`) with fit's conventions
(init/step keys from `config.seed`, batch order from (seed, epoch), step noise
`fold_in(rng, step)`), checkpointing student + guide + optimizer states at every round, so a
re-run resumes at the last finished round and reproduces the uninterrupted run.
"""
from __future__ import annotations

import copy
import json
import os
import time
from typing import Any, Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from kdjax import experiment
from kdjax.data.pipeline import iterate_batches, prefetch
from kdjax.methods import disk, simkd
from kdjax.methods.ce.method import ce_loss
from kdjax.methods.kd.method import make_kd_loss
from kdjax.train.method import Method
from kdjax.provenance import provenance
from kdjax.train import checkpoint as ckpt_lib
from kdjax.train import loop
from kdjax.train import mesh as mesh_lib
from kdjax.train.optim import make_optimizer
from kdjax.train.state import TrainState, checkpoint_items, create_train_state
from kdjax.train.step import make_train_step

VARIANTS = ("ce", "kd", "disk", "simkd", "simkd_disk")
_LABELS = {"ce": "CE", "kd": "KD", "disk": "DiSK", "simkd": "SimKD",
           "simkd_disk": "SimKD + DiSK"}
_GUIDED = ("disk", "simkd_disk")     # variants with Alg. 1's guide phase
_SIMKD = ("simkd", "simkd_disk")     # students = backbone + projector + teacher head (simkd.py)
_TAU_MODES = ("fixed", "fit", "fit_round")
_DELTA_MODES = ("schedule", "ce_error")


def default_disk_config() -> ml_collections.ConfigDict:
    """`config.disk` defaults: the paper's CIFAR defaults (A.5) or the official code's
    (anilkagak2/DiSK_Distilling_Scaffolded_Knowledge, runner.sh / DiSK.py); see each comment."""
    d = ml_collections.ConfigDict()
    d.variants = ("ce", "kd", "disk")
    d.seeds = (0,)
    d.warm_start_epochs = 0      # A.5 warm start: epochs of CE pre-training (0 = from scratch)
    d.alpha = 0.1                # CE weight α of Eq. 5; [official] l_aux = 0.1
    d.tau_t = 4.0                # [paper] A.5 temperature 4
    d.tau_s_mode = "fit"         # Sec. 3.2 'fit' (once, on the starting student) | 'fit_round'
    #                              (every round) | 'fixed' (= tau_s; [official] 3.5)
    d.tau_s = 4.0
    d.tau_s_min, d.tau_s_max = 1.0, 8.0   # [ours] bounds of the τ_S search (paper silent)
    d.top_k = 20                 # [paper] A.5 default K = 20 ([official] runner.sh: 10)
    d.include_label = True       # [official] top-K mask ∪ {label}
    d.target = "topk"            # [official] use_prob=50; 'full' = Eq. 4 as printed
    d.lam_min, d.lam_max = 0.1, 50.0   # [paper] A.5 defaults
    d.lam_period = 50            # [paper] λ_T = 50
    d.s_epochs = 1               # [official] s_iters = 250 steps x batch 200 = one CIFAR epoch
    d.g_epochs = 1               # [official] g_iters = 250 steps; R = train.epochs / s_epochs
    d.guide_init_epochs = 5      # [official] init_epochs = 5 of guide-only training first
    d.guide_hidden = (64, 128)   # [paper] A.4
    d.guide_learning_rate = 0.001  # [ours] SGD. Eq. 4 pushes g up on every point, so at λ < μ*
    #                              (the multiplier at which the budget binds) SGD drives the
    #                              sigmoid's logit up without bound; at lr 0.01 (official g_lr 0.1)
    #                              the 128-wide last layer moves it by ~10 a step and it passes
    #                              float32 saturation (σ = 1.0, σ' = 0) in one epoch, after which
    #                              no λ can pull g back (tests/test_disk_budget.py). At 1e-3 it
    #                              stays finite and follows λ once λ > μ*
    d.guide_momentum = 0.9
    d.guide_weight_decay = 5e-4
    d.delta_mode = "schedule"    # 'schedule' = [official] cosine δ in [delta_min, delta_max];
    #                              'ce_error' = [paper] δ = warm-start CE train error + offset
    d.delta_min, d.delta_max = 0.4, 0.6   # [official] budget_g_min / budget_g_max
    d.delta_period = 20          # [official] budget_Ti = 20
    d.delta_gamma = 0.9          # [official] budget_g_gamma
    d.delta_offset = 0.0         # 'ce_error' mode: A.5 scans δ within ±0.2 of the CE error
    d.ce_target = "teacher"      # [official] penalty 24: CE against the teacher's arg-max
    d.max_ce = 5.0               # [official] max_ce = 5
    d.normalize = "misclassified"  # [official] / number of misclassified points; 'mean' = Eq. 3
    d.penalty = 0.9              # [official] l_nll · mean log(1 + K g); 0 = Eq. 5 exactly
    d.guide_zero = False         # force g ≡ 0 (then DiSK is KD with τ_S and top-K target)
    d.stop_after_rounds = 0      # > 0: stop this call after that many rounds (resume later)
    d.eval_every_rounds = 10
    # SimKD variants (Table 8, A.7): the student's distillation loss is the (guided) feature
    # loss of kdjax.methods.simkd instead of Eq. 4; the guide phase is the same Alg. 1 line 6.
    d.simkd_alpha = 0.0          # CE weight of the SimKD students ([SimKD] 0: feature loss only)
    d.simkd_factor = 2           # [SimKD] projector bottleneck factor
    return d


def check_config(config: ml_collections.ConfigDict) -> int:
    """Validate `config.disk`; returns the number of rounds R = train.epochs / s_epochs."""
    d = config.disk
    for v in d.variants:
        if v not in VARIANTS:
            raise ValueError(f"unknown DiSK variant {v!r}; choose from {VARIANTS}")
    if d.tau_s_mode not in _TAU_MODES:
        raise ValueError(f"disk.tau_s_mode must be one of {_TAU_MODES}, got {d.tau_s_mode!r}")
    if d.delta_mode not in _DELTA_MODES:
        raise ValueError(f"disk.delta_mode must be one of {_DELTA_MODES}, got {d.delta_mode!r}")
    if d.delta_mode == "ce_error" and d.warm_start_epochs < 1:
        raise ValueError("disk.delta_mode='ce_error' needs a CE warm start "
                         "(disk.warm_start_epochs >= 1)")
    if d.s_epochs < 1 or config.train.epochs % d.s_epochs:
        raise ValueError(f"train.epochs ({config.train.epochs}) must be a positive multiple of "
                         f"disk.s_epochs ({d.s_epochs})")
    if not 0.0 <= d.alpha <= 1.0:
        raise ValueError(f"disk.alpha must be in [0, 1], got {d.alpha}")
    return config.train.epochs // d.s_epochs


# ----------------------------------------------------------------------------- guide phase
class GuideTrainer:
    """The guide g and its jitted SGD epoch / full-data objective (Alg. 1 line 6).

    Works on host arrays of the whole training split: teacher features and logits, the
    student's current logits (fixed during the phase), labels. Runs replicated (the guide is a
    small MLP), batches drawn from a (seed, round, epoch)-determined permutation.
    """

    def __init__(self, d: ml_collections.ConfigDict, batch_size: int, objective: str = "kd"):
        if objective not in ("kd", "simkd"):
            raise ValueError(f"guide objective must be 'kd' or 'simkd', got {objective!r}")
        self.d = d
        self.kind = objective
        self.batch_size = batch_size
        self.model = disk.GuideMLP(hidden=tuple(d.guide_hidden))
        opt = optax.sgd(d.guide_learning_rate, momentum=d.guide_momentum or None)
        if d.guide_weight_decay:
            opt = optax.chain(optax.add_decayed_weights(d.guide_weight_decay), opt)
        self.tx = opt
        self.dist_kw = dict(alpha=d.alpha, tau_t=d.tau_t, top_k=d.top_k,
                            include_label=d.include_label, target=d.target, penalty=d.penalty,
                            ce_target=d.ce_target, max_ce=d.max_ce, normalize=d.normalize)
        self._epoch = jax.jit(self._epoch_fn)
        self._objective = jax.jit(self._objective_fn)
        self._apply = jax.jit(lambda v, f, z: self.model.apply(v, f, z, train=False))

    def init(self, rng: jax.Array, features: np.ndarray, logits: np.ndarray) -> tuple[Any, Any]:
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
        if self.kind == "simkd":   # A.7 Eq. 9 as L_dist; data carries 'distance'
            kw = {k: v for k, v in self.dist_kw.items()
                  if k not in ("tau_t", "include_label", "target")}
            kw["alpha"] = self.d.simkd_alpha
            loss = simkd.guide_loss(batch["student_logits"], batch["teacher_logits"],
                                    batch["label"], g, batch["distance"], lam=lam, delta=delta,
                                    **kw)
        else:
            loss = disk.guide_loss(batch["student_logits"], batch["teacher_logits"],
                                   batch["label"], g, lam=lam, delta=delta, tau_s=tau_s,
                                   **self.dist_kw)
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
        """Full-data guide objective (1 − α)·L_dist + λ·L_budget (+ penalty), guide in eval
        mode: the quantity the phase minimises, as the student sees it."""
        return float(self._objective(variables, jax.tree.map(jnp.asarray, data),
                                     jnp.float32(lam), jnp.float32(delta),
                                     jnp.float32(tau_s)))

    def values(self, variables, features: np.ndarray, logits: np.ndarray,
               chunk: int = 4096) -> np.ndarray:
        out = [np.asarray(self._apply(variables, jnp.asarray(features[i:i + chunk]),
                                      jnp.asarray(logits[i:i + chunk])))
               for i in range(0, len(logits), chunk)]
        return np.concatenate(out).astype(np.float32)


# ----------------------------------------------------------------------------- student losses
def make_disk_loss(d: ml_collections.ConfigDict) -> loop.LossFn:
    """Alg. 1 line 7 per example; τ_S arrives per example in batch['tau_s'] (all rows equal)
    so that a new τ_S needs no recompilation."""

    def loss_fn(logits, features, batch):
        del features
        tau_s = jnp.mean(batch["tau_s"])
        return disk.student_loss(logits, batch["teacher_logits"], batch["label"],
                                 batch["guide"], alpha=d.alpha, tau_t=d.tau_t, tau_s=tau_s,
                                 top_k=d.top_k, include_label=d.include_label, target=d.target)

    return loss_fn


def variant_loss(config, variant: str) -> loop.LossFn:
    if variant == "ce":
        return ce_loss
    if variant == "kd":
        return make_kd_loss(config.loss.temperature, config.loss.kd_weight)
    if variant in _SIMKD:
        return simkd.make_loss(config.disk.simkd_alpha, guided=variant == "simkd_disk")
    return make_disk_loss(config.disk)


# ----------------------------------------------------------------------------- pieces
def teacher_outputs(config, workdir, teacher: loop.Teacher, train, info,
                    mesh) -> tuple[np.ndarray, np.ndarray]:
    """Teacher (logits, penultimate features) on the un-augmented training split; cached."""
    path = os.path.join(workdir, "teacher_outputs.npz")
    if os.path.exists(path):
        with np.load(path) as f:
            return f["logits"], f["features"]
    logits, features = loop.predict_split(teacher.model, teacher.variables, train, info,
                                          config.data.eval_batch_size, mesh)
    if jax.process_index() == 0:
        os.makedirs(workdir, exist_ok=True)
        tmp = path + ".tmp.npz"
        np.savez(tmp, logits=logits, features=features)
        os.replace(tmp, path)
    return logits, features


def warm_start(config, workdir, splits, info, mesh, seed: int) -> tuple[dict | None, dict]:
    """A.5: CE-pretrained student (`disk.warm_start_epochs` epochs with `fit`), per seed.

    Returns (variables or None, summary with its test accuracy: the CE student the warm
    start is, i.e. the paper's CE column when warm_start_epochs = train.epochs)."""
    epochs = config.disk.warm_start_epochs
    if epochs < 1:
        return None, {}
    wcfg = copy.deepcopy(config)
    with wcfg.unlocked():
        wcfg.seed = seed
        wcfg.method = "ce"
        wcfg.train.epochs = epochs
    wdir = os.path.join(workdir, "warm_start", f"seed{seed}")
    model = experiment.build_model(config.model, info.num_classes)
    if loop.read_results(wdir) is None:
        result = loop.fit(wcfg, wdir, model=model, method=Method(loss=ce_loss),
                          train=splits["train"], info=info, mesh=mesh)
        variables = jax.device_get(loop.variables_of(result.state))
        loop.write_results(wdir, {"epochs": epochs, "wall_time": result.wall_time})
    else:
        variables = ckpt_lib.load_variables(wdir)
    acc = loop.evaluate_split(model, mesh_lib.replicate(variables, mesh), splits["test"], info,
                              config.data.eval_batch_size, mesh)["eval/accuracy"]
    return variables, {"seed": seed, "epochs": epochs, "test_accuracy": acc}


def _accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(np.argmax(logits, -1) == labels))


# ----------------------------------------------------------------------------- one student
def train_variant(config, workdir: str, variant: str, splits, info, mesh, *,
                  teacher: loop.Teacher, t_logits: np.ndarray, t_features: np.ndarray,
                  init_variables: dict | None) -> dict:
    """Train one student (`variant` in VARIANTS) for R rounds; resumable; returns a summary
    with the per-round log (λ, δ, τ_S, budget usage, mean g on misclassified points, the guide
    objective before/after its phase, train/validation/test accuracy)."""
    done = loop.read_results(workdir)
    if done is not None:
        return done
    d = config.disk
    rounds = check_config(config)
    train = splits["train"]
    batch_size = config.data.batch_size
    steps_per_epoch = len(train) // batch_size
    if steps_per_epoch == 0:
        raise ValueError(f"training split has {len(train)} examples, fewer than "
                         f"config.data.batch_size={batch_size}")
    model = experiment.build_model(config.model, info.num_classes)
    if variant in _SIMKD:    # backbone + projector + the teacher's frozen classifier
        model = simkd.wrap_student(model, teacher.variables, factor=d.simkd_factor)
    use_cache = teacher.logits_cache is not None
    with_teacher = variant != "ce"

    tx, _ = make_optimizer(config.train, steps_per_epoch)
    init_rng, step_rng = jax.random.split(jax.random.PRNGKey(config.seed))
    state = create_train_state(
        model, tx, init_rng, info.image_shape,
        teacher_variables=teacher.variables if with_teacher and not use_cache else None)
    if init_variables is not None and variant in _SIMKD:   # warm start = the backbone
        init_variables = simkd.init_from_backbone(
            {"params": state.params, "batch_stats": state.batch_stats}, init_variables)
    if init_variables is not None:
        state = state.replace(params=init_variables["params"],
                              batch_stats=init_variables.get("batch_stats", {}))
    guide = GuideTrainer(d, batch_size, "simkd" if variant in _SIMKD else "kd")
    g_vars, g_opt = guide.init(jax.random.fold_in(init_rng, 7), t_features, t_logits)
    tau_s = float(d.tau_s)
    rep = mesh_lib.replicated(mesh)
    shardings = jax.tree.map(lambda _: rep, state)
    state = mesh_lib.put(state, shardings)
    step_rng = mesh_lib.replicate(step_rng, mesh)

    ckpt = ckpt_lib.Checkpointer(os.path.join(workdir, "checkpoints"), max_to_keep=2)
    hist_path = os.path.join(workdir, "rounds.json")
    history: list[dict] = []
    start = 0
    if ckpt.latest_step() is not None:
        items = {"student": checkpoint_items(state), "guide": g_vars, "guide_opt": g_opt,
                 "tau_s": jnp.float32(tau_s)}
        restored = ckpt.restore(items)
        state = state.replace(**restored["student"])
        g_vars, g_opt = restored["guide"], restored["guide_opt"]
        tau_s = float(restored["tau_s"])
        start = int(ckpt.latest_step())
        with open(hist_path) as f:
            history = json.load(f)[:start]
        print(f"Resumed {variant} at round {start} in {workdir}", flush=True)

    train_step = make_train_step(model, variant_loss(config, variant), mean=info.mean,
                                 std=info.std, augment=config.data.augment,
                                 teacher=None if not with_teacher or use_cache
                                 else teacher.model)
    p_step = jax.jit(train_step, in_shardings=(shardings, mesh_lib.data_sharded(mesh), rep),
                     out_shardings=(shardings, rep), donate_argnums=(0,))
    row_of_id = np.zeros(int(train.ids.max()) + 1, np.int64)
    row_of_id[train.ids] = np.arange(len(train.ids))
    per_example: dict[str, np.ndarray] = {}
    if with_teacher and use_cache:
        per_example["teacher_logits"] = np.asarray(t_logits)
        if variant in _SIMKD:
            per_example["teacher_features"] = np.asarray(t_features)
    evals = {k: v for k, v in splits.items() if k != "train"}
    eb = config.data.eval_batch_size
    delta_ce = None
    if variant in _GUIDED and d.delta_mode == "ce_error":
        ce_logits, _ = loop.predict_split(model, init_variables, train, info, eb, mesh)
        delta_ce = 1.0 - _accuracy(ce_logits, train.labels) + d.delta_offset

    t0 = time.time()
    stop = start + d.stop_after_rounds if d.stop_after_rounds > 0 else rounds
    for r in range(start, min(rounds, stop)):
        row: dict[str, Any] = {"round": r + 1}
        if variant in _GUIDED:
            s_logits, s_features = loop.predict_split(model, loop.variables_of(state), train,
                                                      info, eb, mesh)
            if variant == "disk" and (d.tau_s_mode == "fit_round"
                                      or (d.tau_s_mode == "fit" and r == 0)):
                tau_s = float(jnp.clip(disk.fit_student_temperature(
                    jnp.asarray(s_logits), jnp.asarray(t_logits), d.tau_t,
                    tau_min=d.tau_s_min, tau_max=d.tau_s_max), d.tau_s_min, d.tau_s_max))
            lam = float(disk.lambda_schedule(r, d.lam_min, d.lam_max, d.lam_period))
            delta = delta_ce if delta_ce is not None else float(disk.budget_schedule(
                r, d.delta_min, d.delta_max, d.delta_period, d.delta_gamma))
            data = {"features": t_features, "teacher_logits": t_logits,
                    "student_logits": s_logits, "label": train.labels}
            if variant == "simkd_disk":   # d_i of Eq. 9 for the current student (fixed)
                data["distance"] = np.asarray(simkd.feature_distance(
                    jnp.asarray(s_features), jnp.asarray(t_features)))
            if d.guide_zero:
                g_all = np.zeros(len(train), np.float32)
            else:
                before = guide.objective(g_vars, data, lam=lam, delta=delta, tau_s=tau_s)
                if r == 0 and d.guide_init_epochs:
                    g_vars, g_opt = guide.train(g_vars, g_opt, data, epochs=d.guide_init_epochs,
                                                seed=config.seed, salt=10_000, lam=d.lam_min,
                                                delta=delta, tau_s=tau_s)
                g_vars, g_opt = guide.train(g_vars, g_opt, data, epochs=d.g_epochs,
                                            seed=config.seed, salt=r, lam=lam, delta=delta,
                                            tau_s=tau_s)
                after = guide.objective(g_vars, data, lam=lam, delta=delta, tau_s=tau_s)
                row.update(guide_objective_before=before, guide_objective_after=after)
                g_all = guide.values(g_vars, t_features, t_logits)
                if not np.all(np.isfinite(g_all)):
                    raise FloatingPointError(
                        f"{variant}: the guide produced non-finite g in round {r + 1} (lower "
                        f"disk.guide_learning_rate); last good checkpoint in {ckpt.directory}")
            usage = disk.budget_usage(jnp.asarray(s_logits), jnp.asarray(g_all),
                                      jnp.asarray(train.labels),
                                      teacher_logits=jnp.asarray(t_logits),
                                      ce_target=d.ce_target, max_ce=d.max_ce,
                                      normalize=d.normalize)
            row.update(lam=lam, delta=delta, tau_s=tau_s, budget_usage=float(usage),
                       guide_on_misclassified=float(disk.misclassified_guide_mean(
                           jnp.asarray(s_logits), jnp.asarray(g_all),
                           jnp.asarray(train.labels))),
                       guide_mean=float(np.mean(g_all)),
                       train_accuracy_before=_accuracy(s_logits, train.labels))
            per_example["guide"] = g_all
            per_example["tau_s"] = np.full(len(train), tau_s, np.float32)
        loss_sum = correct = count = 0.0
        for e in range(r * d.s_epochs, (r + 1) * d.s_epochs):
            batches = iterate_batches(train, batch_size, seed=config.seed, epoch=e,
                                      shuffle=True, drop_remainder=True,
                                      process_index=jax.process_index(),
                                      process_count=jax.process_count())
            for batch in prefetch(_device_batches(batches, mesh, per_example, row_of_id)):
                state, m = p_step(state, batch, step_rng)
                m = jax.device_get(m)
                loss_sum, correct, count = (loss_sum + float(m["loss_sum"]),
                                            correct + float(m["correct"]),
                                            count + float(m["count"]))
        if not np.isfinite(loss_sum):
            raise FloatingPointError(f"{variant}: non-finite training loss in round {r + 1}; "
                                     f"last good checkpoint in {ckpt.directory}")
        row.update(train_loss=loss_sum / max(count, 1.0), train_batch_accuracy=correct
                   / max(count, 1.0), epoch=(r + 1) * d.s_epochs)
        if (r + 1) % d.eval_every_rounds == 0 or r + 1 == rounds:
            for name, split in evals.items():
                row[f"{name}/accuracy"] = loop.evaluate_split(
                    model, loop.variables_of(state), split, info, eb, mesh)["eval/accuracy"]
        history.append(row)
        ckpt.save(r + 1, {"student": checkpoint_items(state), "guide": g_vars,
                          "guide_opt": g_opt, "tau_s": jnp.float32(tau_s)}, force=True)
        ckpt.wait()
        if jax.process_index() == 0:
            with open(hist_path + ".tmp", "w") as f:
                json.dump(history, f, default=float)
            os.replace(hist_path + ".tmp", hist_path)
        if variant in _GUIDED and jax.process_index() == 0:
            print(f"[{variant} seed {config.seed}] round {r + 1}/{rounds}: lam={row['lam']:.2f} "
                  f"delta={row['delta']:.3f} tau_s={tau_s:.2f} budget_usage="
                  f"{row['budget_usage']:.3f} g|wrong={row['guide_on_misclassified']:.3f} "
                  f"train_acc={row['train_accuracy_before']:.3f}"
                  + "".join(f" {k}={v:.4f}" for k, v in row.items() if k.endswith("/accuracy")),
                  flush=True)
    ckpt.close()
    summary = {"variant": variant, "seed": config.seed, "rounds_done": len(history),
               "rounds": rounds, "wall_time": time.time() - t0, "history": history}
    if len(history) < rounds:   # stopped early on request: no results.json, resume later
        summary["state"] = state
        return summary
    last = history[-1]
    summary.update(test_accuracy=last.get("test/accuracy"),
                   validation_accuracy=last.get("validation/accuracy"),
                   tau_s=tau_s if variant == "disk" else None)
    loop.write_results(workdir, summary)
    summary["state"] = state
    return summary


def _device_batches(batches, mesh, per_example: dict[str, np.ndarray], row_of_id: np.ndarray):
    for local in batches:
        rows = row_of_id[local["id"]]
        for key, array in per_example.items():
            local[key] = array[rows]
        yield mesh_lib.to_global(local, mesh)


# ----------------------------------------------------------------------------- runners
def _paper_number(config, variant: str, dataset: str, pair: str):
    """The paper's cell for (dataset, pair, variant) in `DISK[config.paper_table]`; a reduced
    config may point at the row it stands in for with `paper_dataset` / `paper_pair`."""
    from kdjax.reproduce.paper_numbers import DISK
    table = DISK.get(config.get("paper_table", ""), {})
    key = (config.get("paper_dataset") or dataset, config.get("paper_pair") or pair)
    return table.get(key, {}).get(variant)


def run_pair(config: ml_collections.ConfigDict, workdir: str,
             teacher_workdir: str | None = None) -> dict:
    """Every variant x seed for one teacher/student pair on one dataset. The teacher is
    trained into (or read from) `<teacher_workdir or workdir>/teacher`."""
    t0 = time.time()
    check_config(config)
    mesh = mesh_lib.make_mesh(config.mesh.axes)
    splits, info = experiment.load_splits(config.data)
    teacher, tsum = experiment.get_teacher(config, teacher_workdir or workdir, splits, info,
                                           mesh)
    t_logits, t_features = teacher_outputs(config, workdir, teacher, splits["train"], info,
                                           mesh)
    d = config.disk
    pair = f"{config.teacher.name}:{config.model.name}"
    per: dict[str, list[dict]] = {v: [] for v in d.variants}
    warm: list[dict] = []
    for seed in d.seeds:
        scfg = copy.deepcopy(config)
        with scfg.unlocked():
            scfg.seed = seed
        init, wsum = warm_start(scfg, workdir, splits, info, mesh, seed)
        if wsum:
            warm.append(wsum)
        for v in d.variants:
            s = train_variant(scfg, os.path.join(workdir, v, f"seed{seed}"), v, splits, info,
                              mesh, teacher=teacher, t_logits=t_logits, t_features=t_features,
                              init_variables=init)
            s.pop("state", None)
            per[v].append(s)
    rows = []
    if warm:
        accs = [100.0 * w["test_accuracy"] for w in warm]
        rows.append({"dataset": config.data.name, "pair": pair,
                     "variant": f"CE warm start only ({d.warm_start_epochs} ep)",
                     "test_acc_mean": float(np.mean(accs)),
                     "test_acc_std": float(np.std(accs, ddof=1)) if len(accs) > 1 else 0.0,
                     "test_accs": accs, "seeds": [w["seed"] for w in warm],
                     "paper": None})
    for v in d.variants:
        done = [s for s in per[v] if s.get("test_accuracy") is not None]
        accs = [100.0 * s["test_accuracy"] for s in done]
        last = [s["history"][-1] for s in done if s["history"]]
        rows.append({
            "dataset": config.data.name, "pair": pair, "variant": _LABELS[v],
            "test_acc_mean": float(np.mean(accs)) if accs else None,
            "test_acc_std": float(np.std(accs, ddof=1)) if len(accs) > 1 else 0.0,
            "test_accs": accs, "seeds": [s["seed"] for s in done],
            "final_guide_on_misclassified": [r.get("guide_on_misclassified") for r in last]
            if v in _GUIDED else None,
            "final_budget_usage": [r.get("budget_usage") for r in last]
            if v in _GUIDED else None,
            "tau_s": [s.get("tau_s") for s in done] if v == "disk" else None,
            "paper": _paper_number(config, v, config.data.name, pair),
        })
    results = {"rows": rows, "scale_note": config.get("scale_note") or "full setting",
               # the teacher labels every training example once (cached outputs)
               "teacher_queries": len(splits["train"]),
               "teacher": tsum, "paper_teacher": _paper_number(config, "teacher",
                                                               config.data.name, pair),
               "students": {v: [{k: x for k, x in s.items() if k != "history"}
                                for s in per[v]] for v in per},
               "config": config.to_dict(), "provenance": provenance(),
               "wall_time": time.time() - t0}
    loop.write_results(workdir, results)
    print(format_table(results, config))
    return results


def run(config: ml_collections.ConfigDict, workdir: str) -> dict:
    """A DiSK config: one pair, or each "teacher:student" of `config.pairs` (zoo defaults for
    both models) in `<workdir>/<teacher>_to_<student>`; rows tagged with their pair."""
    if config.data.name in ("tiny_imagenet", "tfds:tiny_imagenet"):
        raise ValueError("Tiny-ImageNet is not in TFDS 4.9.10 and kdjax has no loader for it "
                         "(kdjax/data/registry.py); the Tiny-ImageNet half of DiSK Table 3 "
                         "cannot run here. Run the CIFAR-100 half: "
                         "--config=experiments/disk/table3.py:full")
    pairs = tuple(config.get("pairs", ()) or ())
    if not pairs:
        return run_pair(config, workdir)
    t0, rows, teachers, queries = time.time(), [], {}, 0
    ckpts = dict(config.get("teacher_checkpoints", {}) or {})
    for pair in pairs:
        t_name, _, s_name = pair.partition(":")
        if not t_name or not s_name:
            raise ValueError(f"pairs entries must read 'teacher:student', got {pair!r}")
        pcfg = copy.deepcopy(config)
        with pcfg.unlocked():
            pcfg.teacher.name, pcfg.model.name = t_name, s_name
            pcfg.teacher.kwargs, pcfg.model.kwargs = {}, {}
            pcfg.pairs = ()
            pcfg.teacher.checkpoint = ckpts.get(t_name, config.teacher.checkpoint)
        # one teacher per name, shared by its students: <workdir>/teachers/<name>/teacher
        res = run_pair(pcfg, os.path.join(workdir, pair.replace(":", "_to_")),
                       teacher_workdir=os.path.join(workdir, "teachers", t_name))
        rows += res["rows"]
        teachers[pair] = res["teacher"]
        queries += res["teacher_queries"]
    results = {"rows": rows, "scale_note": config.get("scale_note") or "full setting",
               "teachers": teachers, "teacher_queries": queries,
               "config": config.to_dict(), "provenance": provenance(),
               "wall_time": time.time() - t0}
    loop.write_results(workdir, results)
    return results


def format_table(results: dict, config) -> str:
    t = results["teacher"]
    pt = results.get("paper_teacher")
    lines = [f"DiSK on {config.data.name}: student {config.model.name}, teacher "
             f"{config.teacher.name} (test acc {100 * t['test_accuracy']:.2f}%"
             + (f", paper {pt:.2f}%" if pt is not None else "") + ")",
             f"scale: {results['scale_note']}",
             "| variant | test acc (%) mean ± std | seeds | per seed | paper |",
             "|---|---|---|---|---|"]
    for r in results["rows"]:
        paper = "-" if r["paper"] is None else f"{r['paper']:.2f}"
        mean = "-" if r["test_acc_mean"] is None else f"{r['test_acc_mean']:.2f}"
        lines.append(f"| {r['variant']} | {mean} ± {r['test_acc_std']:.2f} | "
                     f"{len(r['seeds'])} | {', '.join(f'{a:.2f}' for a in r['test_accs'])} | "
                     f"{paper} |")
    return "\n".join(lines)
