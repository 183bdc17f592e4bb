"""Probes the tests put into `fit`: count train-step traces, kill a run after n batches."""
from __future__ import annotations

from kdjax.train import loop


class Killed(Exception):
    """What a probed batch iterator raises in place of a preempted process."""


def count_traces(monkeypatch, traces: list) -> None:
    """Append to `traces` each time a train step built by `fit` is traced."""
    real_make = loop.make_train_step

    def counting_make(*a, **kw):
        step = real_make(*a, **kw)

        def traced(*args):
            traces.append(1)
            return step(*args)
        return traced

    monkeypatch.setattr(loop, "make_train_step", counting_make)


def die_after(monkeypatch, module, batches: int, name: str = "iterate_batches") -> None:
    """Make `module.<name>` (a batch iterator) raise Killed once `batches` batches are served."""
    real, served = getattr(module, name), []

    def dying(*args, **kwargs):
        for batch in real(*args, **kwargs):
            if len(served) == batches:
                raise Killed()
            served.append(1)
            yield batch

    monkeypatch.setattr(module, name, dying)
