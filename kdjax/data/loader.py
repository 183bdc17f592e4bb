"""The grain input pipeline: decoding and augmentation in worker processes, per-host shards.

Batches are the same as `kdjax.data.pipeline.iterate_batches` computes: every process draws
the SAME global permutation of the split from (seed, epoch) (`pipeline.epoch_order`) and
reads only its own contiguous `batch_size // process_count` rows of each global batch; the
last global batch is padded (mask 0, id -1, label 0, zero image) unless drop_remainder. So a
host batch is a pure function of (seed, epoch, batch index, process index) — independent of
the number of workers and of where a run was resumed — and an example's augmentation draws
come from (seed, epoch, id) only (`transforms.example_rng`).

The pipeline is a grain `MapDataset`: range(rows) -> `_Rows` (read, decode, augment one
example) -> batch(local batch) -> `to_iter_dataset` -> `mp_prefetch(worker_count)`. grain
slices it across workers by whole batches, so worker w makes batches w, w+W, ... and they are
returned in order.

`GrainLoader(...).iterator(state)` spans epochs; its `get_state()` is a small JSON-able dict
({'epoch', 'batch'} plus a fingerprint of the loader) to checkpoint with the train state;
`set_state` (or `iterator(state)`) resumes at exactly the next batch an uninterrupted run
would have read. `iterate_batches` has the contract of `pipeline.iterate_batches` (plus
`augment`, `worker_count`) for one epoch.
"""
from __future__ import annotations

import functools
import os
from typing import Any, Iterator, Optional

import numpy as np

from kdjax.data.lazy import LazySplit
from kdjax.data.pipeline import epoch_order, num_batches
from kdjax.data.transforms import example_rng, pad_crop_flip

Batch = dict[str, np.ndarray]


def default_worker_count() -> int:
    """$KDJAX_DATA_WORKERS if set, else the CPU cores this process may use, at most 64 (a
    TPU v4 host has 240 vCPUs; ~3 ms of CPU per ImageNet training image, so 64 workers make
    ~20k images/s)."""
    env = os.environ.get("KDJAX_DATA_WORKERS")
    if env:
        return int(env)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(64, cores or 1))


def _watch_parent(parent: int, worker_index: int, worker_count: int) -> None:
    """grain's worker_init_fn: a data worker ends when the training process dies."""
    del worker_index, worker_count
    from kdjax import children  # lazy
    children.watch_parent(parent)


def host_augments(split) -> bool:
    """True when `split`'s training augmentation runs in the loader (lazy/record splits), so the
    train step must not augment again; in-memory `Split`s are augmented on the device."""
    return isinstance(split, LazySplit)


class _Rows:
    """Row r of this process's stream (across epochs) -> one example
    {'image', 'label', 'id', 'mask'}: r = epoch * rows_per_epoch + batch * local + k."""

    def __init__(self, split, batch_size: int, seed: int, shuffle: bool, drop_remainder: bool,
                 process_index: int, process_count: int, augment: bool):
        self.split, self.batch_size, self.seed = split, batch_size, seed
        self.shuffle, self.augment = shuffle, augment
        self.n = len(split)
        self.local = batch_size // process_count
        self.offset = process_index * self.local
        self.batches_per_epoch = num_batches(self.n, batch_size, drop_remainder)
        self.rows_per_epoch = self.batches_per_epoch * self.local
        if isinstance(split, LazySplit):
            self.shape, self.dtype = tuple(split.image_shape), np.dtype(np.uint8)
        else:
            self.shape, self.dtype = tuple(split.images.shape[1:]), split.images.dtype
        self._order: tuple[int, Optional[np.ndarray]] = (-1, None)

    def order(self, epoch: int) -> np.ndarray:
        if self._order[0] != epoch:
            self._order = (epoch, epoch_order(self.n, self.seed, epoch, self.shuffle))
        return self._order[1]

    def __call__(self, row: int) -> dict[str, np.ndarray]:
        epoch, rem = divmod(int(row), self.rows_per_epoch)
        b, k = divmod(rem, self.local)
        g = b * self.batch_size + self.offset + k
        if g >= self.n:  # padding row of the last global batch
            return {"image": np.zeros(self.shape, self.dtype), "label": np.int32(0),
                    "id": np.int32(-1), "mask": np.float32(0.0)}
        pos = int(self.order(epoch)[g])
        ex_id = int(self.split.ids[pos])
        rng = example_rng(self.seed, epoch, ex_id) if self.augment else None
        if isinstance(self.split, LazySplit):
            image = self.split.image(pos, rng, self.augment)
        else:
            image = self.split.images[pos]
            if self.augment and image.ndim == 3:
                image = pad_crop_flip(rng, image)
        return {"image": image, "label": np.int32(self.split.labels[pos]),
                "id": np.int32(ex_id), "mask": np.float32(1.0)}


class GrainLoader:
    """Host batches of `split` for epochs [0, num_epochs) (None: endless), grain-parallel.

    batch_size is GLOBAL; each process gets batch_size // process_count rows (process_index
    / process_count default to jax.process_index() / jax.process_count()). augment: the
    split's training recipe (LazySplit) or pad-4 crop + flip (in-memory images); else the
    evaluation transform. worker_count 0 decodes in this process (read_threads threads).
    """

    def __init__(self, split, batch_size: int, *, seed: int = 0, shuffle: bool = True,
                 drop_remainder: bool = False, augment: bool = False,
                 process_index: Optional[int] = None, process_count: Optional[int] = None,
                 worker_count: Optional[int] = None, read_threads: int = 1,
                 worker_buffer_size: int = 2, num_epochs: Optional[int] = None):
        if process_index is None or process_count is None:
            import jax  # lazy
            process_index = jax.process_index() if process_index is None else process_index
            process_count = jax.process_count() if process_count is None else process_count
        if process_count < 1 or not 0 <= process_index < process_count:
            raise ValueError(f"bad process_index={process_index} for process_count="
                             f"{process_count}")
        if batch_size % process_count:
            raise ValueError(f"global batch_size {batch_size} is not divisible by "
                             f"process_count {process_count}")
        if len(split) == 0:
            raise ValueError("cannot load batches of an empty split")
        self.rows = _Rows(split, batch_size, seed, shuffle, drop_remainder, process_index,
                          process_count, augment)
        if self.rows.batches_per_epoch == 0:
            raise ValueError(f"a split of {len(split)} examples has no full batch of "
                             f"{batch_size} (drop_remainder=True)")
        self.worker_count = default_worker_count() if worker_count is None else worker_count
        self.read_threads, self.worker_buffer_size = read_threads, worker_buffer_size
        self.num_epochs = num_epochs
        self.fingerprint = {"num_examples": len(split), "batch_size": batch_size, "seed": seed,
                            "shuffle": shuffle, "drop_remainder": drop_remainder,
                            "augment": augment, "process_index": process_index,
                            "process_count": process_count}

    @property
    def batches_per_epoch(self) -> int:
        return self.rows.batches_per_epoch

    def __iter__(self) -> "LoaderIterator":
        return self.iterator()

    def iterator(self, state: Optional[dict] = None) -> "LoaderIterator":
        """An iterator from `state` (a `LoaderIterator.get_state()`; default: the start)."""
        it = LoaderIterator(self)
        if state is not None:
            it.set_state(state)
        return it

    def dataset(self, epoch: int, batch: int):
        """The grain IterDataset of every host batch from (epoch, batch) on."""
        import grain  # lazy
        local = self.rows.local
        start = epoch * self.rows.rows_per_epoch + batch * local
        stop = None if self.num_epochs is None else self.num_epochs * self.rows.rows_per_epoch
        stop = stop if stop is not None else 2 ** 62
        ds = grain.MapDataset.range(start, max(start, stop)).map(self.rows).batch(local)
        it_ds = ds.to_iter_dataset(grain.ReadOptions(num_threads=self.read_threads,
                                                     prefetch_buffer_size=2))
        if self.worker_count > 0:
            from absl import flags  # grain's workers read absl flags (defaults outside an app)
            if not flags.FLAGS.is_parsed():
                flags.FLAGS.mark_as_parsed()
            it_ds = it_ds.mp_prefetch(grain.MultiprocessingOptions(
                num_workers=self.worker_count, per_worker_buffer_size=self.worker_buffer_size),
                worker_init_fn=functools.partial(_watch_parent, os.getpid()))
        return it_ds


class LoaderIterator(Iterator[Batch]):
    """Iterates a `GrainLoader`; `get_state`/`set_state` make a resumed run exact."""

    def __init__(self, loader: GrainLoader):
        self._loader = loader
        self._epoch, self._batch = 0, 0
        self._it = None

    def get_state(self) -> dict[str, Any]:
        """The position of the NEXT batch, and what the loader was: JSON-serialisable."""
        return {"epoch": self._epoch, "batch": self._batch, **self._loader.fingerprint}

    def set_state(self, state: dict[str, Any]) -> None:
        for key, want in self._loader.fingerprint.items():
            if key in state and state[key] != want:
                raise ValueError(f"loader state has {key}={state[key]!r}, this loader "
                                 f"{want!r}: it was saved by a different input pipeline")
        epoch, batch = int(state["epoch"]), int(state["batch"])
        if not 0 <= batch < self._loader.batches_per_epoch:
            raise ValueError(f"loader state batch={batch} outside [0, "
                             f"{self._loader.batches_per_epoch})")
        self.close()
        self._epoch, self._batch = epoch, batch

    def __iter__(self):
        return self

    def __next__(self) -> Batch:
        ne = self._loader.num_epochs
        if ne is not None and self._epoch >= ne:
            self.close()
            raise StopIteration
        if self._it is None:
            self._it = iter(self._loader.dataset(self._epoch, self._batch))
        try:
            out = next(self._it)
        except StopIteration:
            self.close()
            raise
        self._batch += 1
        if self._batch == self._loader.batches_per_epoch:
            self._epoch, self._batch = self._epoch + 1, 0
        return out

    def close(self) -> None:
        """Stops the worker processes (also on exhaustion)."""
        it, self._it = self._it, None
        if it is not None and hasattr(it, "close"):
            it.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def iterate_batches(split, batch_size: int, *, seed: int = 0, epoch: int = 0,
                    shuffle: bool = True, drop_remainder: bool = False,
                    process_index: int = 0, process_count: int = 1, start_batch: int = 0,
                    augment: bool = False, worker_count: Optional[int] = None,
                    read_threads: int = 1) -> Iterator[Batch]:
    """`pipeline.iterate_batches`'s contract through grain, for any split (in-memory or lazy):
    this process's part of each global batch of `epoch` from `start_batch` on, as
    {'image' (uint8 for lazy splits), 'label' int32, 'id' int32, 'mask' float32}."""
    if start_batch < 0:
        raise ValueError(f"start_batch must be >= 0, got {start_batch}")
    if start_batch >= num_batches(len(split), batch_size, drop_remainder):
        return
    loader = GrainLoader(split, batch_size, seed=seed, shuffle=shuffle,
                         drop_remainder=drop_remainder, augment=augment,
                         process_index=process_index, process_count=process_count,
                         worker_count=worker_count, read_threads=read_threads,
                         num_epochs=epoch + 1)
    it = loader.iterator({"epoch": epoch, "batch": start_batch})
    try:
        yield from it
    finally:
        it.close()


def batches(split, batch_size: int, *, augment: bool = False,
            worker_count: Optional[int] = None, **kwargs) -> Iterator[Batch]:
    """The one entry point for `fit`: in-memory `Split`s go through
    `pipeline.iterate_batches` (their augmentation runs on the device, so `augment` is not
    applied here), lazy splits through the grain `iterate_batches` above."""
    if host_augments(split):
        return iterate_batches(split, batch_size, augment=augment, worker_count=worker_count,
                               **kwargs)
    from kdjax.data import pipeline  # lazy: avoid a cycle in kdjax.data.__init__
    return pipeline.iterate_batches(split, batch_size, **kwargs)
