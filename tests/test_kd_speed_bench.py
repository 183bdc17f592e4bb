"""bench/kd_speed.py: the PyTorch peers match kdjax's models, and the bench runs end to end."""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest
from scipy import stats

torch = pytest.importorskip("torch")  # the optional `torch` extra

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench import kd_speed, torch_models  # noqa: E402


@pytest.mark.parametrize("pair", list(kd_speed.PAIRS))
def test_pairs_have_equal_parameter_counts(pair):
    jax_counts = kd_speed.jax_param_count(pair)
    torch_counts = kd_speed.torch_param_count(pair)
    assert jax_counts == torch_counts
    assert jax_counts[0] > jax_counts[1] > 0  # teacher bigger than student


def test_known_sizes_and_outputs():
    # Independent reference: RepDistiller's resnet20 (CIFAR-100) has 0.28 M parameters,
    # counted by hand: stem 16*27 + BN 32; 9 blocks; head 64*100 + 100.
    def block(cin, cout, down):
        n = 9 * cin * cout + 9 * cout * cout + 4 * cout
        return n + (cin * cout + 2 * cout if down else 0)
    expected = 16 * 27 + 32 + 100 * 64 + 100
    for cin, cout, down in [(16, 16, False)] * 3 + [(16, 32, True)] + [(32, 32, False)] * 2 + \
            [(32, 64, True)] + [(64, 64, False)] * 2:
        expected += block(cin, cout, down)
    model = torch_models.get_model("resnet20", 100)
    assert torch_models.num_params(model) == expected
    logits, features = model(torch.zeros(2, 3, 32, 32))
    assert logits.shape == (2, 100) and features.shape == (2, 64)
    cnn = torch_models.get_model("cnn_small", 10, widths=(8, 16), hidden=32)
    logits, features = cnn(torch.zeros(2, 1, 28, 28))
    assert logits.shape == (2, 10) and features.shape == (2, 32)
    with pytest.raises(ValueError, match="no PyTorch peer"):
        torch_models.get_model("vgg13", 10)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="unknown pair"):
        kd_speed.parse_args(["--pairs=nope"])
    with pytest.raises(ValueError, match="unknown variant"):
        kd_speed.parse_args(["--variants=nope"])


@pytest.mark.slow  # two framework subprocesses per cell: ~2 min on the shared 2-core machine
def test_quick_run_on_the_cnn_pair(tmp_path):
    results = kd_speed.main(["--quick", "--pairs=cnn", "--no-pipeline",
                             f"--json={tmp_path / 'r.json'}"])
    frameworks = {(r["framework"], r["cached"]) for r in results}
    assert frameworks == {("torch", False), ("kdjax", False), ("torch", True), ("kdjax", True)}
    for r in results:
        assert len(r["times"]) == 1 and r["times"][0] > 0
        assert tuple(r["params"]) == kd_speed.jax_param_count("cnn")
    assert (tmp_path / "r.json").exists()


def test_paired_ratio_is_the_geometric_mean_of_window_ratios():
    mean, lo, hi, n = kd_speed.paired_ratio([2.0, 4.0, 8.0], [1.0, 2.0, 4.0])
    assert (round(mean, 12), round(lo, 12), round(hi, 12), n) == (2.0, 2.0, 2.0, 3)
    t_torch, t_kdjax = [1.0, 1.2, 0.9, 1.1], [1.1, 1.0, 1.0, 0.9]
    logs = np.log(t_torch) - np.log(t_kdjax)
    half = stats.t.ppf(0.975, 3) * logs.std(ddof=1) / 2
    mean, lo, hi, n = kd_speed.paired_ratio(t_torch, t_kdjax)
    np.testing.assert_allclose([mean, lo, hi], np.exp([logs.mean(), logs.mean() - half,
                                                       logs.mean() + half]), rtol=1e-12)


FAKE_CHILD = r'''
import json, sys, time
name, repeats = sys.argv[1], int(sys.argv[2])
spans = []
time.sleep(0.3 if name == "a" else 0.0)   # warm-up of different lengths
for _ in range(repeats):
    print("READY", flush=True)
    sys.stdin.readline()
    start = time.time(); time.sleep(0.05); spans.append((start, time.time()))
print("RESULT " + json.dumps({"framework": name, "times": [e - s for s, e in spans],
                              "spans": spans}))
'''


def test_interleaved_children_take_turns_window_by_window(tmp_path, monkeypatch):
    script = tmp_path / "child.py"
    script.write_text(FAKE_CHILD)
    args = kd_speed.parse_args(["--repeats=3", "--batch=4"])

    def command(kind, pair, cached, variant, devices, args, lockstep=False):
        assert lockstep
        return [sys.executable, str(script), kind, str(args.repeats)], {"XLA_FLAGS": ""}

    monkeypatch.setattr(kd_speed, "_child_command", command)
    a, b = kd_speed.run_interleaved([("a", "p", False, "", 1), ("b", "p", False, "", 1)], args)
    spans = sorted([(s, e, "a") for s, e in a["spans"]] + [(s, e, "b") for s, e in b["spans"]])
    assert [who for _, _, who in spans] == ["a", "b"] * 3       # a's window i, then b's
    assert all(e <= s2 for (_, e, _), (s2, _, _) in zip(spans, spans[1:]))  # never overlapping


def test_interleaved_run_reports_the_child_that_failed(tmp_path, monkeypatch):
    ok, broken = tmp_path / "ok.py", tmp_path / "broken.py"
    ok.write_text(FAKE_CHILD)
    broken.write_text("import sys\nsys.exit('kdjax child: out of memory')\n")
    args = kd_speed.parse_args(["--repeats=2", "--batch=4"])

    def command(kind, pair, cached, variant, devices, args, lockstep=False):
        script = broken if kind == "b" else ok
        return [sys.executable, str(script), kind, str(args.repeats)], {"XLA_FLAGS": ""}

    monkeypatch.setattr(kd_speed, "_child_command", command)
    with pytest.raises(SystemExit, match="out of memory"):
        kd_speed.run_interleaved([("a", "p", False, "", 1), ("b", "p", False, "", 1)], args)


def test_torch_avx2_child_runs_with_avx2_kernels(monkeypatch):
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    monkeypatch.delenv("ATEN_CPU_CAPABILITY", raising=False)
    args = kd_speed.parse_args(["--torch-avx2"])
    _, env = kd_speed._child_command("torch", "cnn", False, "", 1, args)
    assert "ONEDNN_MAX_CPU_ISA" not in env and "ATEN_CPU_CAPABILITY" not in env
    cmd, env = kd_speed._child_command("torch_avx2", "cnn", False, "", 1, args)
    assert env["ONEDNN_MAX_CPU_ISA"] == "AVX2" and env["ATEN_CPU_CAPABILITY"] == "avx2"
    assert "--child=torch_avx2,cnn,0," in cmd
    if "avx2" in open("/proc/cpuinfo").read():  # the cap holds in a child started with env
        import subprocess
        out = subprocess.run([sys.executable, "-c", "import torch; "
                              "print(torch.backends.cpu.get_cpu_capability())"],
                             env=env, capture_output=True, text=True, check=True)
        assert out.stdout.strip() == "AVX2"


def test_paired_ratio_against_each_pytorch_kind():
    common = dict(pair="p", cached=False, devices=1, round=0)
    results = [dict(framework="torch", variant="", times=[2.0, 2.2], **common),
               dict(framework="torch_avx2", variant="", times=[3.0, 3.3], **common),
               dict(framework="kdjax", variant="default", times=[2.5, 2.4], **common)]
    for reference, t_ref in (("torch", [2.0, 2.2]), ("torch_avx2", [3.0, 3.3])):
        mean, lo, hi, n = kd_speed.paired_ratio(t_ref, [2.5, 2.4])
        assert kd_speed._fmt_paired(results, "default", "p", False, reference=reference) == \
            f"{mean:.2f}x [{lo:.2f}, {hi:.2f}], n={n}"
