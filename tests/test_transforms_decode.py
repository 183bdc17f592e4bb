"""The 'imagenet' recipe's simplejpeg decode gives PIL's pixels (kdjax/data/transforms.py)."""
import io

import numpy as np
import pytest
from PIL import Image

from kdjax.data import transforms


def _jpeg(rng, size, mode="RGB", subsampling=2) -> bytes:
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([128 + 90 * np.sin(xx / w * 3 + k) * np.cos(yy / h * 4 + k) for k in range(3)],
                   -1) + rng.normal(0, 20, (h, w, 3))
    pil = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
    if mode == "L":
        pil = pil.convert("L")
    buf = io.BytesIO()
    pil.save(buf, "JPEG", quality=85, subsampling=subsampling)
    return buf.getvalue()


def _pil_only(monkeypatch):
    monkeypatch.setattr(transforms, "_turbo_decode", lambda *a: None)


@pytest.mark.parametrize("size,channels,subsampling", [
    ((500, 375), 3, 2), ((1200, 900), 3, 2),      # 1200x900: DCT-scaled decodes (1/2, 1/4)
    ((333, 517), 3, 0)])                          # 4:4:4 chroma
def test_turbo_decode_equals_pil(monkeypatch, size, channels, subsampling):
    data = [_jpeg(np.random.default_rng(i), size, subsampling=subsampling) for i in range(6)]
    recipe = transforms.Recipe("imagenet", 224, channels=channels)
    calls = [(d, e, i, train) for i, d in enumerate(data) for e in range(4)
             for train in (True, False)]
    fast = [recipe(d, transforms.example_rng(0, e, i), train) for d, e, i, train in calls]
    assert transforms._turbo_decode(data[0], "RGB") is not None
    _pil_only(monkeypatch)
    slow = [recipe(d, transforms.example_rng(0, e, i), train) for d, e, i, train in calls]
    for a, b in zip(fast, slow):
        assert a.shape == b.shape == (224, 224, channels) and a.dtype == np.uint8
        np.testing.assert_array_equal(a, b)


def test_grey_jpeg_and_non_jpeg_inputs(monkeypatch):
    """A greyscale JPEG to RGB, and a PNG (PIL path), give the PIL path's output."""
    grey = _jpeg(np.random.default_rng(0), (300, 260), mode="L")
    buf = io.BytesIO()
    Image.open(io.BytesIO(grey)).convert("RGB").save(buf, "PNG")
    png = buf.getvalue()
    recipe = transforms.Recipe("imagenet", 96)
    assert transforms._turbo_decode(png, "RGB") is None
    fast = [recipe(d, transforms.example_rng(1, 0, 0), True) for d in (grey, png)]
    _pil_only(monkeypatch)
    slow = [recipe(d, transforms.example_rng(1, 0, 0), True) for d in (grey, png)]
    for a, b in zip(fast, slow):
        np.testing.assert_array_equal(a, b)
