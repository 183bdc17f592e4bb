"""Published PyTorch teachers -> kdjax variables `{'params', 'batch_stats'}`.

Sources (module layouts and parameter names as published):
- RepDistiller / CRD (Tian et al. 2020) `models/*.py`, which mdistiller's `cifar_teachers.tar`
  shares: resnet8..110, resnet8x4, resnet32x4 (`resnet.py`), ResNet18/34/50 (`resnetv2.py`,
  3x3 stride-1 stem), wrn_16_1/16_2/40_1/40_2, vgg8..19 (BatchNorm forms), MobileNetV2
  (`mobile_half`, width 0.5; width 1 also), ShuffleV2 (net size 1; 0.5 also).
- torchvision `models/resnet.py`: resnet18/34/50 (7x7 stride-2 stem + max pool; ResNet-50's
  stride on the 3x3 conv, "V1.5", as kdjax).
ResNet-101 has the same layout but is left out: on random weights its float32 logits differ from
float64 by ~2e-4 in PyTorch itself, so the 1e-4 equivalence test cannot vouch for it.

Layout rules, applied leaf by leaf and checked against the shapes of the kdjax model:
- Conv2d weight (O, I/groups, kh, kw) -> flax kernel (kh, kw, I/groups, O); depthwise convs
  (groups = channels) come out as (kh, kw, 1, C), flax's `feature_group_count` layout.
- Linear weight (out, in) -> Dense kernel (in, out). Every model here pools to 1x1 before its linear
  layer, so the PyTorch flatten of (C, 1, 1) is the channel order and no NCHW -> NHWC permutation
  of the linear rows is needed (the shape check would catch a model where it were).
- BatchNorm2d weight/bias -> params scale/bias; running_mean/var -> batch_stats mean/var (both use
  eps 1e-5); `num_batches_tracked` is dropped.
- Inputs: PyTorch takes NCHW, kdjax NHWC: feed `x.transpose(0, 2, 3, 1)`. Channel concatenations
  (ShuffleNetV2) are on the last axis in the same order, and its channel shuffle is the same
  permutation, so no channel reordering is needed anywhere.
- Shortcuts: `downsample.{0,1}` (resnet.py, torchvision) and `shortcut.{0,1}` (resnetv2.py) ->
  `down_conv` / `down_bn`; WRN's `convShortcut` -> `shortcut`.

Every PyTorch key must land on a kdjax leaf of the same shape and every kdjax leaf must be filled;
otherwise `ConversionError` names the key and the closest name on the other side (difflib).
"""
from __future__ import annotations

import argparse
import difflib
import io
import os
import re
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np
from etils import epath
from flax import traverse_util

Path = tuple[str, ...]

TORCH_SUFFIXES = (".pth", ".pt")
# RepDistiller's model_dict names that differ from kdjax's registry names.
ALIASES = {"ResNet18": "resnet18", "ResNet34": "resnet34", "ResNet50": "resnet50",
           "MobileNetV2": "mobilenetv2_half", "ShuffleV2": "shufflenetv2"}


class ConversionError(ValueError):
    """A PyTorch state_dict that does not fit the kdjax model (names the key or the shape)."""


# ----------------------------------------------------------------------------- name mappings
# Each maps a PyTorch module path ("layer1.0.conv1") to a kdjax module path; a path it does not
# know is passed through unchanged and then fails the match with a closest-name hint.

def _resnet(prefix: str) -> Path:
    m = re.fullmatch(r"layer(\d+)\.(\d+)\.(.+)", prefix)
    if m:
        stage, block, rest = m.groups()
        rest = {"downsample.0": "down_conv", "downsample.1": "down_bn", "shortcut.0": "down_conv",
                "shortcut.1": "down_bn"}.get(rest, rest)
        return (f"stage{stage}_block{block}", rest)
    return {"conv1": ("stem_conv",), "bn1": ("stem_bn",), "fc": ("head",),
            "linear": ("head",)}.get(prefix, (prefix,))


def _wrn(prefix: str) -> Path:
    m = re.fullmatch(r"block(\d+)\.layer\.(\d+)\.(.+)", prefix)
    if m:
        stage, block, rest = m.groups()
        return (f"stage{stage}_block{block}", "shortcut" if rest == "convShortcut" else rest)
    return {"conv1": ("stem_conv",), "bn1": ("final_bn",), "fc": ("head",)}.get(prefix, (prefix,))


def _vgg(prefix: str) -> Path:
    # RepDistiller's blocks are Sequential([conv, bn, relu] * n) without the last ReLU.
    m = re.fullmatch(r"block(\d+)\.(\d+)", prefix)
    if m:
        i, j = int(m.group(1)), int(m.group(2))
        if j % 3 in (0, 1):
            return (f"{'conv' if j % 3 == 0 else 'bn'}{i}_{j // 3}",)
    return ("head",) if prefix == "classifier" else (prefix,)


_MBV2_INNER = {"0": "expand", "1": "expand_bn", "3": "dw", "4": "dw_bn", "6": "project",
               "7": "project_bn"}


def _mobilenetv2(prefix: str) -> Path:
    m = re.fullmatch(r"blocks\.(\d+)\.(\d+)\.conv\.(\d+)", prefix)
    if m and m.group(3) in _MBV2_INNER:
        return (f"block{m.group(1)}_{m.group(2)}", _MBV2_INNER[m.group(3)])
    return {"conv1.0": ("stem_conv",), "conv1.1": ("stem_bn",), "conv2.0": ("last_conv",),
            "conv2.1": ("last_bn",), "classifier.0": ("head",)}.get(prefix, (prefix,))


_SHUFFLE_DOWN = {"conv1": "left_dw", "conv2": "left_pw", "conv3": "right_pw1",
                 "conv4": "right_dw", "conv5": "right_pw2"}
_SHUFFLE_BASIC = {"conv1": "pw1", "conv2": "dw", "conv3": "pw2"}


def _shufflenetv2(prefix: str) -> Path:
    m = re.fullmatch(r"layer(\d+)\.(\d+)\.(conv|bn)(\d)", prefix)
    if m:
        stage, block, kind, k = m.group(1), int(m.group(2)), m.group(3), m.group(4)
        table = _SHUFFLE_DOWN if block == 0 else _SHUFFLE_BASIC
        unit = f"stage{stage}_down" if block == 0 else f"stage{stage}_unit{block - 1}"
        if f"conv{k}" in table:
            return (unit, table[f"conv{k}"] + ("_bn" if kind == "bn" else ""))
    return {"conv1": ("stem_conv",), "bn1": ("stem_bn",), "conv2": ("last_conv",),
            "bn2": ("last_bn",), "linear": ("head",)}.get(prefix, (prefix,))


# kdjax name -> (module-name mapping, image side the kdjax model is built at)
SUPPORTED: dict[str, tuple[Callable[[str], Path], int]] = {}
for _n in ("resnet8", "resnet14", "resnet20", "resnet32", "resnet44", "resnet56", "resnet110",
           "resnet8x4", "resnet32x4", "resnet18", "resnet34", "resnet50"):
    SUPPORTED[_n] = (_resnet, 32)
for _n in ("wrn_16_1", "wrn_16_2", "wrn_40_1", "wrn_40_2"):
    SUPPORTED[_n] = (_wrn, 32)
for _n in ("vgg8", "vgg11", "vgg13", "vgg16", "vgg19"):
    SUPPORTED[_n] = (_vgg, 32)
SUPPORTED.update({"mobilenetv2_half": (_mobilenetv2, 32), "mobilenetv2": (_mobilenetv2, 32),
                  "shufflenetv2": (_shufflenetv2, 32), "shufflenetv2_0_5": (_shufflenetv2, 32)})
# Four-stage ResNets whose 7x7 stem marks torchvision's ImageNet layout are built at 224 px.
IMAGENET_SIDE = 224


# ----------------------------------------------------------------------------- conversion
def _to_numpy(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):  # a torch.Tensor, without importing torch
        value = value.detach().cpu().float().numpy()
    return np.asarray(value, dtype=np.float32)


def strip_state_dict(obj: Mapping[str, Any]) -> dict[str, Any]:
    """The state_dict inside a loaded file: RepDistiller/mdistiller's {'model': sd, ...} or a bare
    torchvision sd, without DataParallel's 'module.' prefix and `num_batches_tracked`."""
    if "model" in obj and isinstance(obj["model"], Mapping):
        obj = obj["model"]
    elif "state_dict" in obj and isinstance(obj["state_dict"], Mapping):
        obj = obj["state_dict"]
    out = {}
    for key, value in obj.items():
        if not isinstance(key, str) or key.endswith("num_batches_tracked"):
            continue
        out[key[len("module."):] if key.startswith("module.") else key] = value
    if not out:
        raise ConversionError("the PyTorch file holds no state_dict tensors (expected a "
                              "state_dict or {'model': state_dict, ...})")
    return out


def _closest(name: str, candidates) -> str:
    hit = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.0)
    return hit[0] if hit else "(none)"


def _target(key: str, value: np.ndarray, module: Path) -> tuple[Path, Callable]:
    """Where one PyTorch leaf goes in kdjax, and the layout change on the way."""
    leaf = key.rsplit(".", 1)[-1]
    if leaf == "running_mean":
        return ("batch_stats", *module, "mean"), lambda v: v
    if leaf == "running_var":
        return ("batch_stats", *module, "var"), lambda v: v
    if leaf == "weight" and value.ndim == 4:  # Conv2d OIHW -> HWIO
        return ("params", *module, "kernel"), lambda v: v.transpose(2, 3, 1, 0)
    if leaf == "weight" and value.ndim == 2:  # Linear (out, in) -> (in, out)
        return ("params", *module, "kernel"), lambda v: v.T
    if leaf == "weight":  # BatchNorm gamma
        return ("params", *module, "scale"), lambda v: v
    return ("params", *module, leaf), lambda v: v  # conv / linear / BatchNorm bias


def resolve_name(name: str) -> str:
    """kdjax registry name for `name` (RepDistiller's 'ResNet50', 'MobileNetV2', ... accepted)."""
    name = ALIASES.get(name, name)
    if name not in SUPPORTED:
        raise ConversionError(f"no PyTorch conversion for model {name!r}; supported: "
                              f"{', '.join(sorted(SUPPORTED))} (and {', '.join(sorted(ALIASES))})")
    return name


def from_torch(name: str, num_classes: int, path_or_state_dict: str | os.PathLike | Mapping,
               model_kwargs: Mapping | None = None) -> dict:
    """Convert a published PyTorch checkpoint into `{'params', 'batch_stats'}` for kdjax's `name`.

    `path_or_state_dict`: a .pth/.pt file (loaded with `load_torch_file`, needs PyTorch) or a loaded
    mapping (state_dict, or RepDistiller's {'model': state_dict}); values may be torch tensors or
    numpy arrays. Raises ConversionError naming any unmatched key or shape (and the closest name).
    """
    from kdjax.models import get_model  # late: kdjax.models imports this module

    name = resolve_name(name)
    raw = (load_torch_file(path_or_state_dict) if isinstance(path_or_state_dict, (str, os.PathLike))
           else path_or_state_dict)
    state = {k: _to_numpy(v) for k, v in strip_state_dict(raw).items()}
    mapping, side = SUPPORTED[name]
    stem = state.get("conv1.weight")
    if mapping is _resnet and stem is not None and stem.shape[-1] == 7:
        side = IMAGENET_SIDE  # torchvision layout: kdjax's ImageNet stem is chosen by input size
    model = get_model(name, num_classes, **dict(model_kwargs or {}))
    x = jax.ShapeDtypeStruct((1, side, side, 3), jnp.float32)
    shapes = jax.eval_shape(lambda x: model.init(jax.random.PRNGKey(0), x, train=False), x)
    expected = {k: v.shape for k, v in traverse_util.flatten_dict(
        {c: shapes[c] for c in ("params", "batch_stats") if c in shapes}).items()}
    names = {"/".join(k): k for k in expected}

    plan = {key: _target(key, value, mapping(key.rsplit(".", 1)[0]))
            for key, value in state.items()}
    claimed = {path for path, _ in plan.values()}
    unclaimed = [n for n, p in names.items() if p not in claimed] or list(names)
    out: dict[Path, np.ndarray] = {}
    source: dict[Path, str] = {}
    for key, (path, layout) in plan.items():
        value, label = state[key], "/".join(path)
        if path not in expected:
            raise ConversionError(
                f"{name}: PyTorch key {key!r} (-> {label}) has no kdjax counterpart; closest kdjax "
                f"name: {_closest(label, unclaimed)}")
        if path in out:
            raise ConversionError(f"{name}: PyTorch keys {source[path]!r} and {key!r} both map "
                                  f"to kdjax {label}")
        array = layout(value)
        if array.shape != tuple(expected[path]):
            raise ConversionError(
                f"{name}: PyTorch key {key!r} of shape {value.shape} gives {array.shape} for "
                f"kdjax {label}, which expects {tuple(expected[path])} (num_classes={num_classes})")
        out[path], source[path] = np.ascontiguousarray(array), key
    missing = [p for p in expected if p not in out]
    if missing:
        label = "/".join(missing[0])
        mapped = {"/".join(path): key for key, (path, _) in plan.items()}
        raise ConversionError(
            f"{name}: kdjax {label} (and {len(missing) - 1} more) has no PyTorch key; closest "
            f"PyTorch key: {mapped.get(_closest(label, mapped), '(none)')}")
    tree = jax.device_put(traverse_util.unflatten_dict(out))  # one transfer, no per-shape jit
    return {"params": tree["params"], "batch_stats": tree.get("batch_stats", {})}


# ----------------------------------------------------------------------------- files
def load_torch_file(path: str | os.PathLike) -> Mapping:
    """`torch.load` a .pth/.pt (local or any etils.epath path, e.g. gs://) onto the CPU without
    running pickled code (weights_only).

    RepDistiller's final `{'opt': argparse.Namespace, ...}` files are allowed through by marking
    Namespace safe. Raises FileNotFoundError naming a missing file.
    """
    path = epath.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"missing PyTorch checkpoint: {path}")
    try:
        import torch
    except ImportError as e:
        raise ImportError(f"reading {path} needs PyTorch: pip install 'kdjax[torch]'") from e
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            return torch.load(io.BytesIO(path.read_bytes()), map_location="cpu",
                              weights_only=True)
    except Exception as e:  # torch raises UnpicklingError, RuntimeError, EOFError, ...
        raise ConversionError(f"cannot read PyTorch checkpoint {path}: "
                              f"{str(e).splitlines()[0]}") from e


def is_torch_checkpoint(path: str | os.PathLike) -> bool:
    return os.fspath(path).endswith(TORCH_SUFFIXES)
