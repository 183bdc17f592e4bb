"""Per-op time of a compiled XLA:CPU program, joined to its HLO (docs/performance.md).

    from bench import op_profile
    op_profile.enable()                     # before JAX starts its CPU backend
    ...
    print(op_profile.table(compiled, lambda: compiled(*args), steps=3))

`enable` adds `--xla_cpu_enable_xprof_traceme=true` to XLA_FLAGS (XLA:CPU then emits one trace
event per thunk, named after its HLO instruction). `table` runs `call` `steps` times under
`jax.profiler.trace`, reads the Perfetto trace, and sums op time per step by category: each
convolution by its role (forward, input gradient, weight gradient: see `_conv_role`) and output
shape, each fusion by kind and name stem
(`transpose_copy_fusion`, `multiply_bitcast_fusion`, ...), a YNNPACK fusion by the convolution
or dot inside it, everything else by opcode.
"""
from __future__ import annotations

import collections
import glob
import gzip
import json
import os
import re
import tempfile

TRACEME_FLAG = "--xla_cpu_enable_xprof_traceme=true"


def enable(environ=os.environ) -> None:
    flags = environ.get("XLA_FLAGS", "")
    if TRACEME_FLAG not in flags:
        environ["XLA_FLAGS"] = f"{flags} {TRACEME_FLAG}".strip()


def op_times(call, steps: int) -> dict[str, float]:
    """ms per step of every trace event of `steps` calls of `call` (already compiled, warm)."""
    import jax

    with tempfile.TemporaryDirectory() as log_dir:
        with jax.profiler.trace(log_dir, create_perfetto_trace=True):
            for _ in range(steps):
                jax.block_until_ready(call())
        path = glob.glob(os.path.join(log_dir, "**", "perfetto_trace.json.gz"), recursive=True)[0]
        with gzip.open(path) as f:
            events = json.load(f)
    events = events["traceEvents"] if isinstance(events, dict) else events
    total = collections.Counter()
    for e in events:
        if e.get("ph") == "X":
            total[e["name"]] += e["dur"] / 1e3 / steps
    return dict(total)


def _shape(line: str) -> str:
    m = re.search(r"= (\w+\[[^\]]*\])", line)
    return m.group(1) if m else "?"


def _window(line: str) -> str:
    m = re.search(r"window=\{([^}]*)\}", line)
    return m.group(1) if m else ""


def _conv_role(line: str) -> str:
    """weight gradient (a window larger than the output: the incoming gradient slides over the
    input), input gradient (autodiff's transpose of a forward convolution), or forward."""
    size = re.search(r"size=(\d+)x(\d+)", line)
    dims = re.search(r"= \w+\[(\d+),(\d+),(\d+),(\d+)\]", line)
    if size and dims and int(size[1]) * int(size[2]) > int(dims[2]) * int(dims[3]):
        return "weight gradient"
    op_name = re.search(r'op_name="([^"]*)"', line)
    return "input gradient" if op_name and "transpose(" in op_name.group(1) else "forward"


def categorize(hlo_text: str, times: dict[str, float]) -> collections.Counter:
    """ms per step by category (see the module docstring) of the ENTRY computation's ops."""
    bodies = {m.group(1): m.group(2) for m in
              re.finditer(r"\n%?([\w.\-]+) [^\n]*\{\n(.*?)\n\}", hlo_text, re.S)}
    entry = hlo_text[hlo_text.index("\nENTRY"):]
    out = collections.Counter()
    for line in entry.splitlines():
        m = re.match(r"\s*(?:ROOT )?%?([\w.\-]+) = \S+ ([\w\-]+)\(", line)
        if not m or m.group(1) not in times:
            continue
        name, opcode = m.groups()
        if opcode == "convolution":
            key = f"convolution, {_conv_role(line)} {_shape(line)} {_window(line)}"
        elif opcode == "fusion":
            calls = re.search(r"calls=%?([\w.\-]+)", line)
            body = bodies.get(calls.group(1), "") if calls else ""
            inner = next((l for l in body.splitlines() if " convolution(" in l), None)
            if "ynn_fusion" in name and inner is not None:
                key = f"YNNPACK convolution, {_conv_role(inner)} {_shape(inner)} {_window(inner)}"
            else:
                kind = re.search(r"kind=(\w+)", line)
                stem = re.sub(r"[.]\d+$", "", name)
                key = f"fusion {kind.group(1) if kind else '?'} {stem}"
        else:
            key = opcode
        out[key] += times[name]
    return out


def table(compiled, call, steps: int = 3, top: int = 30) -> str:
    """A markdown table of `categorize` for the compiled program `compiled` run by `call`."""
    by_category = categorize(compiled.as_text(), op_times(call, steps))
    lines = [f"op time per step: {sum(by_category.values()):.1f} ms (mean of {steps} steps)",
             "| ms | share | category |", "|---|---|---|"]
    total = sum(by_category.values()) or 1.0
    for key, ms in by_category.most_common(top):
        lines.append(f"| {ms:.1f} | {100 * ms / total:.1f}% | {key} |")
    return "\n".join(lines)
