"""bench/kd_speed_accel.py: peak lookup, argument checks, and the FLOP count its %-of-peak uses."""
from __future__ import annotations

import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench import kd_speed_accel  # noqa: E402


def test_chip_peak_lookup():
    assert kd_speed_accel.chip_peak("NVIDIA H100 80GB HBM3", "bf16") == 989.4
    assert kd_speed_accel.chip_peak("NVIDIA H100 PCIe", "fp32") == 378.0
    assert kd_speed_accel.chip_peak("NVIDIA A100-SXM4-40GB", "bf16") == 312.0
    assert kd_speed_accel.chip_peak("cpu", "bf16") is None


def test_bad_arguments_raise():
    for flag, match in [("--pairs=nope", "unknown pair"), ("--precisions=fp8", "unknown precision"),
                        ("--torch_modes=max", "unknown torch mode")]:
        with pytest.raises(ValueError, match=match):
            kd_speed_accel.parse_args([flag])


@pytest.mark.slow  # ~25 s on 2 cores (2026-12-03): `make test-slow`
def test_kdjax_cell_counts_the_step_flops():
    # Independent reference: the cnn pair's multiply-adds counted by hand (28x28x1 input,
    # 3x3 convs each followed by a 2x2 max pool, hidden dense, head), a KD step = teacher
    # forward + student forward and backward (~3x forward). XLA counts only in-image
    # kernel taps and skips the first conv's input gradient, so it lands a little under.
    def forward_macs(widths, hidden):
        (w1, w2), side = widths, 28
        macs = side * side * w1 * 9 * 1 + (side // 2) ** 2 * w2 * 9 * w1
        macs += (side // 4) ** 2 * w2 * hidden + hidden * 10
        return macs
    spec = kd_speed_accel.PAIRS["cnn"]
    teacher = forward_macs(spec["teacher_kw"]["widths"], spec["teacher_kw"]["hidden"])
    student = forward_macs(spec["student_kw"]["widths"], spec["student_kw"]["hidden"])
    batch = 8
    expected = 2 * batch * (teacher + 3 * student)
    res = kd_speed_accel.measure_kdjax("cnn", "fp32", batch, steps=1, repeats=1)
    assert 0.8 < res["flops_per_step"] / expected < 1.05, (res["flops_per_step"], expected)
    assert len(res["times"]) == 1 and res["times"][0] > 0
