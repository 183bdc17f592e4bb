"""kdjax.data: dataset registry, splits, input pipelines, augmentation, preparation.

Names are imported lazily (PEP 562), so grain and prepare worker processes that import one
submodule (e.g. `kdjax.data.loader`) do not pay for JAX or TFDS.
"""
import importlib

_EXPORTS = {
    "normalize": "augment", "preprocess": "augment", "random_crop_flip": "augment",
    "parse_idx": "idx", "read_idx": "idx", "tfds_record_order": "idx",
    "epoch_order": "pipeline", "iterate_batches": "pipeline", "num_batches": "pipeline",
    "prefetch": "pipeline", "to_global": "pipeline",
    "TFDS_SPECS": "registry", "list_datasets": "registry", "load_dataset": "registry",
    "split_active": "splits", "split_validation": "splits", "concat": "splits",
    "flip_labels": "splits", "flip_mask": "splits",
    "LazySplit": "lazy", "DatasetInfo": "types", "Split": "types", "make_split": "types",
    "validate_split": "types", "GrainLoader": "loader", "host_augments": "loader",
    "Recipe": "transforms", "load_records": "records",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f"kdjax.data.{_EXPORTS[name]}"), name)
        globals()[name] = value
        return value
    try:  # a submodule, e.g. kdjax.data.offline
        return importlib.import_module(f"kdjax.data.{name}")
    except ModuleNotFoundError as e:
        if e.name != f"kdjax.data.{name}":
            raise
    raise AttributeError(f"module 'kdjax.data' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
