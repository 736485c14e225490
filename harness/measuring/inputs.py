"""Input validation: images to float32 8-bit code values, masks to float32 in [0, 1].

Every error a caller can cause is raised here as a ``ValueError`` with a
message naming what is wrong, before any metric runs.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["as_code_values", "as_code_planes", "checked_image", "check_mask"]


def as_code_values(image: Any, lsb: float | None = None) -> tuple[np.ndarray, float]:
    """Validate an image and return it as float32 8-bit code values plus one LSB in those units.

    Accepts ``(H, W, 3)`` uint8, uint16 or float in [0, 1], at least 16x16.
    Float images are assumed to come from 8-bit data (one LSB = 1 code value)
    unless ``lsb`` (in [0, 1] units) says otherwise.  Returns ``(rgb, lsb)``
    with ``rgb`` of shape ``(H, W, 3)`` float32 in 0..255.
    """
    arr, scale, lsb_code = checked_image(image, lsb)
    out = arr.astype(np.float32)
    return (out if scale is None else out * scale), lsb_code


def as_code_planes(image: Any, lsb: float | None = None, *, slots: tuple[int, int, int] = (0, 1, 2),
                   planes: int = 3) -> tuple[np.ndarray, float]:
    """:func:`as_code_values` as planes: ``(planes, H, W)`` float32 holding R, G, B at ``slots``.

    The same numbers, converted straight from the interleaved input into contiguous
    planes (no interleaved float copy); planes not in ``slots`` are left
    uninitialised for the caller's use.
    """
    arr, scale, lsb_code = checked_image(image, lsb)
    h, w = arr.shape[:2]
    out = np.empty((planes, h, w), dtype=np.float32)
    for c, slot in enumerate(slots):
        out[slot] = arr[..., c]
        if scale is not None:
            out[slot] *= scale
    return out, lsb_code


def checked_image(image: Any, lsb: float | None) -> tuple[np.ndarray, np.float32 | None, float]:
    """The validated array, the float32 factor to code values (None for uint8) and one LSB in code values."""
    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"image must have shape (H, W, 3), got {arr.shape}")
    h, w = arr.shape[:2]
    if h < 16 or w < 16:
        raise ValueError(f"image must be at least 16x16 pixels, got {w}x{h}")
    if arr.dtype == np.uint8:
        return arr, None, 1.0 if lsb is None else float(lsb) * 255.0
    if arr.dtype == np.uint16:
        return arr, np.float32(255.0 / 65535.0), 255.0 / 65535.0 if lsb is None else float(lsb) * 255.0
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)):
            raise ValueError("image contains NaN or inf")
        lo, hi = float(arr.min()), float(arr.max())
        if lo < -1e-6 or hi > 1.0 + 1e-6:
            raise ValueError(f"float image values must lie in [0, 1], got [{lo:.4g}, {hi:.4g}]")
        return arr, np.float32(255.0), 1.0 if lsb is None else float(lsb) * 255.0
    raise ValueError(f"image dtype must be uint8, uint16 or float, got {arr.dtype}")


def check_mask(mask: Any, shape: tuple[int, int]) -> np.ndarray:
    """Validate a ``(H, W)`` mask (bool, uint8 0..255, uint16, or float in [0, 1]) → float32 in [0, 1]."""
    m = np.asarray(mask)
    if m.ndim == 3 and m.shape[2] == 1:
        m = m[..., 0]
    if m.shape != tuple(shape):
        raise ValueError(f"mask shape {m.shape} does not match image shape {tuple(shape)}")
    if m.dtype == np.bool_:
        return m.astype(np.float32)
    if m.dtype == np.uint8:
        return m.astype(np.float32) / 255.0
    if m.dtype == np.uint16:
        return m.astype(np.float32) / 65535.0
    if m.dtype.kind == "f":
        lo, hi = float(m.min()), float(m.max())  # NaN propagates into both: one check catches it too
        if not (lo >= -1e-6 and hi <= 1.0 + 1e-6):
            if not np.all(np.isfinite(m)):
                raise ValueError("mask contains NaN or inf")
            raise ValueError("float mask values must lie in [0, 1]")
        return m.astype(np.float32, copy=False)  # read only: the caller's float32 mask is not copied
    raise ValueError(f"mask dtype must be bool, uint8, uint16 or float, got {m.dtype}")
