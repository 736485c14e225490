"""Channels: ``Y, Cb, Cr`` (BT.601) in 8-bit code values.

Computed on the stored code values and scaled to 8-bit code values (0..255)
so that all reported values are in familiar units whatever the bit depth.
"""

from __future__ import annotations

import numpy as np

__all__ = ["CHANNELS", "rgb_to_ycc"]

CHANNELS: tuple[str, ...] = ("Y", "Cb", "Cr")

# BT.601 luma and scaled colour differences: Cb, Cr span the same range as Y.
_Y = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def rgb_to_ycc(rgb: np.ndarray) -> np.ndarray:
    """``(H, W, 3)`` float32 code values → ``(3, H, W)`` float32 ``Y, Cb, Cr`` (code values)."""
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    y = _Y[0] * r + _Y[1] * g + _Y[2] * b
    cb = np.float32(0.564) * (b - y)
    cr = np.float32(0.713) * (r - y)
    return np.stack((y, cb, cr))
