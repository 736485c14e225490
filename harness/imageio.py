"""Reading and writing images and masks, with clear errors and atomic writes.

Images are returned as ``(H, W, 3)`` arrays in their stored integer type
(``uint8`` or ``uint16``) so that the quantisation step (one LSB) is known to the
metrics.  Masks are returned as ``(H, W)`` float32 in [0, 1]; soft values are kept.
"""

from __future__ import annotations

import os
from pathlib import Path

from typing import Any

import numpy as np

from harness.fsio import atomic_write_bytes
from harness.errors import InputError

__all__ = ["load_image", "load_mask", "save_png", "to_float", "float_to_uint8", "codes_to_uint8"]

MIN_SIDE = 16


def _open(path: str | os.PathLike[str]):
    from PIL import Image, UnidentifiedImageError

    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: no such file")
    if p.is_dir():
        raise InputError(f"{p}: is a directory, expected an image file")
    try:
        img = Image.open(p)
        img.load()  # force decoding now so truncation is caught here
    except UnidentifiedImageError:
        raise InputError(f"{p}: not an image file (cannot identify format)") from None
    except PermissionError:
        raise InputError(f"{p}: permission denied") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise InputError(f"{p}: corrupt or truncated image ({exc})") from None
    return p, img


def load_image(path: str | os.PathLike[str]) -> np.ndarray:
    """Load an image file as an ``(H, W, 3)`` uint8 or uint16 array.

    Greyscale is replicated to three channels; an alpha channel is dropped;
    16-bit files stay 16-bit.  Raises :class:`InputError` naming the file.
    """
    p, img = _open(path)
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img)
        if arr.dtype != np.uint16:
            if arr.min() < 0 or arr.max() > 65535:
                raise InputError(f"{p}: 32-bit integer image out of 16-bit range")
            arr = arr.astype(np.uint16)
        arr = np.repeat(arr[..., None], 3, axis=2)
    elif mode in ("RGB", "L", "RGBA", "LA", "P", "1", "CMYK", "YCbCr"):
        arr = np.asarray(img.convert("RGB"))
    else:
        raise InputError(f"{p}: unsupported image mode {mode!r}")
    if arr.shape[0] < MIN_SIDE or arr.shape[1] < MIN_SIDE:
        raise InputError(f"{p}: image is {arr.shape[1]}x{arr.shape[0]}, smaller than the minimum {MIN_SIDE}x{MIN_SIDE}")
    return np.ascontiguousarray(arr)


def load_mask(path: str | os.PathLike[str], shape: tuple[int, int] | None = None) -> np.ndarray:
    """Load a single-channel mask as float32 in [0, 1] (soft values kept).

    Colour masks are converted to luminance.  ``shape`` (H, W), when given,
    must match exactly.
    """
    p, img = _open(path)
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img).astype(np.float32) / 65535.0
    else:
        arr = np.asarray(img.convert("L")).astype(np.float32) / 255.0
    if shape is not None and arr.shape != tuple(shape):
        raise InputError(
            f"{p}: mask is {arr.shape[1]}x{arr.shape[0]} but the image is {shape[1]}x{shape[0]}"
        )
    return arr


def float_to_uint8(image: Any) -> np.ndarray:
    """Floats in [0, 1] → uint8 code values: ×255, round half to even (``np.rint``), clip to 0..255.

    The one float → 8-bit conversion in harness (stage outputs, saved masks, PNGs).  The
    multiplication keeps the input's float dtype, so float32 and float64 inputs round as
    their own arithmetic gives; NaN must be rejected before (it would become 0).
    """
    return np.clip(np.rint(np.asarray(image) * 255.0), 0, 255).astype(np.uint8)


def codes_to_uint8(values: Any) -> np.ndarray:
    """Float code values (0..255 scale) → uint8: round half to even, clip to 0..255."""
    return np.clip(np.rint(np.asarray(values)), 0, 255).astype(np.uint8)


def to_float(image: np.ndarray) -> np.ndarray:
    """Convert a uint8/uint16/float image to float32 in [0, 1]."""
    if image.dtype == np.uint8:
        return image.astype(np.float32) / 255.0
    if image.dtype == np.uint16:
        return image.astype(np.float32) / 65535.0
    return image.astype(np.float32, copy=False)


def save_png(path: str | os.PathLike[str], image: np.ndarray) -> None:
    """Save an ``(H, W, 3)`` or ``(H, W)`` array as PNG, atomically.

    uint8 and uint16 are written as is; float input in [0, 1] is rounded to 8 bit.
    """
    import io

    from PIL import Image

    arr = np.asarray(image)
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)):
            raise InputError(f"{path}: refusing to save an image with NaN or inf")
        arr = float_to_uint8(arr)
    elif arr.dtype == np.bool_:
        arr = arr.astype(np.uint8) * 255
    if arr.dtype == np.uint16:
        if arr.ndim == 3:
            raise InputError(f"{path}: 16-bit RGB PNG writing is not supported; save uint8")
        img = Image.fromarray(arr, mode="I;16")
    else:
        img = Image.fromarray(arr.astype(np.uint8))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    atomic_write_bytes(path, buf.getvalue())
