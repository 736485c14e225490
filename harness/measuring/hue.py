"""Whole-image colour for image-to-image checks: code values, the mean chroma vector and the hue
offset between two images (the cross-model ``cross_hue`` check, :mod:`harness.checks.cross`).

The hue of the mean chroma vector ``mean(Cb) + i mean(Cr)`` (BT.601) weights every pixel's hue
by its chroma, as the ``hue`` slice metric does (:mod:`harness.measuring.metrics.color`); a
vector shorter than :data:`~harness.measuring.metrics.noise.HUE_MIN_CHROMA` code values has no
hue.
"""

from __future__ import annotations

import numpy as np

__all__ = ["code_values", "luma_chroma", "mean_chroma", "hue_offset"]


def code_values(image: np.ndarray) -> np.ndarray:
    """``(H, W, 3)`` uint8/uint16/float [0, 1] → float64 8-bit code values."""
    from harness.imageio import to_float

    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    return to_float(arr).astype(np.float64) * 255.0


def luma_chroma(codes: np.ndarray) -> np.ndarray:
    """``(3, H, W)`` float64 Y, Cb, Cr (BT.601, code values) of ``(H, W, 3)`` code values."""
    from harness.measuring.channels import rgb_to_ycc

    return rgb_to_ycc(codes.astype(np.float32)).astype(np.float64)


def mean_chroma(codes: np.ndarray) -> complex:
    """``mean(Cb) + i mean(Cr)`` of an image in code values: its chroma-weighted mean hue is the angle."""
    ycc = luma_chroma(codes)
    return complex(float(ycc[1].mean()), float(ycc[2].mean()))


def hue_offset(za: complex, zb: complex) -> tuple[float | None, float | None, float | None]:
    """``(hue_a, hue_b, offset)`` in degrees from two mean chroma vectors; a hue shorter than
    HUE_MIN_CHROMA is None, and then so is the offset."""
    from harness.measuring.metrics.color import circular_delta, hue_degrees
    from harness.measuring.metrics.noise import HUE_MIN_CHROMA

    def hue(z: complex) -> float | None:
        return float(hue_degrees(np.array(z.real), np.array(z.imag))) if abs(z) >= HUE_MIN_CHROMA else None

    ha, hb = hue(za), hue(zb)
    off = float(circular_delta(hb, ha)) if ha is not None and hb is not None else None
    return ha, hb, off
