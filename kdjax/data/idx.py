"""Reader for the idx format of (Fashion-)MNIST (http://yann.lecun.com/exdb/mnist/).

Header: two zero bytes, a type code (0x08 = uint8, ...), the number of dimensions d, then d
big-endian uint32 sizes; the data follows in C order, big-endian.
"""
from __future__ import annotations

import gzip
import hashlib
import os
import zlib

import numpy as np

_TYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def parse_idx(data: bytes, source: str = "<bytes>") -> np.ndarray:
    """Parses idx bytes into an array (native byte order); ValueError on a malformed header."""
    if len(data) < 4:
        raise ValueError(f"{source}: too short for an idx header ({len(data)} bytes)")
    if data[0] != 0 or data[1] != 0:
        raise ValueError(
            f"{source}: bad idx magic {data[:4].hex()} (first two bytes must be zero)")
    code, ndim = data[2], data[3]
    if code not in _TYPES:
        raise ValueError(f"{source}: unknown idx type code 0x{code:02x}")
    if ndim < 1:
        raise ValueError(f"{source}: idx file declares {ndim} dimensions")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{source}: truncated idx header")
    shape = tuple(int(s) for s in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    dtype = _TYPES[code]
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(data) - header != expected:
        raise ValueError(
            f"{source}: idx header declares shape {shape} ({expected} bytes of data) but the "
            f"file holds {len(data) - header} bytes")
    arr = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return arr.astype(dtype.newbyteorder("="), copy=True)


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Reads an idx file, gunzipping it if the name ends with .gz."""
    path = os.fspath(path)
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (EOFError, gzip.BadGzipFile, zlib.error) as err:
        raise ValueError(f"{path}: truncated or corrupt data file ({err}); reinstall or "
                         "re-download it") from err
    return parse_idx(data, source=path)


def tfds_record_order(num_examples: int, split_name: str) -> np.ndarray:
    """The order in which TFDS stores examples keyed 0..n-1 of `split_name`.

    TFDS's writer sorts examples by md5(salt=split_name, key=str(key)) (tfds.core.hashing and
    tfds.core.shuffle); MNIST-style builders key examples by their index in the idx file. So
    `file_arrays[tfds_record_order(n, 'train')]` lists the examples in TFDS's order, and
    position i equals `tfds.data_source(name, split='train')[i]`.
    """
    salt = hashlib.md5(split_name.encode("utf-8"))
    hashes = []
    for i in range(num_examples):
        h = salt.copy()
        h.update(str(i).encode("utf-8"))
        hashes.append(h.digest())  # big-endian bytes sort like the 128-bit integer.
    return np.array(sorted(range(num_examples), key=hashes.__getitem__), dtype=np.int64)
