"""Convert a dataset's official distribution files into kdjax array_record shards (no TF).

    python -m launch.prepare --dataset=cifar100 --out=data/cifar100          # downloads
    python -m launch.prepare --dataset=cifar100 --source=cifar-100-python.tar.gz --out=...
    python -m launch.prepare --dataset=svhn --source=DIR_WITH_MATS --out=data/svhn_cropped
    python -m launch.prepare --dataset=imagenet2012 --source=/data/ILSVRC/Data/CLS-LOC --out=... --workers=32
    python -m launch.prepare --dataset=tiny_imagenet --source=tiny-imagenet-200 --out=...

Then train with --config.data.name=records:OUT, or --config.data.name=<dataset> and
--config.data.data_dir=<parent of OUT> when OUT ends in /<dataset>. --source is the file, a
folder holding it, or a URL; empty = the official URL (CIFAR, SVHN; checked against the
published md5). Image-folder layouts are described in kdjax/data/prepare/readers.py.

The new folder is written aside and swapped in whole: a prepare that fails or is killed
leaves an existing --out as it was. Expected failures (a missing, corrupt or truncated source
file, an md5 mismatch, a wrong layout, a full disk, Ctrl-C or SIGTERM) print one line
`error: ...` and exit 1 (128 + the signal's number for Ctrl-C and SIGTERM); --traceback shows
the traceback; anything else keeps it. Worker processes die with this one, however it ends.
"""
from __future__ import annotations

import errno
import json
import signal
import sys
import time

from absl import app, flags

from kdjax.data import prepare as prepare_lib
from kdjax.data.prepare.readers import SourceError

_DATASET = flags.DEFINE_string("dataset", None, "One of: " + ", ".join(prepare_lib.DATASETS)
                               + " (aliases svhn, imagenet).")
_SOURCE = flags.DEFINE_string("source", "", "Official file, folder holding it, extracted "
                              "dataset folder, or URL; empty: the official URL.")
_OUT = flags.DEFINE_string("out", None, "Output folder for shards + kdjax_dataset.json.")
_WORKERS = flags.DEFINE_integer("workers", 0, "Processes writing shards (0: all cores).")
_PER_SHARD = flags.DEFINE_integer("examples_per_shard", 10000, "Records per shard.")
_CHECK_MD5 = flags.DEFINE_bool("check_md5", True, "Check official files' published md5.")
_CACHE = flags.DEFINE_string("download_dir", None, "Where downloads go (default OUT/downloads).")
_IMAGE_SIZE = flags.DEFINE_integer("image_size", 224, "Model input size of encoded sets.")
_RECIPE = flags.DEFINE_enum("recipe", None, ["cifar", "imagenet", "none"],
                            "Override the dataset's default augmentation recipe.")
_SVHN_EXTRA = flags.DEFINE_bool("svhn_extra", False, "Also write SVHN's 'extra' split.")
_TRACEBACK = flags.DEFINE_bool("traceback", False, "Show the traceback of an expected error.")
flags.mark_flags_as_required(["dataset", "out"])

# OSErrors a user can act on (the path is in the message); others are bugs: traceback.
_USER_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EROFS, errno.EPERM)


def _expected(err: BaseException) -> str | None:
    """The one line for an expected failure; None for one that keeps its traceback."""
    if isinstance(err, SourceError):
        return str(err).strip().splitlines()[0]
    if isinstance(err, KeyboardInterrupt):
        return f"interrupted; {_OUT.value} is as it was before (run the same command again)"
    if isinstance(err, OSError) and err.errno in _USER_ERRNOS:
        where = f" ({err.filename})" if err.filename else ""
        return f"{err.strerror}{where} while writing {_OUT.value}; it is as it was before"
    return None


class _Terminated(KeyboardInterrupt):
    """SIGTERM (a preempted job), handled like Ctrl-C: workers stopped, the aside folder
    removed, one line."""


def _terminate(signum, frame):
    del signum, frame
    raise _Terminated()


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    signal.signal(signal.SIGTERM, _terminate)
    try:
        _prepare()
    except (SourceError, OSError, KeyboardInterrupt) as err:
        message = _expected(err)
        if message is None or _TRACEBACK.value:
            raise
        print(f"error: {message}", file=sys.stderr, flush=True)
        if isinstance(err, KeyboardInterrupt):
            sys.exit(128 + (signal.SIGTERM if isinstance(err, _Terminated) else signal.SIGINT))
        sys.exit(1)


def _prepare() -> None:
    t0 = time.time()
    meta = prepare_lib.prepare(
        _DATASET.value, _SOURCE.value or None, _OUT.value, num_workers=_WORKERS.value,
        examples_per_shard=_PER_SHARD.value, check_md5=_CHECK_MD5.value,
        cache_dir=_CACHE.value, image_size=_IMAGE_SIZE.value, recipe=_RECIPE.value,
        svhn_extra=_SVHN_EXTRA.value)
    counts = {s: v["num_examples"] for s, v in meta["splits"].items()}
    print(json.dumps({"out": _OUT.value, "name": meta["name"], "num_classes":
                      meta["num_classes"], "counts": counts, "recipe": meta["recipe"],
                      "seconds": round(time.time() - t0, 1)}))


if __name__ == "__main__":
    app.run(main)
