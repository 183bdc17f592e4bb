"""bench/perf_attribution.py: `perf script` output parsed and each sample put in one category."""
from __future__ import annotations

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench import perf_attribution  # noqa: E402

# `perf script -F time,ip,sym,dso` output in its real layout (perf 6.1): one block per sample,
# the innermost frame first.
SCRIPT = """\
100.000500: 
\tffffffff8225fc27 exc_page_fault ([kernel.kallsyms])
\tffffffff81000c82 asm_exc_page_fault ([kernel.kallsyms])
\t         1e2bc00 xla::cpu::KernelThunk::Execute (/x/libjax_common.so)

100.001500: 
\t    7f00deadbeef jit_avx512_common_gemm_f32_xbyak_gemm (/tmp/perf-1.map)
\t         1de39 dnnl_sgemm (/x/libjax_common.so)

100.002500: 
\t    7f00deadbef0 [unknown] ([unknown])
\t         1de3a xla::cpu::KernelThunk::ExecuteKernel (/x/libjax_common.so)

100.003500: 
\t         1de3b void Eigen::internal::gemm_pack_colmajor_block<float, long, Eigen::TensorImagePatchOp<x> >::operator() (/x/libjax_common.so)

100.004500: 
\t         20d07 _int_malloc (/usr/lib/x86_64-linux-gnu/libc.so.6)

100.005500: 
\t         20d08 PyEval_EvalFrameDefault (/usr/bin/python3.11)

100.006500: 
\t    7f00deadbef1 jit_brgemm_kernel_t (/tmp/perf-1.map)

200.000000: 
\t    7f00deadbeef jit_avx512_common_gemm_f32_xbyak_gemm (/tmp/perf-1.map)
"""


def test_parse_keeps_time_and_frames_innermost_first():
    samples = perf_attribution.parse(SCRIPT)
    assert len(samples) == 8
    time, frames = samples[0]
    assert time == 100.0005
    assert frames == ["[k] exc_page_fault", "[k] asm_exc_page_fault",
                      "xla::cpu::KernelThunk::Execute"]
    assert samples[2][1][0] == "[unknown]"


def test_each_sample_in_the_window_lands_in_one_category():
    counts = perf_attribution.categorize(perf_attribution.parse(SCRIPT), 100.0, 101.0)
    assert sum(counts.values()) == 7  # the sample at t = 200 s is outside the timed window
    assert counts == {
        "kernel: page faults, zeroing, memory accounting": 1,
        "oneDNN JIT sgemm, AVX-512 (xbyak_gemm)": 1,
        "XLA fusion kernels (generated code)": 1,
        "Eigen im2col packing (TensorImagePatchOp)": 1,
        "libc malloc / free / memset / memcpy": 1,
        "everything else": 1,
        "oneDNN JIT direct convolution (brgemm; kdjax.platform.onednn_conv)": 1,
    }
