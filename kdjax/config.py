"""The config schema: the base every run shares, plus the section of the method it runs.

`base_config(method)` is the base (what every run reads: data, models, teacher, loss, train,
mesh) with the section of `method` mounted under its name; a method declares its section beside
its code (`kdjax.methods`: `section()` in its package's `config.py` or in its own file), so
adding a method or a field to one touches nothing here. `selected(config)` keeps the base and
the sections the run reads (its method's, and those of the methods it composes, `uses`): that
is what a run records in `config.json`, so another method's section never enters it.
`validate(config)` rejects a field the schema does not declare (with the closest declared name)
and a value outside its range, in one line naming the field — so a misspelt field in a config
*file* fails like one on the command line.

Shared names across methods: `loss.temperature` (τ of the softened distributions),
`loss.kd_weight` (weight of the distillation term), `loss.ce_weight` (weight of the
cross-entropy on the labels).
"""
from __future__ import annotations

import copy
import difflib
import functools
import json
from typing import Any, Callable, Iterable, Sequence

import ml_collections

from kdjax import import_path, methods


class ConfigError(ValueError):
    """A config field that is undeclared or out of range (the message names it)."""


def base_config(method: str = "kd", sections: Sequence[str] = ()) -> ml_collections.ConfigDict:
    """The base config running `method`, with its section and those of `sections` (other
    methods whose fields the config file sets: LR+DS's base, a table's other rows)."""
    c = _base()
    c.method = method
    for name in (method, *sections):
        mount(c, name)
    return c


def _base() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.method = "kd"            # a kdjax/methods/ package, a module path, or "module:function"
    c.scale_note = ""          # printed with every result when a setting is reduced
    c.seed = 0
    c.progress_bar = True
    c.tensorboard = True

    c.data = ml_collections.ConfigDict()
    c.data.name = "fashion_mnist"
    c.data.data_dir = ""       # TFDS data_dir ('' = TFDS default)
    c.data.num_validation = 5000
    c.data.split_seed = 0
    c.data.max_train_examples = 0   # 0 = all; >0 takes a fixed random subset (reduced runs)
    c.data.max_test_examples = 0
    c.data.subset_seed = 0
    c.data.augment = False     # CIFAR-style random crop (pad 4) + horizontal flip
    c.data.label_noise = 0.0   # fraction of training labels flipped to another class (ALM-KD
    #                            Sec. 6.4); the teacher, every stage and the student see them
    c.data.noise_seed = 0      # seed of the flipped-label draw
    c.data.batch_size = 128    # global batch, over all hosts and devices
    c.data.workers = -1        # grain workers for on-disk splits (-1: one per core; 0: none)
    c.data.eval_batch_size = 1000

    c.model = ml_collections.ConfigDict()
    c.model.name = "cnn_small"
    c.model.dtype = "float32"  # compute dtype; 'bfloat16' on accelerators
    c.model.kwargs = ml_collections.ConfigDict()

    c.teacher = ml_collections.ConfigDict()
    c.teacher.name = "resnet20"
    c.teacher.kwargs = ml_collections.ConfigDict()
    c.teacher.checkpoint = ""  # a finished run's workdir or a PyTorch .pth/.pt; '' = train it
    c.teacher.epochs = 10
    c.teacher.learning_rate = 0.0   # 0 = same as the student
    c.teacher.seed = 0         # seed the teacher trains with (and a method's other teacher-side
    #                            stages: ALM's assistants, LR+DS's DS warm-up student), so every
    #                            student seed of a table cell distils the same teacher; -1 = the
    #                            run's own seed (one teacher per student seed)
    c.teacher.workdir = ""     # where the teacher trains / is read back; '' = <run workdir>/
    #                            teacher. The reproduce harness points every grid point to a
    #                            folder shared by the points with the same teacher.
    c.teacher.cache_logits = True   # soft labels computed once per example (no augmentation)

    # The names every method shares (Hinton KD: ce_weight·CE + kd_weight·τ²·KL).
    c.loss = ml_collections.ConfigDict()
    c.loss.temperature = 4.0   # τ of the softened teacher and student distributions
    c.loss.kd_weight = 0.9     # weight of the distillation term
    c.loss.ce_weight = 0.1     # weight of the cross-entropy on the labels

    c.train = ml_collections.ConfigDict()
    c.train.epochs = 10
    c.train.optimizer = "sgd"  # sgd | adam
    c.train.learning_rate = 0.05
    c.train.momentum = 0.9
    c.train.nesterov = False
    c.train.weight_decay = 5e-4
    c.train.grad_clip_norm = 0.0
    c.train.schedule = "cosine"  # constant | cosine | step | rad_piecewise | imagenet_piecewise
    c.train.warmup_epochs = 0
    c.train.decay_epochs = (60, 120, 160)
    c.train.decay_factor = 0.2
    c.train.log_every_steps = 50
    c.train.eval_every_epochs = 1
    c.train.checkpoint_every_steps = 200
    c.train.keep_checkpoints = 2

    c.mesh = ml_collections.ConfigDict()
    c.mesh.axes = (("data", -1),)
    return c


BASE_KEYS = frozenset(_base().keys())


def mount(config: ml_collections.ConfigDict, method: str) -> None:
    """Add method `method`'s section (its defaults) to `config` unless it is there."""
    name = methods.section_name(method)
    if name is None or name in config:
        return
    if name in BASE_KEYS:
        raise ConfigError(f"method {method!r} declares a section named {name!r}, which is a base "
                          "config section; set SECTION to another name")
    with config.unlocked():
        config[name] = methods.declaration(method).section()


def mount_flagged(config: ml_collections.ConfigDict, overrides: Iterable[str]) -> list[str]:
    """Make room in `config` for command-line overrides (`overrides`: the paths after
    `--config.`, e.g. 'disk.top_k') before they are applied: mount the section of every method
    under kdjax/methods/ that an override sets a field of and `config` lacks (with its
    defaults), so a composed method's fields (LR+DS's base, RAD's retraining method) are set
    like the selected method's; and add a key an override gives a free-form constructor dict
    (`model.kwargs.width`) as a placeholder the override fills with any Python literal.
    Returns the sections mounted."""
    out = []
    for path in overrides:
        name = path.split(".", 1)[0]
        if name not in config and name in known_sections():
            mount(config, known_sections()[name])
            out.append(name)
        parent, _, key = path.rpartition(".")
        if parent in _FREE and key and name in config:
            free = config[name][parent.split(".", 1)[1]]
            if isinstance(free, ml_collections.ConfigDict) and key not in free:
                with free.unlocked():
                    free[key] = ml_collections.FieldReference(None, field_type=object)
    return out


def check_flagged(config: ml_collections.ConfigDict, overrides: Iterable[str]) -> None:
    """Raise ConfigError when a command-line override sets a field of a method's section the
    run does not read (`selected` would drop it, and the setting with it)."""
    kept = selected(config)
    for path in overrides:
        name = path.split(".", 1)[0]
        if name in known_sections() and name not in kept:
            reads = [s for s in map(methods.section_name, uses(copy.deepcopy(config))) if s]
            which = f" (it reads {', '.join(reads)})" if reads else ""
            raise ConfigError(
                f"--config.{path}: method {config.method!r} does not read section {name!r}"
                f"{which}; select {known_sections()[name]!r} with --config.method or a "
                "composing field such as lrds.base / active.retrain")


def uses(config: ml_collections.ConfigDict) -> list[str]:
    """The methods whose sections a run of `config` reads: `config.method` and, recursively,
    those its module's `uses(config)` names (LR+DS's base, DiSK's SimKD students). A section
    the config lacks is mounted with its defaults first."""
    out: list[str] = []
    todo = [config.method]
    while todo:
        name = todo.pop(0)
        if name in out:
            continue
        out.append(name)
        mount(config, name)
        hook = getattr(methods.module_of(name), "uses", None)
        if hook is not None:
            todo.extend(hook(config))
    return out


def selected(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """`config` with the base sections and the sections of the methods it `uses` only (another
    method's section a config file mounted for other rows of its table is dropped): what a
    run reads and records. A driver's config (`'module:function'`, e.g. RAD's loop, which
    retrains with other methods) is returned as it is."""
    if "train" not in config or not hasattr(methods.resolve(config.method), "make_method"):
        return config
    config = copy.deepcopy(config)
    with config.unlocked():
        keep = {methods.section_name(m) for m in uses(config)} | BASE_KEYS
        for key in list(config.keys()):
            if key not in keep and key in known_sections():
                del config[key]
    return config


@functools.lru_cache(maxsize=None)
def known_sections() -> dict[str, str]:
    """{section name: method} of the methods under kdjax/methods/ (another key outside the base
    is left to `validate`, so a misspelt section still fails)."""
    return {methods.section_name(m): m for m in methods.known() if methods.section_name(m)}


def _readers(config: ml_collections.ConfigDict) -> list[str]:
    """The methods whose sections `config` may hold: those it `uses`, and for a driver (which
    keeps its config whole) every known method whose section it mounts."""
    out = uses(copy.deepcopy(config))
    out += [m for key, m in known_sections().items() if key in config and m not in out]
    return out


def _positive(v) -> bool:
    return v > 0


def _unit(v) -> bool:
    return 0.0 <= v <= 1.0


# field -> (predicate, what it must be). Method sections add theirs as `CHECKS` in config.py.
CHECKS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "train.epochs": (lambda v: v >= 1, "an integer >= 1"),
    "train.learning_rate": (lambda v: v >= 0, ">= 0"),
    "train.weight_decay": (lambda v: v >= 0, ">= 0"),
    "train.momentum": (lambda v: 0.0 <= v < 1.0, "in [0, 1)"),
    "train.log_every_steps": (lambda v: v >= 1, ">= 1"),
    "train.eval_every_epochs": (lambda v: v >= 1, ">= 1"),
    "train.checkpoint_every_steps": (lambda v: v >= 1, ">= 1"),
    "train.keep_checkpoints": (lambda v: v >= 1, ">= 1"),
    "teacher.epochs": (lambda v: v >= 1, "an integer >= 1"),
    "teacher.seed": (lambda v: int(v) == v and v >= -1, "an integer >= -1 (-1 = the run's seed)"),
    "data.batch_size": (lambda v: v >= 1, ">= 1"),
    "data.eval_batch_size": (lambda v: v >= 1, ">= 1"),
    "data.num_validation": (lambda v: v >= 0, ">= 0"),
    "data.label_noise": (lambda v: 0.0 <= v < 1.0, "in [0, 1)"),
    "loss.temperature": (_positive, "> 0"),
    "loss.kd_weight": (_unit, "in [0, 1]"),
    "loss.ce_weight": (_unit, "in [0, 1]"),
}


def flat_fields(node, prefix: str = "") -> dict[str, Any]:
    """{'section.field': value} of a config (a ConfigDict or its dict form, e.g. a recorded
    config.json); free-form `*kwargs` dicts and empty sections are single fields."""
    out = {}
    for key in node.keys():
        value = node[key]
        path = f"{prefix}{key}"
        if (isinstance(value, (ml_collections.ConfigDict, dict)) and not key.endswith("kwargs")
                and list(value.keys())):
            out.update(flat_fields(value, path + "."))
        else:
            out[path] = value
    return out


# Free-form dict fields: their keys are the user's (model constructor arguments, grids).
_FREE = ("model.kwargs", "teacher.kwargs")


def _declared(path: str, declared: dict) -> bool:
    return path in declared or any(path.startswith(f + ".") for f in _FREE)


# Fields that moved: {path now: the path a config.json written before the move holds}.
MOVED = {"active.claim": "claim"}   # RAD's claim, a base section before it moved to RAD's


def comparable(old: dict, new: dict) -> tuple[dict[str, Any], dict[str, Any]]:
    """The flat fields a resumed run compares, of a recorded config (`old`, config.json) and of
    the run's (`new`, its JSON form): the fields of `new` only — another method's section
    recorded beside them is not this run's — a field that moved read at its former path
    (`MOVED`), and a field the record predates (a field added to the method since) taken at
    its default."""
    b = flat_fields(new)
    defaults = {}
    if "train" in new:
        spec = schema(ml_collections.ConfigDict(new))
        defaults = flat_fields(json.loads(json.dumps(spec.to_dict(), default=str)))
    a = flat_fields(old)
    for now, before in MOVED.items():
        a.update({now + k[len(before):]: v for k, v in a.items()
                  if k.startswith(before + ".") and now + k[len(before):] not in a})
    return {k: a[k] if k in a else defaults.get(k) for k in b}, b


def schema(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """The base config with the sections of the methods `config` uses (their defaults)."""
    return base_config(config.method, _readers(config))


def undeclared_fields(config: ml_collections.ConfigDict) -> list[tuple[str, str | None]]:
    """[(field, closest declared field or None)] for every field the schema lacks."""
    declared = flat_fields(schema(config))
    missing = []
    for path in flat_fields(config):
        if not _declared(path, declared) and not any(
                d.startswith(path + ".") for d in declared):
            close = difflib.get_close_matches(path, list(declared), n=1, cutoff=0.6)
            missing.append((path, close[0] if close else None))
    return missing


def checks(config: ml_collections.ConfigDict) -> dict[str, tuple[Callable[[Any], bool], str]]:
    """CHECKS and those of the sections of the methods `config` uses."""
    out = dict(CHECKS)
    for method in _readers(config):
        module = methods.declaration(method)
        if module is not None:
            name = methods.section_name(method)
            out.update({f"{name}.{k}": v for k, v in getattr(module, "CHECKS", {}).items()})
    return out


def validate(config: ml_collections.ConfigDict) -> None:
    """Raise ConfigError naming the first undeclared or out-of-range field.

    A config without a `train` section is not a training run's (e.g. an exact computation such
    as RAD Fig. 2, or a test's fake runner) and is left to the function it names.
    """
    if "train" not in config:
        return
    config = selected(config)
    for path, close in undeclared_fields(config):
        hint = f"; did you mean {close}?" if close else ""
        where = ("kdjax/config.py" if path.split(".")[0] in BASE_KEYS else
                 f"the config section of method {config.method!r}")
        raise ConfigError(f"config field {path} is not declared in {where}{hint}")
    flat = flat_fields(config)
    for path, (ok, what) in checks(config).items():
        if path in flat and flat[path] is not None:
            value = flat[path]
            try:
                good = bool(ok(value))
            except TypeError:
                good = False
            if not good:
                raise ConfigError(f"config field {path}={value!r} must be {what}")
    for path in ("model.name", "teacher.name", "data.name"):   # your own, by import path
        value = flat.get(path)
        if (isinstance(value, str) and import_path.is_path(value)
                and not value.startswith(("tfds:", "records:"))):
            import_path.resolve(value, f"config field {path}")
    # A used method's rules over several fields (a driver's runs meet `loop.fit`'s checks).
    used = (uses(copy.deepcopy(config))
            if hasattr(methods.resolve(config.method), "make_method") else [])
    for method in used:
        module = methods.declaration(method)
        check = getattr(module, "check_config", None) if module is not None else None
        message = check(config) if check is not None else None
        if message:
            raise ConfigError(message)
    act = config.get("active")
    if act is not None and act.get("m_estimate") == "uniform" and act.b_uniform > act.budget:
        raise ConfigError(f"config field active.b_uniform={act.b_uniform} must not exceed "
                          f"active.budget={act.budget} (the first round's queries pay for it)")
