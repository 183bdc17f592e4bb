"""Host-side (numpy/PIL) decoding and augmentation recipes, run in the grain loader's workers.

A `Recipe` turns one stored example image (raw uint8 HWC array, or encoded JPEG/PNG bytes)
into a uint8 (size, size, C) array; images stay uint8 (normalisation happens in the step).

* 'cifar' (CIFAR-10/100, SVHN): training = zero-pad 4, random 32x32 crop, horizontal flip
  w.p. 1/2 (He et al. 2016); evaluation = the image unchanged.
* 'imagenet' (ImageNet, the fine-grained sets): training = RandomResizedCrop(size, scale
  (0.08, 1), ratio (3/4, 4/3)) + horizontal flip (Szegedy et al. 2015; the torchvision
  algorithm: 10 tries, then a centre crop clamped to the ratio range); evaluation = resize the
  shorter side to size / 0.875 (256 for 224) and centre-crop size x size.
* 'none': the image unchanged (MNIST-like sets).

JPEGs are decoded at reduced size with PIL's `draft` (libjpeg's DCT scaling by 1/2, 1/4, 1/8)
whenever the reduced image still has at least the resolution the final resize needs; the crop
box is chosen on the full-size image first, so the random draws do not depend on it.
"""
from __future__ import annotations

import dataclasses
import io
import math

import numpy as np

RECIPES = ("cifar", "imagenet", "none")


def _pil():
    from PIL import Image  # lazy: only workers that decode need PIL.
    return Image


def open_image(data: bytes):
    """A lazily decoded PIL image from encoded bytes (header read only)."""
    return _pil().open(io.BytesIO(data))


def _draft(image, box: tuple[float, float, float, float], out: tuple[int, int], mode: str):
    """Decode a JPEG at the smallest DCT scale that keeps `box` at >= `out` pixels; returns
    (image, box) in the decoded image's coordinates."""
    w, h = image.size
    if image.format == "JPEG":
        bw, bh = box[2] - box[0], box[3] - box[1]
        need = (math.ceil(w * out[0] / bw), math.ceil(h * out[1] / bh))
        if need[0] < w and need[1] < h:
            image.draft(mode, need)
    sx, sy = image.size[0] / w, image.size[1] / h
    return image, (box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy)


def random_resized_box(rng: np.random.Generator, width: int, height: int,
                       scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3)) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of a RandomResizedCrop window, torchvision's algorithm."""
    area = width * height
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target = area * rng.uniform(scale[0], scale[1])
        aspect = math.exp(rng.uniform(*log_ratio))
        w = int(round(math.sqrt(target * aspect)))
        h = int(round(math.sqrt(target / aspect)))
        if 0 < w <= width and 0 < h <= height:
            top = int(rng.integers(0, height - h + 1))
            left = int(rng.integers(0, width - w + 1))
            return left, top, left + w, top + h
    in_ratio = width / height
    if in_ratio < ratio[0]:
        w, h = width, int(round(width / ratio[0]))
    elif in_ratio > ratio[1]:
        w, h = int(round(height * ratio[1])), height
    else:
        w, h = width, height
    top, left = (height - h) // 2, (width - w) // 2
    return left, top, left + w, top + h


def center_box(width: int, height: int, size: int, resize_ratio: float = 0.875
               ) -> tuple[float, float, float, float]:
    """The window of the original image that 'resize shorter side to size/resize_ratio, centre
    crop size x size' keeps, in original pixel coordinates."""
    short = size / resize_ratio
    s = short / min(width, height)
    side = size / s
    left, top = (width - side) / 2, (height - side) / 2
    return left, top, left + side, top + side


def pad_crop_flip(rng: np.random.Generator, image: np.ndarray, pad: int = 4) -> np.ndarray:
    """Zero-pad `pad` pixels, crop a random window of the original size, flip w.p. 1/2."""
    h, w = image.shape[:2]
    padded = np.pad(image, ((pad, pad), (pad, pad), (0, 0)))
    dy, dx = (int(v) for v in rng.integers(0, 2 * pad + 1, size=2))
    out = padded[dy:dy + h, dx:dx + w]
    if rng.random() < 0.5:
        out = out[:, ::-1]
    return np.ascontiguousarray(out)


@dataclasses.dataclass(frozen=True)
class Recipe:
    """How one stored image becomes a model input: `kind` in RECIPES, output `size` x `size`
    x `channels` (for 'cifar'/'none' raw images keep their stored size)."""
    kind: str = "none"
    size: int = 224
    channels: int = 3
    resize_ratio: float = 0.875
    pad: int = 4

    def __post_init__(self):
        if self.kind not in RECIPES:
            raise ValueError(f"recipe kind must be one of {RECIPES}, got {self.kind!r}")

    def output_shape(self, stored_shape=None) -> tuple[int, int, int]:
        if self.kind == "imagenet" or stored_shape is None:
            return (self.size, self.size, self.channels)
        return tuple(int(d) for d in stored_shape)

    def __call__(self, image, rng: np.random.Generator | None, train: bool) -> np.ndarray:
        """uint8 HWC output for `image` (uint8 array or encoded bytes); rng needed if train."""
        if self.kind == "imagenet":
            return self._imagenet(image, rng, train)
        if isinstance(image, (bytes, bytearray, memoryview)):
            image = np.asarray(open_image(bytes(image)).convert(self._mode()))
        image = _hwc(np.asarray(image, np.uint8), self.channels)
        if train and self.kind == "cifar":
            return pad_crop_flip(rng, image, self.pad)
        return image

    def _mode(self) -> str:
        return "L" if self.channels == 1 else "RGB"

    def _imagenet(self, image, rng, train: bool) -> np.ndarray:
        Image = _pil()
        mode = self._mode()
        if isinstance(image, (bytes, bytearray, memoryview)):
            pil = open_image(bytes(image))
        else:
            arr = _hwc(np.asarray(image, np.uint8), self.channels)
            pil = Image.fromarray(arr[..., 0] if self.channels == 1 else arr)
        w, h = pil.size
        flip = False
        if train:
            box = random_resized_box(rng, w, h)
            flip = bool(rng.random() < 0.5)
        else:
            box = center_box(w, h, self.size, self.resize_ratio)
        pil, box = _draft(pil, box, (self.size, self.size), mode)
        if pil.mode != mode:
            pil = pil.convert(mode)
        pil = pil.resize((self.size, self.size), Image.BILINEAR, box=box)
        if flip:
            pil = pil.transpose(Image.FLIP_LEFT_RIGHT)
        return _hwc(np.asarray(pil, np.uint8), self.channels)


def _hwc(image: np.ndarray, channels: int) -> np.ndarray:
    """HW or HWC uint8 -> HWC with `channels` channels (grey broadcast to RGB, RGBA cut)."""
    if image.ndim == 2:
        image = image[..., None]
    if image.shape[-1] != channels:
        if channels == 3 and image.shape[-1] in (1, 4):
            image = np.broadcast_to(image[..., :1], image.shape[:2] + (3,)) \
                if image.shape[-1] == 1 else image[..., :3]
        elif channels == 1:
            image = image[..., :1]
        else:
            raise ValueError(f"cannot convert an image with {image.shape[-1]} channels to "
                             f"{channels}")
    return np.ascontiguousarray(image)


def example_rng(seed: int, epoch: int, example_id: int) -> np.random.Generator:
    """The augmentation randomness of one example in one epoch: a function of (seed, epoch,
    id) only, so it is the same whatever the worker, process count or resume point."""
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, int(epoch), int(example_id), 0x5EED])
