"""Seam metrics across a mask border: luma step and gradient energy."""

from __future__ import annotations

import numpy as np

__all__ = ["gradient_energy_map", "GRADIENT_GAIN", "GRADIENT_MAX_GAIN"]

# Forward differences on both axes: white noise of variance s² gives a
# squared-gradient mean of 4 s² (each difference has variance 2 s²); the
# largest squared response |1 - e^{iw}|² per axis is 4, 8 for the sum.
GRADIENT_GAIN = 4.0
GRADIENT_MAX_GAIN = 8.0


def gradient_energy_map(y: np.ndarray) -> np.ndarray:
    """``gx² + gy²`` with forward differences (zero on the last row/column)."""
    g = np.zeros_like(y)
    dx = np.diff(y, axis=1)
    dy = np.diff(y, axis=0)
    g[:, :-1] += dx * dx
    g[:-1, :] += dy * dy
    return g
