"""Deterministic, per-process sharded batch iteration over a split.

Every process computes the SAME global permutation from (seed, epoch) and reads only its own
contiguous 1/process_count slice of each global batch, so the processes' local batches
together form the global batch (assembled into one global jax.Array by `to_global`).
Without drop_remainder the last global batch is padded to full size: padding rows have
mask 0, id -1, label 0 and a zero image, so evaluation sees every example exactly once.
"""
from __future__ import annotations

import math
import queue
import threading
from typing import Any, Iterator, Optional

import numpy as np

Batch = dict[str, np.ndarray]


def num_batches(num_examples: int, batch_size: int, drop_remainder: bool = False) -> int:
    """Global batches per epoch."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if drop_remainder:
        return num_examples // batch_size
    return math.ceil(num_examples / batch_size)


def epoch_order(num_examples: int, seed: int, epoch: int, shuffle: bool = True) -> np.ndarray:
    """The example order of one epoch: a permutation that depends only on (seed, epoch)."""
    if not shuffle:
        return np.arange(num_examples, dtype=np.int64)
    return np.random.default_rng([int(seed), int(epoch)]).permutation(num_examples)


def iterate_batches(split, batch_size: int, *, seed: int = 0, epoch: int = 0,
                    shuffle: bool = True, drop_remainder: bool = False,
                    process_index: int = 0, process_count: int = 1,
                    start_batch: int = 0) -> Iterator[Batch]:
    """Yields this process's part of each global batch: {'image','label','id','mask'}.

    batch_size is the GLOBAL batch size; each process gets batch_size // process_count rows.
    `split` is anything with len(), `.ids` and `.take(positions) -> (images, labels)`
    (a `Split` or a lazy TFDS split). `start_batch` skips the first global batches of the
    epoch without reading them (resuming mid-epoch yields exactly the remaining batches).
    """
    if process_count < 1 or not 0 <= process_index < process_count:
        raise ValueError(f"bad process_index={process_index} for process_count={process_count}")
    if batch_size % process_count:
        raise ValueError(f"global batch_size {batch_size} is not divisible by "
                         f"process_count {process_count}")
    n = len(split)
    local = batch_size // process_count
    order = epoch_order(n, seed, epoch, shuffle)
    ids_all = np.asarray(split.ids)
    if start_batch < 0:
        raise ValueError(f"start_batch must be >= 0, got {start_batch}")
    for b in range(start_batch, num_batches(n, batch_size, drop_remainder)):
        start = b * batch_size + process_index * local
        pos = order[start:min(start + local, n)]  # may be short (or empty) in the last batch
        images, labels = split.take(pos)
        valid = pos.size
        if valid < local:
            pad = local - valid
            images = np.concatenate([images, np.zeros((pad,) + images.shape[1:], images.dtype)])
            labels = np.concatenate([labels, np.zeros((pad,), labels.dtype)])
        ids = np.full((local,), -1, np.int32)
        ids[:valid] = ids_all[pos]
        mask = np.zeros((local,), np.float32)
        mask[:valid] = 1.0
        yield {"image": images, "label": labels.astype(np.int32), "id": ids, "mask": mask}


def to_global(batch: Batch, sharding) -> dict[str, Any]:
    """Assembles per-process local batches into global jax.Arrays with `sharding`.

    `sharding` is e.g. NamedSharding(mesh, PartitionSpec('data')); every process passes its
    own local batch (jax.make_array_from_process_local_data).
    """
    import jax  # lazy
    return {k: jax.make_array_from_process_local_data(sharding, v) for k, v in batch.items()}


_END = object()


class prefetch:  # pylint: disable=invalid-name
    """Runs `iterator` in a background thread, keeping up to `size` items ready.

    Exceptions in the producer are re-raised in the consumer. Use as an iterator; `close()`
    (or exhausting it) stops the thread.
    """

    def __init__(self, iterator, size: int = 2):
        if size < 1:
            raise ValueError(f"prefetch size must be >= 1, got {size}")
        self._queue: queue.Queue = queue.Queue(maxsize=size)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(iter(iterator),), daemon=True)
        self._thread.start()

    def _put(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self, it) -> None:
        try:
            for item in it:
                if not self._put(item):
                    return
            self._put(_END)
        except BaseException as e:  # pylint: disable=broad-except
            self._put(e)

    def __iter__(self):
        return self

    def __next__(self):
        if self._stop.is_set() and self._queue.empty():
            raise StopIteration
        item = self._queue.get()
        if item is _END:
            self._stop.set()
            raise StopIteration
        if isinstance(item, BaseException):
            self._stop.set()
            raise item
        return item

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=1.0)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> Optional[bool]:
        self.close()
        return None
