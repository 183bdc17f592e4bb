"""Active distillation (RAD Alg. 1): query the teacher on b chosen points per round.

    P ← (X_L, Y_L); train the teacher and student θ_0 on P
    for t = 1..T: S_t ← SELECT(X_U \\ S, θ_{t−1}, b); S ← S ∪ S_t;
                  P ← P ∪ {(x, f_teacher(x)) : x ∈ S_t}; θ_t ← TRAIN(P) from scratch

The student trains with the KL loss on P: one-hot targets for the hard-labeled points, the
teacher's softmax for the soft-labeled ones. The loop state (rounds done, points chosen,
queries spent, per-round records) is written atomically after each round and every TRAIN
call checkpoints on its own, so a killed loop resumes where it stopped.
"""
from __future__ import annotations

import os
import time

import jax
import ml_collections
import numpy as np

from kdjax import experiment, losses, placement, storage
from kdjax.data import Split, concat, split_active
from kdjax.methods import rad
from kdjax.methods.rad import retrain as retrain_lib
from kdjax.methods.rad import strategies
from kdjax.provenance import record_start
from kdjax.train import loop
from kdjax.train.method import Method
from kdjax.train import mesh as mesh_lib


def kl_to_targets(logits, features, batch):
    """KL(target || softmax(student)) per example (hard labels are one-hot targets)."""
    return losses.kl_divergence(logits, batch["target_probs"])


def _softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = logits / temperature
    z = z - z.max(-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(-1, keepdims=True)


def _save_state(path: str, state: dict) -> None:
    if jax.process_index() == 0:
        storage.write_json(path, state, indent=None)  # atomic; local or gs://


def _train_student(config, workdir, train: Split, targets: np.ndarray, evals, info, mesh, *,
                   retrain: str = "kl", teacher=None, validation: Split | None = None):
    """TRAIN(P): Alg. 1's KL to the targets ('kl'), or the loss of the method `retrain` names
    on the same P with the loop's `teacher` = (loop.Teacher, summary) (retrain.py)."""
    if retrain != "kl":
        return retrain_lib.retrain(config, workdir, train, targets, evals, info, mesh,
                               teacher=teacher[0], teacher_summary=teacher[1],
                               validation=validation)
    model = experiment.build_model(config.model, info.num_classes)
    method = Method(loss=kl_to_targets, per_example={"target_probs": targets})
    result = loop.fit(config, workdir, model=model, method=method, train=train, info=info,
                      evals=evals, mesh=mesh)
    return model, loop.variables_of(result.state), result


def estimate_error_rate(config, teacher: loop.Teacher, info, splits, pool: Split, rng,
                        mesh) -> tuple[float, np.ndarray, int]:
    """The teacher's error rate, so that m̂ = rate × pool size (Sec. 3.3 / D.1).

    Returns (rate, pool positions queried for it, queries spent).

    'validation': measured on the labeled validation split (no queries spent).
    'uniform': b_uniform pool points queried uniformly at random; they join the soft-labeled
    set (returned as pool positions) and count as queries.
    'oracle': the true number of teacher mistakes on the pool (an upper reference only).
    """
    how = config.active.m_estimate
    bs = config.data.eval_batch_size
    if how == "validation":
        err = 1.0 - loop.evaluate_split(teacher.model, teacher.variables, splits["validation"],
                                        info, bs, mesh)["eval/accuracy"]
        return err, np.zeros(0, np.int64), 0
    if how == "uniform":
        pos = rng.choice(len(pool), config.active.b_uniform, replace=False)
        logits, _ = loop.predict_split(teacher.model, teacher.variables, pool.subset(pos), info,
                                       bs, mesh)
        err = float(np.mean(logits.argmax(-1) != pool.labels[pos]))
        return err, pos, len(pos)
    if how == "fixed":  # D.4: m = m_fraction·n, no queries
        return float(config.active.m_fraction), np.zeros(0, np.int64), 0
    if how == "oracle":
        logits, _ = loop.predict_split(teacher.model, teacher.variables, pool, info, bs, mesh)
        return float(np.mean(logits.argmax(-1) != pool.labels)), np.zeros(0, np.int64), 0
    raise ValueError(f"config.active.m_estimate={how!r} is unknown; use validation, uniform, "
                     "fixed or oracle")


def _queried_split(pool: Split, queried: dict) -> Split:
    """The inputs the teacher labeled: pool points, or UNIXKD's mixups (1−λ)·x_i + λ·x_j
    (rounded back to uint8; the primary point's label and id)."""
    pos = np.asarray(queried["soft_positions"], np.int64)
    split = pool.subset(pos)
    if not any(queried["mix_lambda"]):
        return split
    if not hasattr(split, "images"):
        raise ValueError("config.active.strategy: UNIXKD mixups need an in-memory train split "
                         "(config.data.name is read from disk)")
    lam = np.asarray(queried["mix_lambda"], np.float32).reshape(-1, *[1] * (split.images.ndim - 1))
    partner = pool.images[np.asarray(queried["mix_partner"], np.int64)]
    mixed = (1 - lam) * split.images.astype(np.float32) + lam * partner.astype(np.float32)
    if split.images.dtype == np.uint8:
        mixed = np.clip(np.rint(mixed), 0, 255).astype(np.uint8)
    return Split(mixed, split.labels, split.ids)


def _cluster_ids(path: str, features: np.ndarray, act, seed: int) -> np.ndarray:
    """CLUSTER MARGIN's clusters of the round-0 student's pool embeddings, computed once."""
    cached = storage.load_npy(path)
    if cached is not None:
        return cached
    ids = strategies.cluster_embeddings(features, act.num_clusters,
                                        bucket_size=act.cluster_bucket_size or None, seed=seed)
    if jax.process_index() == 0:
        storage.save_npy(path, ids)
    return ids


def _labeled_embeddings(model, variables, labeled, pool, soft_pos, pool_features, info, bs,
                        mesh) -> np.ndarray:
    """CORESET's centres: embeddings of every point already labeled (hard or soft)."""
    _, lab = loop.predict_split(model, variables, labeled, info, bs, mesh)
    return np.concatenate([lab, pool_features[soft_pos]])


def _fixed_pool(pool: Split, size: int, seed: int) -> Split:
    """`active.pool_size` > 0: a fixed random subset of the unlabeled pool (the same for every
    strategy of a seed), so that configs varying |A| keep one pool size."""
    if not size:
        return pool
    if size > len(pool):
        raise ValueError(f"config.active.pool_size={size} exceeds the {len(pool)} unlabeled "
                         "points")
    keep = np.random.default_rng([seed, 11]).permutation(len(pool))[:size]
    return pool.subset(np.sort(keep))


def run(config: ml_collections.ConfigDict, workdir: str, *,
        trial_cache: dict | None = None) -> dict:
    """Alg. 1 with `config.active.strategy`; writes results.json with one record per round.

    `trial_cache` is a dict the strategies of one trial share (the compare runner passes one
    per trial; their configs differ only in the strategy): it keeps the data splits
    ('data'), the trained teacher and its summary ('teacher'), the teacher's logits on the pool
    ('teacher_pool') and the CE-only round-0 student ('round0:<dir>'), so the later strategies
    neither reload nor retrain them (and print no 'Resumed from step' for them)."""
    t0 = time.time()
    started = record_start(workdir)  # provenance.json: this start (or resume)
    act = config.active
    cache = {} if trial_cache is None else trial_cache
    mesh = mesh_lib.make_mesh(config.mesh.axes)
    if "data" not in cache:
        cache["data"] = experiment.load_splits(config.data)
    splits, info = cache["data"]
    labeled, pool = split_active(splits["train"], act.num_labeled, seed=config.seed)
    pool = _fixed_pool(pool, int(act.get("pool_size", 0) or 0), config.seed)
    evals = {"test": splits["test"]}
    bs = config.data.eval_batch_size
    state_path = os.path.join(workdir, "active_state.json")
    state = {"round": 0, "soft_positions": [], "mix_partner": [], "mix_lambda": [],
             "queries": 0, "records": [], "error_rate": None}
    saved = storage.read_json(state_path)
    if saved is not None:
        state = saved
        print(f"Resuming active loop after round {state['round']}", flush=True)

    if "teacher" not in cache:
        cache["teacher"] = experiment.get_teacher(config, workdir, {**splits, "train": labeled},
                                                  info, mesh)
    teacher, teacher_summary = cache["teacher"]
    # The teacher's logits on every pool point. A query of pool point i returns row i (the
    # same function of the same input); besides, for the records only (never seen by a
    # strategy), its true mistakes give every strategy's realized gain the same w = 1 - m/n.
    if "teacher_pool" not in cache:
        cache["teacher_pool"], _ = loop.predict_split(teacher.model, teacher.variables, pool,
                                                      info, bs, mesh)
    t_pool = cache["teacher_pool"]

    def teacher_logits(queried: dict, split: Split) -> np.ndarray:
        """The teacher's logits on the queried inputs (pool rows unless mixed, UNIXKD)."""
        if not any(queried["mix_lambda"]):
            return t_pool[np.asarray(queried["soft_positions"], np.int64)]
        return loop.predict_split(teacher.model, teacher.variables, split, info, bs, mesh)[0]
    pool_error = (float(act.m_fraction) if act.get("label_oracle")
                  else float(np.mean(t_pool.argmax(-1) != pool.labels)))
    w_eval = 1.0 - pool_error  # also for fixed-w variants (D.5), so their gains compare
    # ORACLE_MARGIN (a bound, never a real strategy) reads the teacher's correctness on the pool.
    teacher_correct = (t_pool.argmax(-1) == pool.labels
                       if act.strategy in strategies.ORACLES else None)

    def training_set(queried: dict) -> tuple[Split, np.ndarray]:
        """P: hard-labeled points (one-hot targets) ∪ queried inputs (teacher softmax)."""
        soft = _queried_split(pool, queried)
        train = concat(labeled, soft)
        targets = np.eye(info.num_classes, dtype=np.float32)[labeled.labels]
        if len(soft) and act.get("label_oracle"):  # D.4: a query returns the true label
            targets = np.concatenate([targets, np.eye(info.num_classes,
                                                      dtype=np.float32)[soft.labels]])
        elif len(soft):
            t_logits = teacher_logits(queried, soft)
            targets = np.concatenate(
                [targets, _softmax(t_logits, act.teacher_temperature).astype(np.float32)])
        return train, targets

    def train_round(t: int):
        train, targets = training_set(state)
        # Round 0 (hard labels only) is the same for every strategy of a trial: it may live in
        # a directory the strategies share (`active.round0_workdir`).
        root = (act.get("round0_workdir") or workdir) if t == 0 else workdir
        path = os.path.join(root, f"round_{t}")
        if t == 0 and f"round0:{path}" in cache:
            return cache[f"round0:{path}"]
        # Round 0 trains with Alg. 1's loss whatever `active.retrain` names (retrain.py).
        out = _train_student(config, path, train, targets, evals, info, mesh,
                             retrain=act.retrain if t else "kl", teacher=cache["teacher"],
                             validation=splits.get("validation"))
        if t == 0:
            cache[f"round0:{path}"] = out
        return out

    cluster_ids = None
    for t in range(state["round"], act.rounds + 1):
        if t == state["round"]:  # round 0, or resuming: this student selects next
            model, variables, result = train_round(t)
            if not state["records"]:
                state["records"].append({
                    "round": 0, "test_accuracy": result.history[-1]["test/accuracy"],
                    "queries": state["queries"], "num_soft": len(state["soft_positions"]),
                    "wall_time": time.time() - t0})
                _save_state(state_path, state)
            continue
        t_round = time.time()
        soft_pos = np.asarray(state["soft_positions"], np.int64)
        logits, features = loop.predict_split(model, variables, pool, info, bs, mesh)
        probs = _softmax(logits)
        available = np.ones(len(pool), bool)
        available[soft_pos] = False
        if act.strategy == "cluster_margin" and cluster_ids is None:
            cluster_ids = _cluster_ids(os.path.join(workdir, "clusters.npy"), features, act,
                                       config.seed)
        view = strategies.Pool(probs=probs, available=available, embeddings=features,
                               labeled_embeddings=_labeled_embeddings(
                                   model, variables, labeled, pool, soft_pos, features, info,
                                   bs, mesh) if act.strategy == "coreset" else None,
                               cluster_ids=cluster_ids, teacher_correct=teacher_correct)
        params, budget = {}, act.budget
        uniform_pos = np.zeros(0, np.int64)
        if act.strategy.startswith("rad"):
            if state["error_rate"] is None:  # Sec. 3.3: b_uniform of round 1's b estimate m
                state["error_rate"], uniform_pos, spent = estimate_error_rate(
                    config, teacher, info, splits, pool.subset(np.flatnonzero(available)),
                    np.random.default_rng([config.seed, 7]), mesh)
                uniform_pos = np.flatnonzero(available)[uniform_pos]
                available[uniform_pos] = False
                budget -= spent
                state["error_rate_queries"] = int(spent)
            params = {"num_mistakes": state["error_rate"] * available.sum(),
                      "w": None if act.w < 0 else act.w}
        view.available = available
        chosen = strategies.select(act.strategy,
                                   jax.random.fold_in(jax.random.PRNGKey(config.seed), t), view,
                                   budget, **params)
        unmixed = chosen.mix_partner is None
        picked = np.concatenate([uniform_pos, chosen.indices]).astype(np.int64)
        new = {"soft_positions": [int(i) for i in picked],
               "mix_partner": [int(i) for i in (picked if unmixed else
                                                np.concatenate([uniform_pos,
                                                                chosen.mix_partner]))],
               "mix_lambda": [0.0] * len(uniform_pos) + ([0.0] * len(chosen.indices) if unmixed
                                                          else [float(x) for x in
                                                                chosen.mix_lambda])}
        queried_new = _queried_split(pool, new)
        t_logits = teacher_logits(new, queried_new)
        correct = t_logits.argmax(-1) == queried_new.labels
        if act.get("label_oracle"):
            correct = np.ones(len(picked), bool)
        gains = np.asarray(rad.margin_gain(probs[picked]))
        for key, values in new.items():
            state[key] = state[key] + values
        state["queries"] += len(picked)
        model, variables, result = train_round(t)
        state["records"].append({
            "round": t, "test_accuracy": result.history[-1]["test/accuracy"],
            "teacher_accuracy_on_selected": float(np.mean(correct)),
            "realized_gain": float(np.mean(np.where(correct, gains, -w_eval * gains))),
            "queries": state["queries"], "num_soft": len(state["soft_positions"]),
            "selection_info": {k: v for k, v in chosen.info.items()},
            "wall_time": time.time() - t_round})
        state["round"] = t
        _save_state(state_path, state)
        r = state["records"][-1]
        print(f"[{act.strategy}] round {t}: test acc {100 * r['test_accuracy']:.2f}%, teacher acc "
              f"on selected {100 * r['teacher_accuracy_on_selected']:.1f}%, queries "
              f"{r['queries']}", flush=True)

    results = {"strategy": act.strategy, "records": state["records"],
               "estimated_teacher_error_rate": state["error_rate"],
               # Sec. 3.3: m̂ = rate × available pool; the true m (for the record only); the
               # queries spent on estimating m (b_uniform with m_estimate='uniform', else 0).
               "m_estimate": act.m_estimate if act.strategy.startswith("rad") else None,
               "true_teacher_error_rate": pool_error, "pool_size": len(pool),
               "error_rate_queries": state.get("error_rate_queries", 0),
               "teacher": teacher_summary, "teacher_queries": state["queries"],
               "test_accuracy": state["records"][-1]["test_accuracy"],
               "wall_time": time.time() - t0, "config": config.to_dict(),
               "provenance": started, "placement": placement.describe(config)}
    loop.write_results(workdir, results)
    return results
