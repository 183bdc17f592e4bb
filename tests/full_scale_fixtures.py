"""Every `--scale=full` config of experiments/, shrunk to fit a CPU, on fabricated data.

`full_cases()` enumerates them automatically: the first point of each registry entry's full
grid (experiments/tables.py, one per distinct dataset of the grid), the standalone full
configs (`STANDALONE_FULL`) and the full variants a config file offers that no entry runs
(`EXTRA_FULL`). Entries whose full config trains on no dataset are `NO_DATA` (with why).

`shrink(config)` changes only what makes a run fit the CPU; the method, its loss, the data
format and input recipe, and the teacher path stay the paper's:
  * every stage 1 epoch (`*epochs` fields; warm-up 0) over a train subset of 2 batches of
    `BATCH`, so each stage takes 2 steps; evaluation on `EVAL` test examples;
  * the active loop (RAD, compositions): |A| = 2 batches, b = 1 batch, 1 round, 1 trial, the
    config's first 2 strategies (RAD and a baseline; every strategy's selection is tested in
    tests/test_active_strategies.py) and the claimed pairs among them;
  * models: a smaller member of the same family (`shrink_model`, documented per family);
  * grain workers 0 (records decoded in the test process), no tensorboard / progress bar.

`fabricated(name, root)` makes the data in the dataset's real format and returns the
config.data.data_dir to use: TFDS names under `tfds.testing.mock_data` (random examples of the
builder's own feature spec, read through `tfds.data_source`), Fashion-MNIST as the four idx
.gz files, Tiny-ImageNet and FGVC-Aircraft as a JPEG folder in their distribution layout
converted by kdjax's TF-free `prepare` into array_record shards.
"""
from __future__ import annotations

import contextlib
import dataclasses
import gzip
import os
import re
import struct
from typing import Callable, Iterator

import ml_collections
import numpy as np
from PIL import Image

from kdjax.reproduce import spec as spec_lib
from kdjax.reproduce import sweep

BATCH = 8          # one example per fake CPU device (tests/conftest.py: 8 devices)
VALIDATION = 8     # held-out examples where the config holds any out
EVAL = 8           # test examples evaluated
MOCK_EXAMPLES = 40  # examples per split tfds.testing.mock_data makes
STRATEGIES = 2     # selection strategies compared per active config: its first two

# Registry entries whose full config reads no dataset: nothing to fabricate. (A data-less
# entry marked full_here, a toy whose paper setting runs on the CPU, may be left out.)
NO_DATA = {
    "rad_fig2": "exact computation of Cor. 1's sampling distribution (no training)",
    "disk_table1": "DiSK's 1D/2D toy problems: synthetic minima, paper setting runs on CPU",
    "disk_table2_6": "model statistics (parameters, MACs) from jax.eval_shape: no data",
    "alm_sec5_fig3": "Sec. 5 synthetic (make_classification) MLP toy, full setting on CPU",
    "alm_sec5_fig4": "Sec. 5 synthetic (make_classification) MLP toy, full setting on CPU",
    "alm_sec5_sensitivity": "Sec. 5 synthetic toy variants, full setting on CPU",
    "alm_sec5_settings": "Sec. 5 synthetic toy under other settings, full setting on CPU",
}
# Config files with a full setting that no registry entry names: (file, arg).
STANDALONE_FULL = (
    ("experiments/cifar100_kd.py", None),                  # resnet56 -> resnet20, KD
    ("experiments/cifar100_kd.py", "resnet32x4:resnet8x4"),
)
# Full variants of registry configs that the registry does not run: (file, arg).
EXTRA_FULL = (
    ("experiments/alm/table3.py", "full:fgvc_aircraft"),   # Table 3's other column
    ("experiments/disk/table3.py", "full_tiny"),           # Table 3's Tiny-ImageNet half
)
# Config files with no full setting of their own (why), checked against experiments/.
NOT_FULL = {
    "experiments/default.py": "the schema's defaults, not an experiment",
    "experiments/quickstart.py": "CPU quick start on offline Fashion-MNIST",
    "experiments/fashion_mnist_kd.py": "CPU example on offline Fashion-MNIST",
}


@dataclasses.dataclass(frozen=True)
class Case:
    """One full config: `id` names it in test ids; `load()` builds it."""
    id: str
    config_file: str
    arg: str | None
    table: str = ""
    point: sweep.Point | None = None
    build: Callable[[], ml_collections.ConfigDict] | None = None

    def load(self) -> ml_collections.ConfigDict:
        if self.build is not None:
            return self.build()
        if self.point is not None:
            from experiments.tables import TABLES
            return sweep.point_config(TABLES[self.table], self.point)
        return spec_lib.load_config(self.config_file, self.arg)


def registry_cases() -> tuple[list[Case], list[str]]:
    """(cases, ids of entries with no dataset): one case per distinct data.name of each
    entry's full grid (its first point)."""
    from experiments.tables import TABLES
    cases, no_data = [], []
    for tid, spec in TABLES.items():
        seen = set()
        for point in sweep.expand(spec, "full"):
            config = sweep.point_config(spec, point)
            name = config.data.get("name") if "data" in config else None
            if "train" not in config or not isinstance(name, str):
                no_data.append(tid)
                break
            if name in seen:
                continue
            seen.add(name)
            suffix = "" if len(seen) == 1 else f"[{name}]"
            cases.append(Case(tid + suffix, spec.config, spec.args["full"], tid, point))
    return cases, no_data


def full_cases() -> list[Case]:
    cases, _ = registry_cases()
    for file, arg in STANDALONE_FULL + EXTRA_FULL:
        stem = os.path.splitext(os.path.relpath(file, "experiments"))[0].replace("/", ".")
        cases.append(Case(f"{stem}:{arg or 'default'}", file, arg))
    return cases


def config_files() -> list[str]:
    """Every committed experiments/**/*.py that defines get_config (repo-relative; files not
    yet in git, e.g. another change in progress, are left out)."""
    import subprocess
    try:
        listed = subprocess.run(["git", "ls-files", "experiments"], cwd=spec_lib.REPO_ROOT,
                                capture_output=True, text=True, check=True).stdout.split()
    except (OSError, subprocess.CalledProcessError):   # not a git checkout: every file
        root = os.path.join(spec_lib.REPO_ROOT, "experiments")
        listed = [os.path.relpath(os.path.join(d, n), spec_lib.REPO_ROOT)
                  for d, _, names in os.walk(root) for n in names]
    out = []
    for rel in listed:
        path = os.path.join(spec_lib.REPO_ROOT, rel)
        if rel.endswith(".py") and os.path.exists(path) and re.search(
                r"^def get_config", open(path).read(), re.M):
            out.append(rel)
    return sorted(out)


# ---------------------------------------------------------------- the CPU reduction
# Smaller members of each model family (registry name pattern -> name, kwargs). The zoo's
# constructors fix depth (and for some widths) per name, so depth is cut by naming the family's
# smallest member and width through the constructor's width argument where it has one.
_SHRINK: tuple[tuple[str, Callable[[re.Match], tuple[str, dict]]], ...] = (
    # ImageNet ResNets (basic / bottleneck): same stage sizes, 1/16 of the filters.
    (r"resnet(18|34|50|101)", lambda m: (m.group(0), {"filters": (4, 8, 16, 32)})),
    # DiSK's ResNet10 family (A.4; widths fixed per name): its narrowest member, -xxs.
    (r"resnet10(_\w+)?", lambda m: ("resnet10_xxs", {})),
    # CIFAR ResNets (He et al. 2016): depth 8, quarter filters; the x4 family's depth 8.
    (r"resnet\d+x4", lambda m: ("resnet8x4", {})),
    (r"resnet\d+", lambda m: ("resnet8", {"filters": (4, 4, 8, 16)})),
    # Pre-activation ResNetV2 (RAD): the smallest depth, 11.
    (r"resnetv2_\d+", lambda m: ("resnetv2_11", {})),
    # Wide ResNets: WRN-16-1 (the smallest depth and width of the zoo).
    (r"wrn_\d+_\d+", lambda m: ("wrn_16_1", {})),
    # MobileNet v1 (RAD): width multiplier 0.25 (the w2 / d2 teachers: their own name).
    (r"mobilenet", lambda m: ("mobilenet", {"alpha": 0.25})),
    (r"mobilenet_(w2|d2)", lambda m: (m.group(0), {})),
    # MobileNetV2: width 0.25 (the x2 / half members: the 0.5-width one).
    (r"mobilenetv2", lambda m: ("mobilenetv2", {"width": 0.25})),
    (r"mobilenetv2_\w+", lambda m: ("mobilenetv2_half", {})),
    # ShuffleNetV2: its 0.5 net size.
    (r"shufflenetv2(_0_5)?", lambda m: ("shufflenetv2_0_5", {})),
    # VGG: the 8-layer member.
    (r"vgg\d+", lambda m: ("vgg8", {})),
    # DenseNet-40-12 (its only member): unchanged.
    (r"densenet40_12", lambda m: (m.group(0), {})),
    # The small stand-ins the reduced settings use: unchanged.
    (r"cnn_small|mlp", lambda m: (m.group(0), None)),
)


def shrink_model(name: str, kwargs) -> tuple[str, dict]:
    """(name, kwargs) of the smaller same-family model that stands in for `name` on the CPU."""
    for pattern, rule in _SHRINK:
        m = re.fullmatch(pattern, name)
        if m:
            new, kw = rule(m)
            return new, dict(kwargs or {}) if kw is None else kw
    raise KeyError(f"tests/full_scale_fixtures.py: no CPU stand-in for model {name!r}; add its "
                   "family to _SHRINK")


def shrink(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """The CPU reduction (module docstring) of a full config, in place; returns it."""
    c = config
    c.progress_bar = False
    c.tensorboard = False
    d = c.data
    d.workers = 0
    d.batch_size = BATCH
    d.eval_batch_size = BATCH
    if d.num_validation:
        d.num_validation = VALIDATION
    active = "kdjax.methods.rad" in c.method or "compose_active" in c.method or c.method in (
        "rad", "rad_compare")
    train_n = 2 * BATCH
    if active:
        a = c.active
        a.num_labeled, a.budget, a.rounds, a.num_trials = 2 * BATCH, BATCH, 1, 1
        a.b_uniform = min(a.b_uniform, a.budget)
        a.pool_size = 0
        a.num_clusters = min(a.num_clusters, 4)
        a.cluster_bucket_size = 0
        a.strategies = tuple(a.strategies)[:STRATEGIES]
        keep = lambda pairs: tuple(p for p in pairs if set(p) <= set(a.strategies))
        a.pairs = keep(a.pairs)
        a.claim.pairs = keep(a.claim.pairs)
        train_n = a.num_labeled + 2 * a.budget
    d.max_train_examples = train_n + d.num_validation
    d.max_test_examples = EVAL
    for section, key, value in _epoch_fields(c):
        section[key] = value
    for section in (c.model, c.teacher):
        section.name, kw = shrink_model(section.name, section.kwargs)
        section.kwargs = ml_collections.ConfigDict(kw)
    if "alm" in c and c.alm.assistants:
        pairs = [shrink_model(n, k) for n, k in
                 zip(c.alm.assistants, c.alm.assistant_kwargs or ({},) * len(c.alm.assistants))]
        c.alm.assistants = tuple(p[0] for p in pairs)
        c.alm.assistant_kwargs = tuple(p[1] for p in pairs)
    c.train.log_every_steps = 1
    c.train.checkpoint_every_steps = 1000
    return c


def _epoch_fields(node, path: str = "", out=None):
    """(section, field, 1-epoch value) for every epoch count of the config (the learning-rate
    warm-up: 0; decay boundaries: kept)."""
    out = [] if out is None else out
    for key in list(node.keys()):
        v = node[key]
        if isinstance(v, ml_collections.ConfigDict) and not key.endswith("kwargs"):
            _epoch_fields(v, f"{path}{key}.", out)
        elif f"{path}{key}" == "train.warmup_epochs":
            out.append((node, key, 0))
        elif key.endswith("epochs") and key != "decay_epochs":
            if isinstance(v, int) and v > 1:
                out.append((node, key, 1))
            elif isinstance(v, tuple) and v and all(isinstance(x, int) for x in v):
                out.append((node, key, tuple(min(x, 1) for x in v)))
    return out


# ---------------------------------------------------------------- fabricated data
@dataclasses.dataclass(frozen=True)
class Format:
    """How a dataset is stored: 'tfds' (a TFDS builder, mocked), 'idx' (Fashion-MNIST's
    files), 'prepared' (kdjax array_record shards from the distribution's JPEG folder)."""
    kind: str
    num_classes: int
    image_shape: tuple


FORMATS = {
    "cifar10": Format("tfds", 10, (32, 32, 3)),
    "cifar100": Format("tfds", 100, (32, 32, 3)),
    "svhn_cropped": Format("tfds", 10, (32, 32, 3)),
    "imagenet2012": Format("tfds", 1000, (224, 224, 3)),
    "stanford_dogs": Format("tfds", 120, (224, 224, 3)),
    "fashion_mnist": Format("idx", 10, (28, 28, 1)),
    "tiny_imagenet": Format("prepared", 200, (64, 64, 3)),
    "fgvc_aircraft": Format("prepared", 100, (224, 224, 3)),
}
PREPARED_CLASSES = 24  # classes of a fabricated JPEG folder (> DiSK's top_k = 20)
PREPARED_PER_CLASS = 2


def _jpeg(path: str, w: int, h: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = rng.uniform(0, 1, 3)
    img = np.stack([128 + 100 * np.sin(xx / w * 3 + base[c] * 6) * np.cos(yy / h * 2)
                    for c in range(3)], -1).astype(np.uint8)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(img).save(path, quality=90)


def write_fashion_idx(folder: str, seed: int = 0) -> dict:
    """The four Fashion-MNIST idx .gz files (60000 / 10000 images, as the loader requires):
    image i is constant grey 25 * label (so labels are learnable); returns the label arrays."""
    rng = np.random.default_rng(seed)
    os.makedirs(folder, exist_ok=True)
    out = {}
    for prefix, n in (("train", 60000), ("t10k", 10000)):
        labels = rng.integers(0, 10, n).astype(np.uint8)
        images = np.repeat((labels * 25).astype(np.uint8)[:, None], 28 * 28, 1)
        with gzip.open(os.path.join(folder, f"{prefix}-images-idx3-ubyte.gz"), "wb", 1) as f:
            f.write(struct.pack(">IIII", 0x803, n, 28, 28) + images.tobytes())
        with gzip.open(os.path.join(folder, f"{prefix}-labels-idx1-ubyte.gz"), "wb", 1) as f:
            f.write(struct.pack(">II", 0x801, n) + labels.tobytes())
        out[prefix] = labels
    return out


def write_tiny_imagenet(root: str) -> str:
    """tiny-imagenet-200/: wnids.txt, train/<wnid>/images/*.JPEG, val/val_annotations.txt."""
    top = os.path.join(root, "tiny-imagenet-200")
    wnids = [f"n{k:08d}" for k in range(PREPARED_CLASSES)]
    os.makedirs(os.path.join(top, "val", "images"), exist_ok=True)
    with open(os.path.join(top, "wnids.txt"), "w") as f:
        f.write("\n".join(wnids) + "\n")
    lines = []
    for k, w in enumerate(wnids):
        for i in range(PREPARED_PER_CLASS):
            _jpeg(os.path.join(top, "train", w, "images", f"{w}_{i}.JPEG"), 64, 64, 100 * k + i)
            name = f"val_{k}_{i}.JPEG"
            _jpeg(os.path.join(top, "val", "images", name), 64, 64, 10_000 + 100 * k + i)
            lines.append(f"{name}\t{w}\t0\t0\t63\t63")
    with open(os.path.join(top, "val", "val_annotations.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    return top


def write_fgvc_aircraft(root: str) -> str:
    """fgvc-aircraft-2013b/data/: variants.txt, images_variant_{trainval,test}.txt, images/."""
    data = os.path.join(root, "fgvc-aircraft-2013b", "data")
    variants = [f"7{k}7-{k}00" for k in range(PREPARED_CLASSES)]
    os.makedirs(os.path.join(data, "images"), exist_ok=True)
    with open(os.path.join(data, "variants.txt"), "w") as f:
        f.write("\n".join(variants) + "\n")
    for split, offset in (("trainval", 0), ("test", 500_000)):
        lines = []
        for k, v in enumerate(variants):
            for i in range(PREPARED_PER_CLASS):
                image_id = f"{offset + 1000 * k + i:07d}"
                _jpeg(os.path.join(data, "images", image_id + ".jpg"), 90 + 7 * i, 60 + 5 * k,
                      offset + 100 * k + i)
                lines.append(f"{image_id} {v}")
        with open(os.path.join(data, f"images_variant_{split}.txt"), "w") as f:
            f.write("\n".join(lines) + "\n")
    return os.path.dirname(data)


_PREPARED_WRITERS = {"tiny_imagenet": write_tiny_imagenet, "fgvc_aircraft": write_fgvc_aircraft}


@contextlib.contextmanager
def fabricated(name: str, root: str) -> Iterator[str]:
    """Data of dataset `name` in its real format under `root`; yields config.data.data_dir
    ('' for TFDS names, which `tfds.testing.mock_data` serves while the context is open)."""
    if name not in FORMATS:
        raise KeyError(f"tests/full_scale_fixtures.py: no fabricated format for dataset "
                       f"{name!r}; add it to FORMATS")
    kind = FORMATS[name].kind
    if kind == "tfds":
        import tensorflow_datasets as tfds
        with tfds.testing.mock_data(num_examples=MOCK_EXAMPLES):
            yield ""
    elif kind == "idx":
        folder = os.path.join(root, "fashion-mnist")
        if not os.path.exists(os.path.join(folder, "t10k-labels-idx1-ubyte.gz")):
            write_fashion_idx(folder)
        yield folder
    else:
        from kdjax.data import prepare
        out = os.path.join(root, "prepared", name)
        if not os.path.exists(os.path.join(out, prepare.META_FILE)):
            source = _PREPARED_WRITERS[name](os.path.join(root, "sources", name))
            prepare.prepare(name, source, out, num_workers=0)
        yield os.path.join(root, "prepared")
