"""kdjax.models.from_torch: published PyTorch teachers give the same logits in kdjax.

For every supported architecture a PyTorch model with the published module layout and parameter
names (tests/torch_reference/, random weights, random BatchNorm affine and running statistics,
eval mode) and its conversion agree to max |diff| <= 1e-4 in float32 on random inputs. Then: the
errors for an unmatched key / shape, a .pth through `config.teacher.checkpoint`'s loader, and
`launch.convert_teacher` writing a checkpoint that `checkpoint.load_variables` reads.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys

import jax
import numpy as np
import pytest
import torch

from kdjax import experiment
from kdjax.data import DatasetInfo, Split
from kdjax.experiment import load_teacher_variables
from kdjax.models import ConversionError, from_torch, get_model
from kdjax.models.from_torch import SUPPORTED, resolve_name
from kdjax.train import checkpoint as ckpt_lib
from kdjax.train import mesh as mesh_lib
from launch import convert_teacher
from tests.configs import tiny
from tests.torch_reference import repdistiller, torchvision_resnet

TOL = 1e-4
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# XLA:CPU without its expensive passes: the same float32 arithmetic, compiled several times faster.
FAST_COMPILE = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}


def randomize(model: torch.nn.Module, seed: int, side: int) -> torch.nn.Module:
    """Random weights, random BN gamma/beta, and random running statistics near the ones a random
    batch gives (so activations keep a moderate scale through 110 layers), in eval mode."""
    torch.manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0.0, 0.2)
                m.momentum = None  # running stats = the average over the calibration pass
            elif isinstance(m, torch.nn.Linear):
                m.bias.normal_(0.0, 0.1)
            elif isinstance(m, torch.nn.Conv2d) and m.bias is not None:
                m.bias.normal_(0.0, 0.1)
        model.train()
        model(torch.randn(4, 3, side, side))
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.add_(0.2 * m.running_var.sqrt() * torch.randn_like(m.running_mean))
                m.running_var.mul_(torch.empty_like(m.running_var).uniform_(0.6, 1.6))
    return model.eval()


def kdjax_logits(name: str, num_classes: int, variables: dict, x_nchw: np.ndarray) -> np.ndarray:
    model = get_model(name, num_classes)
    x = np.ascontiguousarray(x_nchw.transpose(0, 2, 3, 1))  # NCHW -> NHWC
    fn = jax.jit(lambda v, x: model.apply(v, x, train=False)[0])
    return np.asarray(fn.lower(variables, x).compile(compiler_options=FAST_COMPILE)(variables, x))


def max_logit_diff(name: str, torch_model: torch.nn.Module, num_classes: int, side: int,
                   seed: int = 0) -> float:
    randomize(torch_model, seed, side)
    x = torch.randn(2, 3, side, side, generator=torch.Generator().manual_seed(seed + 1))
    with torch.no_grad():
        want = torch_model(x).numpy()
    got = kdjax_logits(name, num_classes, from_torch(name, num_classes, torch_model.state_dict()),
                       x.numpy())
    assert got.shape == want.shape
    return float(np.max(np.abs(got - want)))


@pytest.mark.parametrize("name", sorted(SUPPORTED))
def test_repdistiller_logits_match(name):
    diff = max_logit_diff(name, repdistiller.build(name, 100), 100, 32)
    assert diff <= TOL, f"{name}: max |diff| {diff:.2e}"


# 96 px (> kdjax's 64 px small-input limit) takes the ImageNet stem, as 224 px does, at 1/5 the
# cost.
@pytest.mark.parametrize("name", ["resnet18", "resnet34", "resnet50"])
def test_torchvision_logits_match(name):
    diff = max_logit_diff(name, torchvision_resnet.build(name, 1000), 1000, 96)
    assert diff <= TOL, f"{name}: max |diff| {diff:.2e}"


@pytest.mark.parametrize("side", [64, 96])
def test_vgg_pools_after_block3_only_at_64_px(side):
    """RepDistiller's VGG max-pools after block 3 when `h == 64` only (kdjax did for h >= 64)."""
    diff = max_logit_diff("vgg8", repdistiller.build("vgg8", 100), 100, side)
    assert diff <= TOL, f"vgg8 at {side} px: max |diff| {diff:.2e}"


@pytest.fixture(scope="module")
def resnet8():
    """A random RepDistiller resnet8 (100 classes) and its state_dict."""
    model = randomize(repdistiller.build("resnet8", 100), 3, 32)
    return model, dict(model.state_dict())


def test_unmatched_key_names_it_and_the_closest_kdjax_name(resnet8):
    state = dict(resnet8[1])
    state["layer1.0.conv9.weight"] = state.pop("layer1.0.conv1.weight")
    with pytest.raises(ConversionError, match=r"'layer1\.0\.conv9\.weight'.*closest kdjax name: "
                       r"params/stage1_block0/conv1/kernel"):
        from_torch("resnet8", 100, state)


def test_wrong_shape_names_the_key_and_both_shapes(resnet8):
    with pytest.raises(ConversionError, match=r"'fc\.weight' of shape \(100, 64\) gives "
                       r"\(64, 100\) for kdjax params/head/kernel, which expects \(64, 10\)"):
        from_torch("resnet8", 10, resnet8[1])
    with pytest.raises(ConversionError, match=r"'conv1\.weight'.*params/stem_conv/kernel"):
        from_torch("resnet8x4", 100, resnet8[1])


def test_missing_key_names_the_kdjax_leaf_and_the_closest_key(resnet8):
    state = {k: v for k, v in resnet8[1].items() if k != "layer2.0.bn2.running_var"}
    with pytest.raises(ConversionError, match=r"kdjax batch_stats/stage2_block0/bn2/var .*"
                       r"closest PyTorch key: layer\d\.0\.bn2\.running_var"):
        from_torch("resnet8", 100, state)


def test_repdistiller_names_and_unsupported_models():
    assert [resolve_name(n) for n in ("ResNet50", "MobileNetV2", "ShuffleV2", "wrn_40_2")] == [
        "resnet50", "mobilenetv2_half", "shufflenetv2", "wrn_40_2"]
    with pytest.raises(ConversionError, match="no PyTorch conversion for model 'densenet40_12'"):
        from_torch("densenet40_12", 10, {"conv1.weight": np.zeros((1, 1, 1, 1))})


def _save_repdistiller_file(path, state):
    """RepDistiller's train_teacher.py layout: {'opt', 'model', 'optimizer'}, from a DataParallel
    model (keys prefixed 'module.'), with BatchNorm's num_batches_tracked."""
    torch.save({"opt": argparse.Namespace(model="resnet8", epochs=240), "epoch": 240,
                "model": {f"module.{k}": v for k, v in state.items()}, "optimizer": {}}, path)


def test_pth_files_load_as_teacher_variables(tmp_path, resnet8):
    model, state = resnet8
    want = from_torch("resnet8", 100, state)
    _save_repdistiller_file(tmp_path / "ckpt_epoch_240.pth", state)
    torch.save(state, tmp_path / "bare.pt")  # torchvision's layout: a bare state_dict
    for name in ("ckpt_epoch_240.pth", "bare.pt"):
        got = load_teacher_variables(str(tmp_path / name), "resnet8", 100)
        jax.tree.map(np.testing.assert_array_equal, got, want)
    with pytest.raises(FileNotFoundError, match="missing PyTorch checkpoint: .*nope.pth"):
        load_teacher_variables(str(tmp_path / "nope.pth"), "resnet8", 100)
    (tmp_path / "bad.pth").write_bytes(b"not a torch file")
    with pytest.raises(ConversionError, match="cannot read PyTorch checkpoint .*bad.pth"):
        load_teacher_variables(str(tmp_path / "bad.pth"), "resnet8", 100)


def test_get_teacher_converts_a_pth_on_load(tmp_path):
    """config.teacher.checkpoint = a .pth: the teacher's logits on the normalized test images and
    its reported test accuracy are the PyTorch model's."""
    model = randomize(repdistiller.build("resnet8", 10), 5, 32)
    path = tmp_path / "resnet8.pth"
    _save_repdistiller_file(path, model.state_dict())
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (16, 32, 32, 3), dtype=np.uint8)
    info = DatasetInfo("fake_rgb", 10, (32, 32, 3), (0.5, 0.4, 0.3), (0.25, 0.2, 0.3))
    x = (images / 255.0 - np.array(info.mean)) / np.array(info.std)
    with torch.no_grad():
        want = model(torch.tensor(x.transpose(0, 3, 1, 2), dtype=torch.float32)).numpy()
    labels = want.argmax(1).astype(np.int32)
    labels[:4] = (labels[:4] + 1) % 10  # 12 of 16 right
    split = Split(images, labels, np.arange(16, dtype=np.int32))
    config = tiny.override(tiny.get_config("kd"), **{
        "teacher.name": "resnet8", "teacher.kwargs": {}, "teacher.checkpoint": str(path),
        "teacher.cache_logits": False, "data.eval_batch_size": 16})
    teacher, summary = experiment.get_teacher(config, str(tmp_path / "run"),
                                              {"train": split, "test": split}, info,
                                              mesh_lib.make_mesh())
    assert summary["source"] == str(path)
    assert summary["test_accuracy"] == pytest.approx(12 / 16)
    got = kdjax_logits("resnet8", 10, teacher.variables, x.transpose(0, 3, 1, 2))
    assert float(np.max(np.abs(got - want))) <= TOL


def test_convert_teacher_writes_a_loadable_checkpoint(tmp_path, resnet8):
    _, state = resnet8
    _save_repdistiller_file(tmp_path / "t.pth", state)
    out = tmp_path / "teacher"
    cmd = [sys.executable, "-m", "launch.convert_teacher", "--model=resnet8", "--num_classes=100",
           f"--torch={tmp_path / 't.pth'}", f"--out={out}"]
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (out / "checkpoints" / "0").is_dir()
    jax.tree.map(np.testing.assert_array_equal, ckpt_lib.load_variables(str(out)),
                 from_torch("resnet8", 100, state))
    with pytest.raises(FileExistsError, match="already holds a checkpoint"):
        convert_teacher.convert("resnet8", 100, str(tmp_path / "t.pth"), str(out))
