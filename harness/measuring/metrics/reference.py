"""Reference figures (PSNR, SSIM): reported beside the slices, not gating by default."""

from __future__ import annotations

import numpy as np

__all__ = ["psnr", "ssim"]


def psnr(baseline: np.ndarray, candidate: np.ndarray, data_range: float = 255.0) -> float:
    """PSNR in dB of two images in code values; identical images give ``inf``."""
    mse = float(np.mean((np.asarray(baseline, np.float64) - np.asarray(candidate, np.float64)) ** 2))
    if mse == 0.0:
        return float("inf")
    return float(10.0 * np.log10(data_range * data_range / mse))


def ssim(baseline: np.ndarray, candidate: np.ndarray, data_range: float = 255.0) -> float:
    """Mean SSIM (scikit-image, Gaussian-free 7x7 window) over RGB channels."""
    from skimage.metrics import structural_similarity

    return float(structural_similarity(np.asarray(baseline, np.float64), np.asarray(candidate, np.float64),
                                       channel_axis=2, data_range=data_range))
