"""ALM-KD through the shared training core: teachers -> CE / KD / ALM-KD / TAKD / DGKD students.

`run(config, workdir)` (config.method = 'alm', configs in `experiments/alm/`):
  1. the teacher set: `experiment.get_teacher` (trained into `<workdir>/teacher` or loaded from
     `config.teacher.checkpoint`); with `alm.teacher_epochs` the same run's checkpoints at those
     epochs are the early-stopped teachers of Sec. 6.3 (Eq. 12-15, one λ per teacher); with
     `alm.assistants` smaller CE-trained models join the set (Table 1). Self-distillation
     (Sec. 6.5) is `teacher.name == model.name`.
  2. per variant (`alm.variants`) and seed, one student through `loop.fit`:
       ce             cross-entropy only (default step);
       ce_early_stop  the same run, test accuracy at its best validation epoch (Table 3 row 2);
       kd / kd_<λ>    Hinton KD with λ fixed (`alm.kd_lambda`, or the number in the name),
                      final teacher, default step;
       alm            ALM-KD (Alg. 1) over every teacher of the set: λ in `example_state`,
                      the Eq. 5 / 12 student step plus, every L steps, the meta-update of the
                      batch's λ rows from the validation side batch (Eq. 6-10, 14-16);
       alm_final      ALM-KD with the final teacher only (Table 2 row 2);
       takd           KD hops teacher -> assistants -> student (λ = alm.kd_lambda);
       dgkd           each model distilled from all larger ones at once, one fixed λ per
                      teacher, teachers dropped with `alm.dgkd_drop_prob` (Son et al., 2021).
  3. `results.json` with rows (test accuracy mean ± std per variant, seeds, λ statistics,
     λ on flipped vs clean labels when `alm.label_noise` > 0, the paper's number).
`config.pairs` ("teacher:student") and `config.alm.datasets` sweep the same recipe; each
combination runs in its own sub-directory. Every student resumes from its workdir and a finished
one is read back from its results.json.
"""
from __future__ import annotations

import copy
import math
import os
import time
from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from kdjax import experiment
from kdjax.data import Split
from kdjax.methods import alm, alm_baselines
from kdjax.methods.kd.method import make_kd_loss
from kdjax.provenance import provenance
from kdjax.train import checkpoint as ckpt_lib
from kdjax.train import loop
from kdjax.train import mesh as mesh_lib
from kdjax.train.optim import make_schedule
from kdjax.train.step import gradient_step, preprocess

Array = jax.Array
_FIXED = ("ce", "ce_early_stop", "kd", "alm", "alm_final", "takd", "dgkd")
# Datasets the paper uses that TFDS 4.9.10 does not ship (so kdjax cannot load them).
# Training-set sizes, for the paper's 90/10 train/validation split (Sec. 6, Table 4).
TRAIN_SIZES = {"cifar10": 50000, "cifar100": 50000, "cars196": 8144, "stanford_dogs": 12000,
               "fgvc_aircraft": 6667, "fashion_mnist": 60000}
UNAVAILABLE = {"fgvc_aircraft": "FGVC-Aircraft is not in TFDS 4.9.10 (tfds.builder_cls raises); "
                                "kdjax has no loader for it. Add one to kdjax/data/registry.py "
                                "or run the Stanford Dogs column only."}


def alm_config(config: ml_collections.ConfigDict) -> alm.ALMConfig:
  """`config.alm` -> ALMConfig (temperature defaults to config.loss.temperature)."""
  d = dict(config.alm.to_dict())
  d.setdefault("temperature", config.loss.temperature)
  if d.get("lookahead_lr", None) in (0, 0.0):
    d["lookahead_lr"] = None
  return alm.ALMConfig.from_dict(d)


def parse_variant(name: str, kd_lambda: float) -> tuple[str, float | None]:
  """'kd_0.1' -> ('kd', 0.1); 'kd' -> ('kd', kd_lambda); other known names -> (name, None)."""
  if name.startswith("kd_"):
    try:
      return "kd", float(name[3:])
    except ValueError:
      pass
  if name not in _FIXED:
    raise ValueError(f"unknown ALM variant {name!r}; choose from {_FIXED} or 'kd_<lambda>'")
  return name, (kd_lambda if name in ("kd", "takd", "dgkd") else None)


# ---------------------------------------------------------------- the ALM-KD train step

def _teacher_logits(models: Sequence[nn.Module], variables: Sequence[Any], x: Array) -> Array:
  """Frozen teachers on x: (B, C) for one teacher, (B, K, C) for several."""
  outs = [jax.lax.stop_gradient(m.apply(v, x, train=False)[0]).astype(jnp.float32)
          for m, v in zip(models, variables)]
  return outs[0] if len(outs) == 1 else jnp.stack(outs, axis=1)


def make_alm_train_step(cfg: alm.ALMConfig, schedule: Callable[[Array], Array], *,
                        teacher_models: Sequence[nn.Module] = (), meta: bool = True,
                        drop_prob: float = 0.0) -> Callable:
  """A `make_step` builder for `loop.fit` (signature of `kdjax.train.step.make_train_step`).

  The returned step does Alg. 1 step t:
    * if `meta` and t % L == 0: λ rows of the batch ← meta-update (Eq. 7-10 / 14-15) with the
      look-ahead at the current parameters (η = schedule(t), or cfg.lookahead_lr), the outer
      loss on the batch's `validation/*` side batch plus β·the training batch (Eq. 6, 16);
      `cfg.meta_grad` picks exact autodiff through the whole network or the last layer;
    * θ ← optimizer step on the Eq. 5 / 12 loss with the (new) λ of the batch.
  λ lives in `state.example_state['lambda']` ((N_ids,) or (N_ids, K)) and is written back by id.
  Teacher logits come from the batch (`teacher_logits`, cached) or, with augmentation, from
  `teacher_models` run on the augmented images with `state.teacher_variables['teachers']`.
  The validation teacher logits are `teacher_variables['val_logits'][val_row_of_id[id]]`.
  `drop_prob` > 0 drops whole teachers at random per step (stochastic DGKD). With meta=False λ
  is fixed (KD / DGKD with per-example or per-teacher λ).
  """
  if drop_prob and meta:
    raise ValueError("teacher dropping (dgkd_drop_prob) is a DGKD baseline; it needs meta=False")

  def builder(model: nn.Module, loss_fn, *, mean, std, augment: bool = False, teacher=None):
    del teacher  # the teachers of this step are `teacher_models` (several, possibly)

    def forward_fn(batch_stats, rng):
      """Training-mode forward with fixed BatchNorm statistics (their updates are dropped)."""

      def forward(params, x):
        out, _ = model.apply({"params": params, "batch_stats": batch_stats}, x, train=True,
                             mutable=["batch_stats"], rngs={"dropout": rng})
        return out

      return forward

    def step(state, batch: dict, rng: Array):
      rng = jax.random.fold_in(rng, state.step)
      aug_rng, dropout_rng = jax.random.split(rng)
      x = preprocess(batch["image"], mean, std, aug_rng, augment)
      batch = dict(batch)
      tv = state.teacher_variables
      if "teacher_logits" not in batch:
        if not teacher_models:
          raise ValueError("the batch has no 'teacher_logits' and no teacher_models were given")
        batch["teacher_logits"] = _teacher_logits(teacher_models, tv["teachers"], x)
      mask = batch["mask"].astype(jnp.float32)
      lam_all = state.example_state["lambda"]
      meta_obj = jnp.zeros((), jnp.float32)
      meta_gnorm = jnp.zeros((), jnp.float32)
      if meta:
        vrows = tv["val_row_of_id"][batch["validation/id"]]
        val_batch = {"image": preprocess(batch["validation/image"], mean, std),
                     "label": batch["validation/label"],
                     "mask": batch["validation/mask"].astype(jnp.float32),
                     "teacher_logits": tv["val_logits"][vrows]}
        tr_batch = {"image": x, "label": batch["label"], "id": batch["id"], "mask": mask,
                    "teacher_logits": batch["teacher_logits"]}
        fwd = forward_fn(state.batch_stats, jax.random.fold_in(dropout_rng, 1))
        head_path = None
        if cfg.meta_grad == "last_layer":
          logits_s, feats_s = jax.eval_shape(fwd, state.params, x)
          head_path = alm.find_head_path(state.params, feats_s.shape[-1], logits_s.shape[-1])
        lr = schedule(state.step)

        def do_meta(lam):
          new, m = alm.meta_update(fwd, state.params, lam, tr_batch, val_batch, lr, cfg,
                                   head_path)
          return (new.astype(lam.dtype), m["meta_objective"].astype(jnp.float32),
                  m["meta_grad_norm"].astype(jnp.float32))

        lam_all, meta_obj, meta_gnorm = jax.lax.cond(
            state.step % cfg.update_every == 0, do_meta,
            lambda lam: (lam, meta_obj, meta_gnorm), lam_all)
      lam_b = lam_all[batch["id"]]
      if drop_prob:
        keep = alm_baselines.dgkd_keep_mask(jax.random.fold_in(rng, 2), lam_b.shape[-1],
                                            drop_prob)
        lam_b = lam_b * keep.astype(lam_b.dtype)
      batch["lambda"] = lam_b

      state, metrics = gradient_step(model, loss_fn, state, x, batch, mask, dropout_rng)
      state = state.replace(example_state={**state.example_state, "lambda": lam_all})
      metrics.update(meta_objective=meta_obj, meta_grad_norm=meta_gnorm,
                     lambda_mean=jnp.mean(lam_b))
      return state, metrics

    return step

  return builder


# ---------------------------------------------------------------- teachers

class TeacherSet:
  """Frozen teachers (modules, variables, names) with their logits on train and validation."""

  def __init__(self, models, variables, names, test_accs):
    self.models, self.variables, self.names, self.test_accs = (list(models), list(variables),
                                                               list(names), list(test_accs))

  def __len__(self):
    return len(self.models)

  def select(self, idx: Sequence[int]) -> "TeacherSet":
    return TeacherSet([self.models[i] for i in idx], [self.variables[i] for i in idx],
                      [self.names[i] for i in idx], [self.test_accs[i] for i in idx])

  def logits(self, split: Split, info, batch_size: int, mesh) -> np.ndarray:
    """(N, C) for one teacher, (N, K, C) for several, rows in split order."""
    outs = [np.asarray(loop.predict_split(m, v, split, info, batch_size, mesh)[0], np.float32)
            for m, v in zip(self.models, self.variables)]
    return outs[0] if len(outs) == 1 else np.stack(outs, axis=1)


def _steps_per_epoch(config, splits) -> int:
  return len(splits["train"].labels) // config.data.batch_size


def teacher_queries(config, splits, mode: str, num_teachers: int = 1, meta: bool = False) -> int:
  """Teacher forward passes (examples x teachers) one student run of `train_student` costs.

  Without augmentation each teacher labels the training split once (the cached soft labels);
  with augmentation it labels every training batch (epochs x steps x batch). ALM-KD's
  meta-update adds each teacher's logits on the validation split (computed once). CE: 0.
  """
  if mode == "ce":
    return 0
  if config.data.augment:
    per_teacher = int(config.train.epochs) * _steps_per_epoch(config, splits) * int(
        config.data.batch_size)
  else:
    per_teacher = len(splits["train"].labels)
  if meta and "validation" in splits:
    per_teacher += len(splits["validation"].labels)
  return int(num_teachers) * per_teacher


def _main_teachers(config, workdir, splits, info, mesh) -> TeacherSet:
  """The teacher (final) and, with alm.teacher_epochs, its early-stopped checkpoints."""
  epochs = [int(e) for e in (config.alm.get("teacher_epochs", ()) or ())]
  tcfg = copy.deepcopy(config)
  spe = _steps_per_epoch(config, splits)
  if epochs:
    if any(e < 1 or e > config.teacher.epochs for e in epochs):
      raise ValueError(f"alm.teacher_epochs {epochs} must lie in [1, teacher.epochs="
                       f"{config.teacher.epochs}]")
    every = math.gcd(*epochs, config.teacher.epochs)
    with tcfg.unlocked():  # keep a checkpoint at every early-stop epoch
      tcfg.train.checkpoint_every_steps = every * spe
      tcfg.train.keep_checkpoints = config.teacher.epochs // every + 1
  teacher, summary = experiment.get_teacher(tcfg, workdir, splits, info, mesh)
  final_name = f"{config.teacher.name}@final"
  if not epochs:
    return TeacherSet([teacher.model], [teacher.variables], [final_name],
                      [summary["test_accuracy"]])
  source = config.teacher.checkpoint or os.path.join(workdir, "teacher")
  models, variables, names, accs = [], [], [], []
  for e in epochs:
    if e == config.teacher.epochs:
      v = teacher.variables
      acc = summary["test_accuracy"]
    else:
      try:
        v = mesh_lib.replicate(ckpt_lib.load_variables(source, step=e * spe), mesh)
      except Exception as err:  # orbax raises various errors for a missing step
        raise ValueError(f"no teacher checkpoint at epoch {e} (step {e * spe}) in {source}; "
                         "train the teacher with checkpoints at alm.teacher_epochs (delete "
                         f"{source} to retrain) or fix the epochs") from err
      acc = loop.evaluate_split(teacher.model, v, splits["test"], info,
                                config.data.eval_batch_size, mesh)["eval/accuracy"]
    models.append(teacher.model)
    variables.append(v)
    names.append(f"{config.teacher.name}@{e}" if e != config.teacher.epochs else final_name)
    accs.append(acc)
  return TeacherSet(models, variables, names, accs)


# ---------------------------------------------------------------- one student

def _student_config(config, seed: int, model_name: str | None = None,
                    model_kwargs: dict | None = None):
  c = copy.deepcopy(config)
  with c.unlocked():
    c.seed = int(seed)
    if model_name is not None:
      c.model.name = model_name
      c.model.kwargs = dict(model_kwargs or {})
  return c


def train_student(config, workdir: str, splits, info, mesh, *, mode: str,
                  teachers: TeacherSet | None = None, lam: float | None = None,
                  meta: bool = True, drop_prob: float = 0.0) -> dict:
  """One student run in `workdir` (resumes; read back when finished).

  mode: 'ce' | 'kd' (default step, Hinton KD with λ = `lam`, last teacher of the set) |
  'alm' (ALM-KD step over every teacher; meta=False keeps λ fixed at `lam` or alm.lambda_init).
  """
  done = loop.read_results(workdir)
  if done is not None:
    return done
  model = experiment.build_model(config.model, info.num_classes)
  evals = {k: v for k, v in splits.items() if k != "train"}
  train = splits["train"]
  bs = config.data.eval_batch_size
  kwargs: dict = {}
  lam_arr = None
  if mode == "ce":
    loss_fn = experiment.ce_loss
  elif mode == "kd":
    last = teachers.select([len(teachers) - 1])
    cache = None if config.data.augment else last.logits(train, info, bs, mesh)
    kwargs["teacher"] = loop.Teacher(last.models[0], last.variables[0], cache)
    loss_fn = make_kd_loss(config.loss.temperature, float(lam))
  elif mode == "alm":
    cfg = alm_config(config)
    if meta and "validation" not in splits:
      raise ValueError("ALM-KD needs a validation split (config.data.num_validation > 0)")
    k = len(teachers)
    num_ids = int(max(train.ids.max(), splits["validation"].ids.max()
                      if "validation" in splits else 0)) + 1
    init = cfg.lambda_init if lam is None else float(lam)
    lam_arr = alm.init_lambdas(num_ids, None if k == 1 else k, init)
    tv: dict = {}
    if meta:
      val = splits["validation"]
      row_of_id = np.zeros(int(val.ids.max()) + 1, np.int32)
      row_of_id[val.ids] = np.arange(len(val.ids))
      tv.update(val_logits=jnp.asarray(teachers.logits(val, info, bs, mesh)),
                val_row_of_id=jnp.asarray(row_of_id))
      kwargs["side_splits"] = {"validation": val}
    if config.data.augment:
      tv["teachers"] = list(teachers.variables)
    else:
      kwargs["per_example"] = {"teacher_logits": teachers.logits(train, info, bs, mesh)}
    schedule = make_schedule(config.train, _steps_per_epoch(config, splits))
    if cfg.lookahead_lr is not None:
      schedule = lambda t, lr=cfg.lookahead_lr: jnp.asarray(lr, jnp.float32)
    kwargs["make_step"] = make_alm_train_step(
        cfg, schedule, teacher_models=teachers.models if config.data.augment else (),
        meta=meta, drop_prob=drop_prob)
    # The core puts `teacher.variables` into state.teacher_variables (replicated, not
    # checkpointed); the step reads its own entries from there.
    kwargs["teacher"] = loop.Teacher(model=None, variables=tv or {"none": jnp.zeros(())})
    kwargs["example_state"] = {"lambda": lam_arr}
    loss_fn = alm.student_loss_fn(cfg.temperature)
  else:
    raise ValueError(f"unknown student mode {mode!r}")
  result = loop.fit(config, workdir, model=model, loss_fn=loss_fn, train=train, info=info,
                    evals=evals, mesh=mesh, **kwargs)
  last = result.history[-1]
  summary = {"test_accuracy": last["test/accuracy"],
             "validation_accuracy": last.get("validation/accuracy"),
             "wall_time": result.wall_time, "history": result.history}
  if any("validation/accuracy" in h for h in result.history):
    best = max(result.history, key=lambda h: h.get("validation/accuracy", -1.0))
    summary["early_stop"] = {"epoch": best["epoch"], "test_accuracy": best["test/accuracy"],
                             "validation_accuracy": best["validation/accuracy"]}
  if mode == "alm":
    lam_final = np.asarray(jax.device_get(result.state.example_state["lambda"]))
    np.save(os.path.join(workdir, "lambda.npy"), lam_final)
    summary["lambda"] = lambda_stats(lam_final[train.ids], teachers.names)
  loop.write_results(workdir, summary)
  return summary


def lambda_stats(lam_rows: np.ndarray, names: Sequence[str],
                 flipped: np.ndarray | None = None) -> dict:
  """Mean / std / min / max / fraction outside [0, 1] of λ (per teacher for (N, K))."""
  lam_rows = lam_rows.reshape(len(lam_rows), -1)
  out = {}
  for k, name in enumerate(names):
    v = lam_rows[:, k]
    d = {"mean": float(v.mean()), "std": float(v.std()), "min": float(v.min()),
         "max": float(v.max()), "frac_outside_01": float(np.mean((v < 0) | (v > 1)))}
    if flipped is not None and flipped.any() and (~flipped).any():
      d["mean_flipped"] = float(v[flipped].mean())
      d["mean_clean"] = float(v[~flipped].mean())
    out[name] = d
  return out


# ---------------------------------------------------------------- assistants, TAKD, DGKD

def _assistant_set(config, workdir, splits, info, mesh, teachers: TeacherSet, how: str
                   ) -> TeacherSet:
  """Teachers + the `alm.assistants` (large -> small), each trained by `how`:
  'ce' (independent CE models, ALM-KD's teacher set), 'takd' (KD from the previous model) or
  'dgkd' (fixed-λ KD from all larger models). Returns the final chain as a TeacherSet."""
  chain = teachers.select([len(teachers) - 1])
  lam = float(config.alm.kd_lambda)
  kwargs = tuple(config.alm.get("assistant_kwargs", ()) or ())
  queries: dict[str, int] = {}   # assistant run dir -> teacher queries (TAKD / DGKD share one)
  for i, name in enumerate(config.alm.get("assistants", ()) or ()):
    acfg = _student_config(config, config.seed, name, kwargs[i] if i < len(kwargs) else {})
    with acfg.unlocked():
      acfg.train.epochs = config.alm.get("assistant_epochs", 0) or config.train.epochs
    mode = how if not (how == "dgkd" and i == 0) else "takd"  # one larger model: same as TAKD
    adir = os.path.join(workdir, "assistants", f"{mode}_{i}_{name}")
    if mode == "ce":
      summary = train_student(acfg, adir, splits, info, mesh, mode="ce")
    elif mode == "takd":
      summary = train_student(acfg, adir, splits, info, mesh, mode="kd",
                              teachers=chain.select([len(chain) - 1]), lam=lam)
      queries[adir] = teacher_queries(acfg, splits, "kd")
    else:
      summary = train_student(acfg, adir, splits, info, mesh, mode="alm", teachers=chain,
                              lam=lam, meta=False,
                              drop_prob=float(config.alm.get("dgkd_drop_prob", 0.0)))
      queries[adir] = teacher_queries(acfg, splits, "alm", len(chain))
    amodel = experiment.build_model(acfg.model, info.num_classes)
    avars = mesh_lib.replicate(ckpt_lib.load_variables(adir), mesh)
    chain = TeacherSet(chain.models + [amodel], chain.variables + [avars],
                       chain.names + [f"{name}({mode})"],
                       chain.test_accs + [summary["test_accuracy"]])
  chain.queries = queries   # teacher queries of the assistants' KD / DGKD training, per run
  return chain


# ---------------------------------------------------------------- the runner

def add_alm_fields(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """Add `config.alm` (every field this runner reads, with defaults) to a default config."""
  a = ml_collections.ConfigDict()
  a.variants = ("ce", "kd", "alm")
  a.seeds = (0,)
  a.kd_lambda = 0.9            # λ of KD / TAKD / DGKD baselines (paper: 0.9)
  a.temperature = 4.0          # τ of Eq. 2/5 (open; the paper follows Hinton KD)
  a.alpha = 0.2                # Eq. 6 (paper)
  a.beta = 0.1                 # Eq. 16 (paper)
  a.lambda_lr = 1000.0         # η_λ (open), multiplies the raw Eq. 8 gradient
  a.update_every = 10          # L (paper)
  a.lambda_init = 0.5          # (open)
  a.clip = "none"              # 'none' | 'unit' (open)
  a.meta_grad = "exact"        # 'exact' (whole network, JAX autodiff) | 'last_layer' (Sec. 4.2)
  a.lookahead_lr = 0.0         # η of Eq. 7; 0 = the optimizer's current learning rate
  a.outer_teacher = "mean"     # multi-teacher outer target: 'mean' or a teacher index
  a.teacher_epochs = ()        # early-stopped teachers (Sec. 6.3): epochs of the teacher run
  a.assistants = ()            # smaller teachers, large -> small (Table 1, TAKD / DGKD)
  a.assistant_kwargs = ()      # model kwargs per assistant ({} = the zoo defaults)
  a.assistant_epochs = 0       # 0 = train.epochs
  a.dgkd_drop_prob = 0.0       # stochastic DGKD
  a.label_noise = 0.0          # fraction of training labels flipped (λ noisy vs clean)
  a.noise_seed = 0
  a.datasets = ()              # sweep over datasets (each in <workdir>/<dataset>)
  a.validation_fraction = 0.0  # > 0: with a dataset sweep, num_validation = this x TRAIN_SIZES
  a.paper_table = ""           # key into kdjax.reproduce.paper_numbers.ALM
  a.paper_column = ""          # '' = config.data.name
  a.paper_rows = ml_collections.ConfigDict()   # variant -> the paper's row name
  with c.unlocked():
    c.method = "alm"
    c.alm = a
    c.pairs = ()
  return c


def paper_recipe(c: ml_collections.ConfigDict, scale: str) -> ml_collections.ConfigDict:
  """The Sec. 6 training recipe ('full') or its declared CPU reduction ('cpu'), in place.

  full: SGD lr 0.1, momentum 0.9, weight decay 5e-4, lr × 0.2 at epochs 60 / 120 / 160, 200
  epochs (teachers too), 90/10 train/validation split, crop+flip augmentation, batch 128 (the
  batch size is not given in the paper), λ clipped to [0, 1] (open in the paper; unclipped λ
  diverged on real data). cpu: Fashion-MNIST 5k/500/2k, small CNNs
  (`cnn_small` widths/hidden), 2 epochs, 2 student seeds: a smoke run of the same code path.
  """
  if scale not in ("cpu", "full"):
    raise ValueError(f"scale must be 'cpu' or 'full', got {scale!r}")
  c = add_alm_fields(c) if "alm" not in c else c
  if scale == "full":
    c.data.augment = True
    c.data.batch_size = 128
    c.train.epochs = c.teacher.epochs = 200
    c.train.learning_rate, c.train.momentum, c.train.weight_decay = 0.1, 0.9, 5e-4
    c.train.schedule, c.train.decay_epochs, c.train.decay_factor = "step", (60, 120, 160), 0.2
    c.train.checkpoint_every_steps = 1000
    c.alm.validation_fraction = 0.1
    c.data.num_validation = 5000   # CIFAR: 10% of 50k; dataset sweeps use validation_fraction
    c.scale_note = "full setting"
  else:
    c.progress_bar = False
    c.tensorboard = False
    c.data.name = "fashion_mnist"
    c.data.max_train_examples = 5500
    c.data.num_validation = 500
    c.data.max_test_examples = 2000
    c.data.batch_size = 128
    c.train.epochs = c.teacher.epochs = 2
    c.train.learning_rate = 0.05
    c.train.schedule = "cosine"
    c.alm.update_every = 2
    c.alm.validation_fraction = 0.0
    c.alm.seeds = (0, 1)   # two student seeds, so that the tables carry a spread
  # Real-data runs project λ onto [0, 1]: unclipped, η_λ = 1000 drove λ (hence the KL weight)
  # up until the loss overflowed (NaN at step 12 of table3.py:cpu). The paper does not say.
  c.alm.clip = "unit"
  return c


def cpu_models(c: ml_collections.ConfigDict, teacher: tuple, student: tuple) -> None:
  """Small CNN stand-ins (widths, hidden) for the paper's teacher and student at 'cpu' scale."""
  c.teacher.name, c.model.name = "cnn_small", "cnn_small"
  c.teacher.kwargs = {"widths": teacher[0], "hidden": teacher[1]}
  c.model.kwargs = {"widths": student[0], "hidden": student[1]}


def flip_labels(split: Split, fraction: float, num_classes: int, seed: int
                ) -> tuple[Split, np.ndarray]:
  """Flip `fraction` of the labels to a uniformly drawn *other* class. Returns (split, flipped)."""
  if not 0.0 <= fraction < 1.0:
    raise ValueError(f"alm.label_noise must be in [0, 1), got {fraction}")
  rng = np.random.default_rng(seed)
  flipped = np.zeros(len(split), bool)
  flipped[rng.permutation(len(split))[: int(round(fraction * len(split)))]] = True
  labels = split.labels.copy()
  shift = rng.integers(1, num_classes, size=int(flipped.sum()))
  labels[flipped] = (labels[flipped] + shift) % num_classes
  return Split(split.images, labels.astype(np.int32), split.ids), flipped


_PAPER_COLUMNS = {"cars196": "stanford_cars"}   # our dataset name -> the ALM dict's column


def _paper_number(config, variant: str):
  """kdjax.reproduce.paper_numbers.ALM[(alm.paper_table, paper row of variant, column)] or None;
  the column is the dataset, or the student model when alm.paper_column == 'student'."""
  from kdjax.reproduce.paper_numbers import ALM
  table = config.alm.get("paper_table", "")
  row = dict(config.alm.get("paper_rows", {}) or {}).get(variant)
  column = config.alm.get("paper_column", "") or config.data.name
  if column == "student":
    column = config.model.name
  column = _PAPER_COLUMNS.get(column, column)
  return ALM.get((table, row, column)) if table and row else None


def _paper_row(config, variant: str) -> str | None:
  """Every number the paper gives for the variant's row of `alm.paper_table`, as
  'column value; ...' (shown beside runs whose dataset / student is not the paper's, e.g. the
  cpu smoke runs, so that the paper's cells are visible without pretending to be the same cell);
  for a figure without numbers (Fig. 5), the paper's claim."""
  from kdjax.reproduce.paper_numbers import ALM
  table = config.alm.get("paper_table", "")
  row = dict(config.alm.get("paper_rows", {}) or {}).get(variant)
  if not table:
    return None
  cells = [f"{k[2]} {v}" for k, v in ALM.items() if len(k) == 3 and k[:2] == (table, row)]
  return "; ".join(cells) or ALM.get((table, "claim"))   # figures: the paper's claim only


def run(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Every dataset of `alm.datasets` x pair of `config.pairs` (or the config's own pair)."""
  datasets = tuple(config.alm.get("datasets", ()) or ())
  pairs = tuple(config.get("pairs", ()) or ())
  if not datasets and not pairs:
    return run_one(config, workdir)
  t0, rows, trained, queries = time.time(), [], {}, 0
  for ds in datasets or (config.data.name,):
    for pair in pairs or (f"{config.teacher.name}:{config.model.name}",):
      teacher, _, student = pair.partition(":")
      if not teacher or not student:
        raise ValueError(f"pairs entries must read 'teacher:student', got {pair!r}")
      c = copy.deepcopy(config)
      with c.unlocked():
        c.data.name = ds
        frac = float(config.alm.get("validation_fraction", 0.0))
        if frac > 0 and ds in TRAIN_SIZES and not config.data.max_train_examples:
          c.data.num_validation = int(round(frac * TRAIN_SIZES[ds]))
        if pairs:
          c.teacher.name, c.model.name = teacher, student
          c.teacher.kwargs, c.model.kwargs = {}, {}
          c.pairs = ()
        c.alm.datasets = ()
      sub = os.path.join(workdir, ds if len(datasets) > 1 else "",
                         pair.replace(":", "_to_") if pairs else "")
      key = (ds, c.teacher.name, str(dict(c.teacher.kwargs)))
      if not c.teacher.checkpoint and key in trained:
        with c.unlocked():   # the same teacher (and its early-stop checkpoints): train it once
          c.teacher.checkpoint = trained[key]
      res = run_one(c, sub)
      tdir = c.teacher.checkpoint or os.path.join(sub, "teacher")
      if os.path.isdir(tdir):
        trained.setdefault(key, tdir)
      rows += [dict(r, dataset=ds, pair=pair) for r in res["rows"]]
      queries += int(res.get("teacher_queries", 0) or 0)
  results = {"rows": rows, "scale_note": config.get("scale_note", "") or "full setting",
             "teacher_queries": queries,
             "config": config.to_dict(), "provenance": provenance(),
             "wall_time": time.time() - t0}
  loop.write_results(workdir, results)
  return results


def run_one(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """One dataset and teacher/student pair: every variant x seed; writes results.json."""
  t0 = time.time()
  if config.data.name in UNAVAILABLE:
    raise ValueError(f"dataset {config.data.name!r}: {UNAVAILABLE[config.data.name]}")
  mesh = mesh_lib.make_mesh(config.mesh.axes)
  splits, info = experiment.load_splits(config.data)
  flipped = None
  noise = float(config.alm.get("label_noise", 0.0))
  if noise > 0:
    splits = dict(splits)
    splits["train"], flipped = flip_labels(splits["train"], noise, info.num_classes,
                                           config.alm.get("noise_seed", 0))
  seeds = tuple(config.alm.get("seeds", ()) or (config.seed,))
  variants = [(v, *parse_variant(v, float(config.alm.kd_lambda))) for v in config.alm.variants]
  needs_teacher = any(kind != "ce" and kind != "ce_early_stop" for _, kind, _ in variants)
  teachers = _main_teachers(config, workdir, splits, info, mesh) if needs_teacher else None
  chains: dict[str, TeacherSet] = {}

  def chain(how):
    if how not in chains:
      chains[how] = _assistant_set(config, workdir, splits, info, mesh, teachers, how)
    return chains[how]

  rows = []
  for name, kind, lam in variants:
    accs, lam_rows, queries = [], [], 0
    for seed in seeds:
      scfg = _student_config(config, seed)
      sdir = os.path.join(workdir, name, f"seed{seed}")
      if kind in ("ce", "ce_early_stop"):
        s = train_student(scfg, os.path.join(workdir, "ce", f"seed{seed}"), splits, info, mesh,
                          mode="ce")
        acc = s["early_stop"]["test_accuracy"] if kind == "ce_early_stop" else s[
            "test_accuracy"]
      elif kind == "kd":
        s = train_student(scfg, sdir, splits, info, mesh, mode="kd", teachers=teachers, lam=lam)
        acc = s["test_accuracy"]
        queries += teacher_queries(scfg, splits, "kd")
      elif kind in ("alm", "alm_final"):
        if kind == "alm_final":
          tset = teachers.select([len(teachers) - 1])
        else:  # every teacher: early stops and/or CE-trained assistants
          tset = chain("ce") if config.alm.get("assistants") else teachers
        s = train_student(scfg, sdir, splits, info, mesh, mode="alm", teachers=tset)
        acc = s["test_accuracy"]
        queries += teacher_queries(scfg, splits, "alm", len(tset), meta=True)
        lam_final = np.load(os.path.join(sdir, "lambda.npy"))[splits["train"].ids]
        lam_rows.append(lambda_stats(lam_final, tset.names, flipped))
      elif kind == "takd":
        c = chain("takd")
        s = train_student(scfg, sdir, splits, info, mesh, mode="kd",
                          teachers=c.select([len(c) - 1]), lam=lam)
        acc = s["test_accuracy"]
        queries += teacher_queries(scfg, splits, "kd")
      else:  # dgkd
        s = train_student(scfg, sdir, splits, info, mesh, mode="alm", teachers=chain("dgkd"),
                          lam=lam, meta=False,
                          drop_prob=float(config.alm.get("dgkd_drop_prob", 0.0)))
        acc = s["test_accuracy"]
        queries += teacher_queries(scfg, splits, "alm", len(chain("dgkd")))
      accs.append(100.0 * acc)
    row = {"variant": name, "test_acc_mean": float(np.mean(accs)),
           "test_acc_std": float(np.std(accs, ddof=1)) if len(accs) > 1 else 0.0,
           "test_accs": accs, "seeds": list(seeds), "paper": _paper_number(config, name),
           "paper_row": _paper_row(config, name),
           "teacher_queries_students": queries}
    if lam_rows:
      row["lambda"] = _mean_stats(lam_rows)
    rows.append(row)
  results = {"rows": rows, "scale_note": config.get("scale_note", "") or "full setting",
             "dataset": config.data.name, "student": config.model.name,
             "teachers": None if teachers is None else dict(zip(teachers.names,
                                                                teachers.test_accs)),
             "assistants": {h: dict(zip(c.names, c.test_accs)) for h, c in chains.items()},
             "label_noise": noise, "teacher_queries": sum(
                 r["teacher_queries_students"] for r in rows) + sum(
                 {d: q for c in chains.values() for d, q in c.queries.items()}.values()),
             "config": config.to_dict(), "provenance": provenance(),
             "wall_time": time.time() - t0}
  loop.write_results(workdir, results)
  print(format_table(results, config), flush=True)
  return results


def _mean_stats(per_seed: list[dict]) -> dict:
  """Average each λ statistic over seeds."""
  out = {}
  for name in per_seed[0]:
    out[name] = {k: float(np.mean([d[name][k] for d in per_seed])) for k in per_seed[0][name]}
  return out


def format_table(results: dict, config) -> str:
  teachers = results.get("teachers") or {}
  lines = [f"ALM-KD on {results['dataset']}: student {results['student']}; teachers "
           + (", ".join(f"{n} ({100 * a:.2f}%)" for n, a in teachers.items()) or "-"),
           f"scale: {results['scale_note']}",
           "| variant | test acc (%) | seeds | λ mean (per teacher) | λ flipped / clean | paper |",
           "|---|---|---|---|---|---|"]
  for r in results["rows"]:
    lam = r.get("lambda") or {}
    lm = ", ".join(f"{d['mean']:.3f}" for d in lam.values()) or "-"
    fc = ", ".join(f"{d['mean_flipped']:.3f} / {d['mean_clean']:.3f}" for d in lam.values()
                   if "mean_flipped" in d) or "-"
    paper = "-" if r["paper"] is None else f"{r['paper']:.2f}"
    lines.append(f"| {r['variant']} | {r['test_acc_mean']:.2f} ± {r['test_acc_std']:.2f} | "
                 f"{len(r['seeds'])} | {lm} | {fc} | {paper} |")
  return "\n".join(lines)
