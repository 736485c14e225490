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
    """``(H, W, 3)`` float32 code values → ``(3, H, W)`` float32 ``Y, Cb, Cr`` (code values).

    (float64 input gives float64.)  The channels are copied into contiguous planes first: arithmetic on the
    interleaved views is strided and slower.  The float32 operations and their
    order are those of ``y = c0 r + c1 g + c2 b``, ``cb = 0.564 (b - y)``, ``cr = 0.713 (r - y)``.
    """
    h, w = rgb.shape[:2]
    dtype = np.result_type(rgb.dtype, np.float32)  # float32, or float64 for float64 input
    r, g, b = np.empty((3, h, w), dtype=dtype)
    for plane, c in ((r, 0), (g, 1), (b, 2)):
        plane[...] = rgb[..., c]
    out = np.empty((3, h, w), dtype=dtype)
    y, cb, cr = out
    np.multiply(_Y[0], r, out=y)
    y += np.multiply(_Y[1], g, out=cb)
    y += np.multiply(_Y[2], b, out=cb)
    np.multiply(np.float32(0.564), np.subtract(b, y, out=cb), out=cb)
    np.multiply(np.float32(0.713), np.subtract(r, y, out=cr), out=cr)
    return out
