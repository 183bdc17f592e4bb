"""LR+DS runner: teacher -> Data-Selection scores -> KD / KD+LR / KD+DS / KD+LR+DS students.

`run(config, workdir)` (config.method = 'lrds', see `experiments/lrds/`):
  1. trains (or loads) the teacher, as every KD runner does (`kdjax.experiment.get_teacher`);
  2. counts the training examples whose teacher arg-max is wrong (LR corrects those of them
     that get teacher supervision: all, or those in D^t);
  3. if any variant uses DS: trains the student with CE for `lrds.ds.warmup_epochs`, takes its
     penultimate features and logits on the training set and scores every example
     (`kdjax.methods.influence.score_examples`, scorer `lrds.ds.scorer`, or each of
     `lrds.scorer_sweep`); outputs and scores are cached under `<workdir>/ds/`;
  4. trains one student per variant and seed; DS's D^t mask travels in the train state's
     per-example state (`example_state['ds_mask']`, indexed by example id), LR and the mask wrap
     the KD loss through `kdjax.methods.lrds.loss_from_config`.
Every student resumes from its own workdir; finished ones are read back from results.json.
"""
from __future__ import annotations

import copy
import os
import time

import ml_collections
import numpy as np

from kdjax import experiment
from kdjax.methods import influence, lrds
from kdjax.provenance import provenance
from kdjax.train import checkpoint as ckpt_lib
from kdjax.train import loop
from kdjax.train.method import Method
from kdjax.methods.ce.method import ce_loss
from kdjax.train import mesh as mesh_lib

# name -> (label revision on, data selection on); 'ce' trains without the teacher.
# '_low' variants hand the teacher the LOWEST-scored fraction instead (ablation of the direction).
VARIANTS = {"ce": None, "kd": (False, False), "kd_lr": (True, False), "kd_ds": (False, True),
            "kd_lr_ds": (True, True), "kd_ds_low": (False, True), "kd_lr_ds_low": (True, True)}
_LABELS = {"ce": "CE", "kd": "KD", "kd_lr": "KD+LR", "kd_ds": "KD+DS", "kd_lr_ds": "KD+LR+DS",
           "kd_ds_low": "KD+DS (lowest scores)", "kd_lr_ds_low": "KD+LR+DS (lowest scores)"}


def variant_list(lcfg) -> list[dict]:
    """The runs of a config: `lrds.variants`, then the eta / fraction / scorer ablations
    (KD+LR+DS)."""
    out = []
    for name in lcfg.variants:
        if name not in VARIANTS:
            raise ValueError(f"unknown LR+DS variant {name!r}; choose from {sorted(VARIANTS)}")
        lr, ds = VARIANTS[name] or (False, False)
        out.append(dict(name=name, label=_LABELS[name], lr=lr, ds=ds, eta=lcfg.lr.eta,
                        fraction=lcfg.ds.fraction, scorer=lcfg.ds.scorer,
                        teacher=name != "ce", low=name.endswith("_low")))
    for eta in lcfg.get("eta_sweep", ()):
        out.append(dict(name=f"kd_lr_ds_eta{eta:g}", label=f"KD+LR+DS eta={eta:g}", lr=True,
                        ds=True, eta=float(eta), fraction=lcfg.ds.fraction,
                        scorer=lcfg.ds.scorer, teacher=True, low=False))
    for frac in lcfg.get("fraction_sweep", ()):
        out.append(dict(name=f"kd_lr_ds_frac{frac:g}", label=f"KD+LR+DS |Dt|={frac:g}",
                        lr=True, ds=True, eta=lcfg.lr.eta, fraction=float(frac),
                        scorer=lcfg.ds.scorer, teacher=True, low=False))
    for scorer in lcfg.get("scorer_sweep", ()):
        out.append(dict(name=f"kd_lr_ds_{scorer}", label=f"KD+LR+DS ({scorer})", lr=True,
                        ds=True, eta=lcfg.lr.eta, fraction=lcfg.ds.fraction, scorer=scorer,
                        teacher=True, low=False))
    return out


def _warmup_outputs(config, workdir, splits, info, mesh) -> dict[str, np.ndarray]:
    """Features/logits of the CE warm-up student on train (and validation); cached."""
    path = os.path.join(workdir, "ds", "outputs.npz")
    if os.path.exists(path):
        with np.load(path) as f:
            return dict(f)
    ds = config.lrds.ds
    if ds.warmup_epochs < 1:
        raise ValueError(f"lrds.ds.warmup_epochs must be >= 1, got {ds.warmup_epochs}")
    scfg = copy.deepcopy(config)
    with scfg.unlocked():
        scfg.method = "ce"
        scfg.train.epochs = ds.warmup_epochs
    model = experiment.build_model(config.model, info.num_classes)
    sdir = os.path.join(workdir, "ds", "scorer")
    if loop.read_results(sdir) is None:
        result = loop.fit(scfg, sdir, model=model, method=Method(loss=ce_loss),
                          train=splits["train"], info=info, mesh=mesh)
        variables = loop.variables_of(result.state)
        loop.write_results(sdir, {"warmup_epochs": ds.warmup_epochs,
                                  "wall_time": result.wall_time})
    else:   # finished earlier: read the final checkpoint back
        variables = mesh_lib.replicate(ckpt_lib.load_variables(sdir), mesh)
    bs = config.data.eval_batch_size
    out = {}
    for name in ("train", "validation"):
        if name in splits:
            out[f"{name}_logits"], out[f"{name}_features"] = loop.predict_split(
                model, variables, splits[name], info, bs, mesh)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    np.savez(path, **out)
    return out


def ds_scores(config: ml_collections.ConfigDict, workdir: str, splits, info, mesh,
              scorer: str | None = None) -> np.ndarray:
    """DS scores of the training split (row order) under `scorer` (default lrds.ds.scorer).

    All scorers read the same CE warm-up student (`lrds.ds.warmup_epochs` epochs; 'tracin' uses
    its final state as the one checkpoint, with the validation gradient when
    `lrds.ds.tracin_val`); scores are cached in `<workdir>/ds/scores_<scorer>.npy`.
    """
    ds = config.lrds.ds
    scorer = scorer or ds.scorer
    if scorer not in influence.SCORERS:
        raise ValueError(f"lrds.ds.scorer={scorer!r} unknown; choose from {influence.SCORERS}")
    path = os.path.join(workdir, "ds", f"scores_{scorer}.npy")
    if os.path.exists(path):
        return np.load(path)
    out = _warmup_outputs(config, workdir, splits, info, mesh)
    val = val_labels = None
    if scorer == "val_influence" or (scorer == "tracin" and ds.get("tracin_val", False)):
        if "validation_logits" not in out:
            raise ValueError(f"scorer {scorer!r} needs a validation split "
                             "(config.data.num_validation > 0)")
        val = influence.Outputs(out["validation_features"], out["validation_logits"])
        val_labels = splits["validation"].labels
    scores = influence.score_examples(
        scorer, influence.Outputs(out["train_features"], out["train_logits"]),
        splits["train"].labels, val=val, val_labels=val_labels, damping=ds.damping,
        hessian=ds.hessian, batch_size=ds.batch_size)
    np.save(path, scores)
    return scores


def _train_student(config, workdir, splits, info, mesh, *, loss_fn, teacher,
                   example_state) -> dict:
    done = loop.read_results(workdir)
    if done is not None:
        return done
    model = experiment.build_model(config.model, info.num_classes)
    evals = {k: v for k, v in splits.items() if k != "train"}
    result = loop.fit(config, workdir, model=model,
                      method=Method(loss=loss_fn, example_state=example_state),
                      train=splits["train"], info=info, evals=evals,
                      teachers=[teacher] if teacher is not None else [], mesh=mesh)
    last = result.history[-1]
    summary = {"test_accuracy": last["test/accuracy"],
               "validation_accuracy": last.get("validation/accuracy"),
               "wall_time": result.wall_time, "history": result.history}
    loop.write_results(workdir, summary)
    return summary


def model_alias(config: ml_collections.ConfigDict, name: str) -> tuple[str, dict]:
    """(zoo name, kwargs) of a name in `config.pairs`: an entry of `config.model_aliases`
    ({'name': zoo name, 'kwargs': {...}}, e.g. reduced-scale MLP stand-ins), else the zoo model
    `name` with its own defaults."""
    alias = (config.get("model_aliases", None) or {}).get(name)
    if alias is None:
        return name, {}
    kwargs = alias.get("kwargs", None) or {}
    return alias["name"], dict(kwargs.to_dict() if hasattr(kwargs, "to_dict") else kwargs)


def _paper_number(config, variant: str):
    from kdjax.reproduce.paper_numbers import LRDS
    return LRDS.get(config.get("paper_table", ""), {}).get((config.get("paper_row", ""), variant))


def run(config: ml_collections.ConfigDict, workdir: str) -> dict:
    """Run an LR+DS config: one teacher/student pair, or each of `config.pairs`
    ("teacher:student" strings, zoo defaults for both models unless `config.model_aliases`
    names them, rows tagged with their pair, each in `<workdir>/<pair>`;
    `config.student_learning_rates` may map a student name to its own learning rate)."""
    pairs = tuple(config.get("pairs", ()) or ())
    if not pairs:
        return run_pair(config, workdir)
    t0, rows, per_pair = time.time(), [], {}
    for pair in pairs:
        teacher, _, student = pair.partition(":")
        if not teacher or not student:
            raise ValueError(f"pairs entries must read 'teacher:student', got {pair!r}")
        pcfg = copy.deepcopy(config)
        with pcfg.unlocked():
            pcfg.paper_row = pair
            for field, name in (("teacher", teacher), ("model", student)):
                pcfg[field].name, pcfg[field].kwargs = model_alias(config, name)
            pcfg.pairs = ()
            lr = dict(config.get("student_learning_rates", {}) or {}).get(student)
            if lr is not None:
                pcfg.train.learning_rate = lr
        res = run_pair(pcfg, os.path.join(workdir, pair.replace(":", "_to_")))
        rows += [dict(r, pair=pair) for r in res["rows"]]
        per_pair[pair] = {"teacher": res["teacher"],
                          "teacher_train_errors": res["teacher_train_errors"]}
    results = {"rows": rows, "scale_note": config.get("scale_note", "full setting"),
               "pairs": per_pair, "config": config.to_dict(), "provenance": provenance(),
               "wall_time": time.time() - t0}
    loop.write_results(workdir, results)
    return results


def run_pair(config: ml_collections.ConfigDict, workdir: str) -> dict:
    """Run every variant x seed for one teacher/student pair; writes and returns results."""
    t0 = time.time()
    mesh = mesh_lib.make_mesh(config.mesh.axes)
    splits, info = experiment.load_splits(config.data)
    train = splits["train"]
    variants = variant_list(config.lrds)
    teacher, tsum = experiment.get_teacher(config, workdir, splits, info, mesh)
    t_logits = teacher.logits_cache
    if t_logits is None:
        t_logits, _ = loop.predict_split(teacher.model, teacher.variables, train, info,
                                         config.data.eval_batch_size, mesh)
    wrong = np.asarray(t_logits).argmax(1) != train.labels
    num_ids = int(train.ids.max()) + 1
    seeds = tuple(config.lrds.get("seeds", (config.seed,)))

    rows = []
    for v in variants:
        vcfg = copy.deepcopy(config)
        with vcfg.unlocked():
            vcfg.lrds.lr.enabled, vcfg.lrds.lr.eta = v["lr"], v["eta"]
            vcfg.lrds.ds.enabled, vcfg.lrds.ds.fraction = v["ds"], v["fraction"]
        example_state, dt_size, wrong_in_dt = None, len(train.labels), int(wrong.sum())
        if v["ds"]:
            scores = ds_scores(config, workdir, splits, info, mesh, v["scorer"])
            selected = influence.select_subset(-scores if v["low"] else scores, v["fraction"])
            dt_size, wrong_in_dt = int(selected.sum()), int(wrong[selected].sum())
            example_state = {"ds_mask": lrds.mask_by_id(selected, train.ids, num_ids)
                             .astype(np.float32)}
        loss_fn = lrds.loss_from_config(vcfg.lrds) if v["teacher"] else ce_loss
        accs = []
        for seed in seeds:
            with vcfg.unlocked():
                vcfg.seed = seed
            summary = _train_student(vcfg, os.path.join(workdir, v["name"], f"seed{seed}"),
                                     splits, info, mesh, loss_fn=loss_fn,
                                     teacher=teacher if v["teacher"] else None,
                                     example_state=example_state)
            accs.append(100.0 * summary["test_accuracy"])
        rows.append({
            "variant": v["label"], "eta": v["eta"] if v["lr"] else None,
            "ds_fraction": v["fraction"] if v["ds"] else None,
            "ds_scorer": v["scorer"] if v["ds"] else None,
            "test_acc_mean": float(np.mean(accs)),
            "test_acc_std": float(np.std(accs, ddof=1)) if len(accs) > 1 else 0.0,
            "test_accs": accs, "seeds": list(seeds),
            "revised_targets": wrong_in_dt if v["lr"] else 0,   # corrected targets in use
            "teacher_supervised": dt_size if v["teacher"] else 0,
            "teacher_wrong_supervised": wrong_in_dt if v["teacher"] else 0,
            "num_train": len(train.labels),
            "teacher_test_acc": 100.0 * float(tsum["test_accuracy"]),
            "paper": _paper_number(config, v["name"]),
        })
    results = {"rows": rows, "scale_note": config.get("scale_note", "full setting"),
               "teacher": tsum, "teacher_train_errors": int(wrong.sum()),
               "config": config.to_dict(), "provenance": provenance(),
               "wall_time": time.time() - t0}
    loop.write_results(workdir, results)
    print(format_table(results, config))
    return results


def format_table(results: dict, config) -> str:
    lines = [f"LR+DS on {config.data.name}: student {config.model.name}, teacher "
             f"{config.teacher.name} (test acc {100 * results['teacher']['test_accuracy']:.2f}%,"
             f" wrong on {results['teacher_train_errors']} training examples)",
             f"scale: {results['scale_note']}",
             "| variant | test acc (%) | seeds | revised targets | teacher-supervised "
             "(of them teacher-wrong) | paper |",
             "|---|---|---|---|---|---|"]
    for r in results["rows"]:
        paper = "-" if r["paper"] is None else f"{r['paper']:.2f}"
        lines.append(f"| {r['variant']} | {r['test_acc_mean']:.2f} ± {r['test_acc_std']:.2f} | "
                     f"{len(r['seeds'])} | {r['revised_targets']} | "
                     f"{r['teacher_supervised']}/{r['num_train']} "
                     f"({r['teacher_wrong_supervised']}) | {paper} |")
    return "\n".join(lines)
