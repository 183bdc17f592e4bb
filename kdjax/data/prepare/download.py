"""The datasets' official distribution files, fetched with their published checksums.

`fetch(name, source)` returns a local path: `source` may be the file itself, a folder that
holds it, or an http(s) URL / empty (download the official URL into `cache_dir`). A local
file is checked against the md5 too, so a truncated copy is reported before it is parsed.
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import urllib.request
from typing import Optional

from kdjax.data.prepare.readers import MissingSource, SourceError


@dataclasses.dataclass(frozen=True)
class RemoteFile:
    filename: str
    url: str
    md5: str


# md5s published with the files: cs.toronto.edu/~kriz/cifar.html, and the SVHN ones that
# torchvision.datasets.SVHN pins.
FILES: dict[str, RemoteFile] = {
    "cifar10": RemoteFile("cifar-10-python.tar.gz",
                          "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
                          "c58f30108f718f92721af3b95e74349a"),
    "cifar100": RemoteFile("cifar-100-python.tar.gz",
                           "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
                           "eb9058c3a382ffc7106e4002c42a8d85"),
    "svhn_train": RemoteFile("train_32x32.mat",
                             "http://ufldl.stanford.edu/housenumbers/train_32x32.mat",
                             "e26dedcc434d2e4c54c9b2d4a06d8373"),
    "svhn_test": RemoteFile("test_32x32.mat",
                            "http://ufldl.stanford.edu/housenumbers/test_32x32.mat",
                            "eb5a983be6a315427106f1b164d9cef3"),
    "svhn_extra": RemoteFile("extra_32x32.mat",
                             "http://ufldl.stanford.edu/housenumbers/extra_32x32.mat",
                             "a93ce644f1a588dc4d68dda5feec44a7"),
}


def md5sum(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "md5").hexdigest()


def verify(path: str, md5: Optional[str]) -> str:
    """Raises ValueError naming `path` when its md5 is not `md5` (None: no check)."""
    if md5 is not None:
        got = md5sum(path)
        if got != md5:
            raise SourceError(f"{path}: md5 {got} is not the published {md5} (truncated or "
                              "corrupt download: delete it and fetch it again; "
                              "--nocheck_md5 skips the check)")
    return path


def download(url: str, dest: str, md5: Optional[str]) -> str:
    """Downloads `url` to `dest` (atomically, via dest + '.part') and checks its md5."""
    os.makedirs(os.path.dirname(dest) or ".", exist_ok=True)
    part = dest + ".part"
    try:
        with urllib.request.urlopen(url, timeout=60) as r, open(part, "wb") as f:
            shutil.copyfileobj(r, f, 1 << 20)
    except OSError as e:
        raise SourceError(f"could not download {url} ({e}); without network, download it "
                           "elsewhere and pass the file or its folder as --source") from e
    verify(part, md5)
    os.replace(part, dest)
    return dest


def fetch(key: str, source: Optional[str], cache_dir: str, check: bool = True) -> str:
    """Local path of official file `key` (see FILES), from `source` or downloaded."""
    spec = FILES[key]
    md5 = spec.md5 if check else None
    if source and not source.startswith(("http://", "https://", "file://")):
        path = os.path.join(source, spec.filename) if os.path.isdir(source) else source
        if not os.path.exists(path):
            raise MissingSource(f"{path} not found (expected the official "
                                    f"{spec.filename} from {spec.url})")
        return verify(path, md5)
    dest = os.path.join(cache_dir, spec.filename)
    if os.path.exists(dest):
        return verify(dest, md5)
    return download(source or spec.url, dest, md5)
