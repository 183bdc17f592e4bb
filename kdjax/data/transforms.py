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

JPEGs are decoded at reduced size (libjpeg's DCT scaling by 1/2, 1/4, 1/8) whenever the
reduced image still has at least the resolution the final resize needs; the crop box is chosen
on the full-size image first, so the random draws do not depend on it. The 'imagenet' recipe
decodes JPEGs with simplejpeg (libjpeg-turbo's TurboJPEG API: the same decoder, IDCT and DCT
scales as PIL's, less CPU per image), so its output equals the PIL path's pixel for pixel
(tests/test_transforms.py); other formats and JPEGs simplejpeg cannot read go through PIL.
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


def _turbo_decode(data: bytes, mode: str):
    """((width, height), decode) for a JPEG simplejpeg reads, else None; decode(box, out)
    returns (PIL image, box in its coordinates) decoded at the DCT scale `_draft` picks (the
    same pixels PIL decodes, in PIL's RGBX layout, so it wraps the buffer without a copy)."""
    try:
        import simplejpeg  # lazy: only decoding workers need it
    except ImportError:  # optional: PIL decodes instead
        return None
    if mode != "RGB" or not simplejpeg.is_jpeg(data):  # grey outputs: PIL (its own rules
        return None                                     # for colour JPEGs at full scale)
    try:
        h, w, _, _ = simplejpeg.decode_jpeg_header(data)
    except ValueError:
        return None

    def decode(box, out):
        bw, bh = box[2] - box[0], box[3] - box[1]
        need = (math.ceil(w * out[0] / bw), math.ceil(h * out[1] / bh))
        scale = 1  # PIL's draft: the largest of 8, 4, 2, 1 keeping the box at >= out pixels
        if need[0] < w and need[1] < h:
            scale = next(f for f in (8, 4, 2, 1) if min(w // need[0], h // need[1]) >= f)
        size = ((w + scale - 1) // scale, (h + scale - 1) // scale)
        arr = simplejpeg.decode_jpeg(data, colorspace="RGBX", min_factor=scale,
                                     min_width=size[0], min_height=size[1])
        if (arr.shape[1], arr.shape[0]) != size:  # not the scale PIL would decode at
            raise ValueError(f"simplejpeg decoded {arr.shape[1]}x{arr.shape[0]}, not {size}")
        sx, sy = size[0] / w, size[1] / h
        # RGBX pixels are PIL's own layout: the image shares the decoded buffer (no copy).
        pil = _pil().frombuffer("RGBX", size, arr, "raw", "RGBX", 0, 1)
        return pil, (box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy)

    return (w, h), decode


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

    def _box(self, rng, train: bool, width: int, height: int):
        """(crop box in original pixels, flip) of one example."""
        if train:
            box = random_resized_box(rng, width, height)
            return box, bool(rng.random() < 0.5)
        return center_box(width, height, self.size, self.resize_ratio), False

    def _imagenet(self, image, rng, train: bool) -> np.ndarray:
        Image = _pil()
        mode = self._mode()
        out = (self.size, self.size)
        encoded = isinstance(image, (bytes, bytearray, memoryview))
        fast = _turbo_decode(bytes(image), mode) if encoded else None
        if encoded:
            pil = None if fast else open_image(bytes(image))
        else:
            arr = _hwc(np.asarray(image, np.uint8), self.channels)
            pil = Image.fromarray(arr[..., 0] if self.channels == 1 else arr)
        box, flip = self._box(rng, train, *(fast[0] if fast else pil.size))
        decoded = False
        if fast:
            try:
                pil, box = fast[1](box, out)
                decoded = True
            except ValueError:  # simplejpeg cannot decode it (e.g. CMYK): PIL, same box
                pil = open_image(bytes(image))
        if not decoded:
            pil, box = _draft(pil, box, out, mode)
            if pil.mode != mode:
                pil = pil.convert(mode)
        pil = pil.resize(out, Image.BILINEAR, box=box)
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
