"""Local contrast: RMS contrast (standard deviation of luma) per slice."""

from __future__ import annotations

import numpy as np

__all__ = ["rms_contrast"]


def rms_contrast(total: np.ndarray, total_sq: np.ndarray, n: np.ndarray) -> np.ndarray:
    """RMS contrast from per-slice sums of luma and squared luma over ``n`` pixels.

    ``sqrt(E[Y²] - E[Y]²)``, clipped at zero against rounding; a flat field reads 0.
    Callers should centre ``Y`` on the image mean first to avoid cancellation.
    """
    n = np.maximum(n, 1.0)
    mean = total / n
    return np.sqrt(np.maximum(total_sq / n - mean * mean, 0.0))
