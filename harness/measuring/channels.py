"""Channels: ``Y, Cb, Cr`` (BT.601) in 8-bit code values.

Computed on the stored code values and scaled to 8-bit code values (0..255)
so that all reported values are in familiar units whatever the bit depth.
"""

from __future__ import annotations

import numpy as np

__all__ = ["CHANNELS", "rgb_to_ycc", "planes_to_ycc"]

CHANNELS: tuple[str, ...] = ("Y", "Cb", "Cr")

# BT.601 luma and scaled colour differences: Cb, Cr span the same range as Y.
_Y = np.array([0.299, 0.587, 0.114], dtype=np.float32)


#: Where :func:`planes_to_ycc` wants the R, G and B planes of its ``(4, H, W)`` input: Y is made in
#: plane 0, and Cb and Cr overwrite B and R in place, so that Y, Cb, Cr come out as planes 0..2.
RGB_SLOTS: tuple[int, int, int] = (2, 3, 1)


def rgb_to_ycc(rgb: np.ndarray) -> np.ndarray:
    """``(H, W, 3)`` float32 code values → ``(3, H, W)`` float32 ``Y, Cb, Cr`` (code values).

    (float64 input gives float64.)  The channels are copied into contiguous planes first: arithmetic on the
    interleaved views is strided and slower.  See :func:`planes_to_ycc`.
    """
    h, w = rgb.shape[:2]
    dtype = np.result_type(rgb.dtype, np.float32)  # float32, or float64 for float64 input
    planes = np.empty((4, h, w), dtype=dtype)
    for c, slot in enumerate(RGB_SLOTS):
        planes[slot] = rgb[..., c]
    return planes_to_ycc(planes)


def planes_to_ycc(planes: np.ndarray) -> np.ndarray:
    """``(4, H, W)`` planes holding R, G, B at :data:`RGB_SLOTS` → ``(3, H, W)`` ``Y, Cb, Cr``, in place.

    The result is ``planes[:3]`` (contiguous); ``planes`` is consumed.  The float32
    operations and their order are those of ``y = c0 r + c1 g + c2 b``,
    ``cb = 0.564 (b - y)``, ``cr = 0.713 (r - y)``.
    """
    y = planes[0]
    r, g, b = (planes[s] for s in RGB_SLOTS)
    np.multiply(_Y[0], r, out=y)
    y += np.multiply(_Y[1], g, out=g)
    y += np.multiply(_Y[2], b, out=g)
    np.multiply(np.float32(0.564), np.subtract(b, y, out=b), out=b)  # Cb over B (plane 1)
    np.multiply(np.float32(0.713), np.subtract(r, y, out=r), out=r)  # Cr over R (plane 2)
    return planes[:3]
