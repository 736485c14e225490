"""Colour metrics: mean Y/Cb/Cr, chroma magnitude, hue of the mean chroma vector."""

from __future__ import annotations

import numpy as np

__all__ = ["hue_degrees", "circular_delta"]


def hue_degrees(mean_cb: np.ndarray, mean_cr: np.ndarray) -> np.ndarray:
    """Hue angle in degrees [0, 360) of the mean chroma vector ``(Cb, Cr)``.

    Using the mean *vector* weights every pixel's hue by its chroma (a grey
    pixel contributes nothing); the angle is undefined when the vector is short,
    which :func:`harness.measuring.metrics.noise.hue_noise` reports as a 180° allowance.
    """
    return np.mod(np.degrees(np.arctan2(mean_cr, mean_cb)), 360.0)


def circular_delta(candidate: np.ndarray, baseline: np.ndarray, period: float = 360.0) -> np.ndarray:
    """Signed difference wrapped into ``[-period/2, period/2)``."""
    return np.mod(np.asarray(candidate) - np.asarray(baseline) + period / 2.0, period) - period / 2.0
