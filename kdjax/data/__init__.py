"""kdjax.data: dataset registry, splits, input pipeline, augmentation."""
from kdjax.data.augment import normalize, preprocess, random_crop_flip
from kdjax.data.idx import parse_idx, read_idx, tfds_record_order
from kdjax.data.pipeline import epoch_order, iterate_batches, num_batches, prefetch, to_global
from kdjax.data.registry import TFDS_SPECS, list_datasets, load_dataset
from kdjax.data.splits import split_active, split_validation
from kdjax.data.tfds_source import LazySplit
from kdjax.data.types import DatasetInfo, Split, make_split, validate_split

__all__ = [
    "DatasetInfo", "LazySplit", "Split", "TFDS_SPECS", "epoch_order", "iterate_batches",
    "list_datasets", "load_dataset", "make_split", "normalize", "num_batches", "parse_idx",
    "prefetch", "preprocess", "random_crop_flip", "read_idx", "split_active", "split_validation",
    "tfds_record_order", "to_global", "validate_split",
]
