"""Metric writers: JSONL in the workdir and TensorBoard event files (process 0 only).

Both work on a local workdir and on `gs://` (`kdjax.storage`, the `gcp` extra):
`metrics.jsonl` through `storage.JsonlWriter`; TensorBoard events are always written by
tensorboardX to a local folder, which for a bucket is a temporary one whose event files are
copied up whole at most every `flush_secs`, at `flush()` (the train loop calls it at every
checkpoint) and at `close()`. (tensorboardX's own gs:// writer re-uploads the same way but
needs google-cloud-storage and uploads once more at interpreter exit from an atexit hook.)
"""
from __future__ import annotations

import os
import shutil
import tempfile
import time
from typing import Any, Mapping

import jax
import numpy as np

from kdjax import storage


class MetricWriter:
    """Writes scalars to `<workdir>/metrics.jsonl` and TensorBoard events in `<workdir>/tb`."""

    def __init__(self, workdir: str, *, tensorboard: bool = True, resume_step: int = 0,
                 flush_secs: float = 30.0):
        """`resume_step`: drop the lines a killed run logged after its last checkpoint, so that
        every step is logged once and the file equals an uninterrupted run's (but timings)."""
        self.enabled = jax.process_index() == 0
        self._tb = None
        if not self.enabled:
            return
        storage.makedirs(workdir)
        self._jsonl = storage.JsonlWriter(os.path.join(workdir, "metrics.jsonl"),
                                          keep=lambda r: r.get("step", 0) <= resume_step,
                                          flush_secs=flush_secs)
        if tensorboard:
            self._tb = _TensorBoard(os.path.join(workdir, "tb"), flush_secs)

    def write(self, step: int, scalars: Mapping[str, Any]) -> None:
        if not self.enabled:
            return
        clean = {k: float(np.asarray(v)) for k, v in scalars.items()}
        self._jsonl.write({"step": int(step), "time": time.time(), **clean})
        if self._tb is not None:
            for k, v in clean.items():
                self._tb.add_scalar(k, v, int(step))

    def flush(self) -> None:
        """Make every line so far durable (on a bucket: upload now); call at checkpoints."""
        if self.enabled:
            self._jsonl.flush()
            if self._tb is not None:
                self._tb.flush()

    def close(self) -> None:
        if self.enabled:
            self._jsonl.close()
            if self._tb is not None:
                self._tb.close()


class _TensorBoard:
    """tensorboardX scalars in `logdir`: directly for a local folder; for a bucket, in a local
    temporary folder whose changed event files are copied to `logdir` on `flush()`/`close()`
    and at most every `flush_secs` while writing."""

    def __init__(self, logdir: str, flush_secs: float):
        from tensorboardX import SummaryWriter
        self._remote = logdir if storage.is_remote(logdir) else None
        self._local = tempfile.mkdtemp(prefix="kdjax-tb-") if self._remote else logdir
        self._writer = SummaryWriter(self._local, flush_secs=flush_secs)
        self._flush_secs, self._last = flush_secs, time.monotonic()
        self._uploaded: dict[str, int] = {}

    def add_scalar(self, tag: str, value: float, step: int) -> None:
        self._writer.add_scalar(tag, value, step)
        if self._remote and time.monotonic() - self._last >= self._flush_secs:
            self.flush()

    def flush(self) -> None:
        self._writer.flush()
        self._upload()

    def close(self) -> None:
        self._writer.close()
        self._upload()
        if self._remote:
            shutil.rmtree(self._local, ignore_errors=True)

    def _upload(self) -> None:
        if not self._remote:
            return
        for name in sorted(os.listdir(self._local)):
            local = os.path.join(self._local, name)
            size = os.path.getsize(local)
            if os.path.isfile(local) and self._uploaded.get(name) != size:
                storage.copy(local, f"{self._remote.rstrip('/')}/{name}")
                self._uploaded[name] = size
        self._last = time.monotonic()


def summarize(sums: Mapping[str, Any], prefix: str) -> dict[str, float]:
    """Turn summed metrics (loss_sum, correct, count) into means."""
    count = max(float(sums["count"]), 1.0)
    out = {f"{prefix}/loss": float(sums["loss_sum"]) / count,
           f"{prefix}/accuracy": float(sums["correct"]) / count}
    for k, v in sums.items():
        if k not in ("loss_sum", "correct", "count"):
            out[f"{prefix}/{k}"] = float(v)
    return out
