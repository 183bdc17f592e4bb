"""Metric writers: JSONL in the workdir and TensorBoard event files (process 0 only)."""
from __future__ import annotations

import json
import os
import time
from typing import Any, Mapping

import jax
import numpy as np


class MetricWriter:
    """Writes scalars to `<workdir>/metrics.jsonl` and TensorBoard events in `<workdir>/tb`."""

    def __init__(self, workdir: str, *, tensorboard: bool = True, resume_step: int = 0):
        """`resume_step`: drop the lines a killed run logged after its last checkpoint, so that
        every step is logged once and the file equals an uninterrupted run's (but timings)."""
        self.enabled = jax.process_index() == 0
        self._tb = None
        if not self.enabled:
            return
        os.makedirs(workdir, exist_ok=True)
        path = os.path.join(workdir, "metrics.jsonl")
        _truncate_after(path, resume_step)
        self._jsonl = open(path, "a")
        if tensorboard:
            from tensorboardX import SummaryWriter
            self._tb = SummaryWriter(os.path.join(workdir, "tb"))

    def write(self, step: int, scalars: Mapping[str, Any]) -> None:
        if not self.enabled:
            return
        clean = {k: float(np.asarray(v)) for k, v in scalars.items()}
        self._jsonl.write(json.dumps({"step": int(step), "time": time.time(), **clean}) + "\n")
        self._jsonl.flush()
        if self._tb is not None:
            for k, v in clean.items():
                self._tb.add_scalar(k, v, int(step))

    def close(self) -> None:
        if self.enabled:
            self._jsonl.close()
            if self._tb is not None:
                self._tb.close()


def _truncate_after(path: str, step: int) -> None:
    """Keep the lines of a JSONL metrics file with `step` <= `step` (a torn last line goes)."""
    if not os.path.exists(path):
        return
    keep = []
    with open(path) as f:
        for line in f:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if record.get("step", 0) <= step:
                keep.append(line if line.endswith("\n") else line + "\n")
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.writelines(keep)
    os.replace(tmp, path)


def summarize(sums: Mapping[str, Any], prefix: str) -> dict[str, float]:
    """Turn summed metrics (loss_sum, correct, count) into means."""
    count = max(float(sums["count"]), 1.0)
    out = {f"{prefix}/loss": float(sums["loss_sum"]) / count,
           f"{prefix}/accuracy": float(sums["correct"]) / count}
    for k, v in sums.items():
        if k not in ("loss_sum", "correct", "count"):
            out[f"{prefix}/{k}"] = float(v)
    return out
