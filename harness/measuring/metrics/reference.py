"""Reference figures (PSNR, SSIM): reported beside the slices, not gating by default.

Both are computed in strips of rows, so that comparing two large images never
holds a float copy of either: the whole-image formulas (float64 code values,
scikit-image's SSIM with its 7x7 uniform window and sample covariance) would
take about 30 float32 image copies for one RGB pair.

A strip gives the same per-pixel numbers as the whole image:

* PSNR: squared differences are summed per strip in float64.  For 8-bit images
  they are integers, and integer sums below 2**53 are exact in any order: the
  result equals the whole-image mean exactly.  For other inputs the order of the
  float64 additions differs (relative error near 1e-16).
* SSIM: scikit-image averages the SSIM map without its 3-px border, where each
  7x7 window lies inside the image; a strip of rows with 3 rows of context on
  either side has the very same windows.  Only the order of float64 additions
  differs (scipy's running 7-tap box sum starts at the strip's first row, and the
  map is summed per strip): the mean agrees to ~1e-15 relative.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

__all__ = ["psnr", "ssim", "STRIP_PIXELS"]

STRIP_PIXELS = 1 << 18  # values per strip (rows x width x channels): 2 MB per float64 strip
_WIN = 7  # scikit-image's default uniform window
_PAD = (_WIN - 1) // 2
_K1, _K2 = 0.01, 0.03

Convert = Callable[[np.ndarray, int], np.ndarray]  # (strip of rows, 0 baseline / 1 candidate) -> code values


def _float64(a: np.ndarray, which: int) -> np.ndarray:
    return np.asarray(a, np.float64)


def _strip_rows(h: int, w: int, channels: int) -> int:
    return max(64, STRIP_PIXELS // max(w * channels, 1))  # >= 64 rows: the 6 rows of SSIM context stay cheap


def psnr(baseline: np.ndarray, candidate: np.ndarray, data_range: float = 255.0, *,
         convert: Convert = _float64) -> float:
    """PSNR in dB of two same-shape images in code values; identical images give ``inf``.

    ``convert(strip, which)`` maps a strip of rows of the baseline (``which`` 0) or the
    candidate (1) to float code values (default: as float64), so the inputs may stay 8-bit (see :func:`harness.measuring.inputs.as_code_values`).
    """
    h, w = baseline.shape[:2]
    step = _strip_rows(h, w, baseline[0, 0].size)
    total = 0.0
    for r in range(0, h, step):
        d = np.subtract(convert(baseline[r:r + step], 0), convert(candidate[r:r + step], 1), dtype=np.float64)
        d = d.reshape(-1)
        total += float(np.dot(d, d))
    mse = total / baseline.size
    if mse == 0.0:
        return float("inf")
    return float(10.0 * np.log10(data_range * data_range / mse))


def ssim(baseline: np.ndarray, candidate: np.ndarray, data_range: float = 255.0, *,
         convert: Convert = _float64) -> float:
    """Mean SSIM over RGB channels, as ``skimage.metrics.structural_similarity(..., channel_axis=2)``
    (uniform 7x7 window, sample covariance), computed in strips of rows; ``convert`` as in :func:`psnr`.

    Raises ``ValueError`` for an image under 7x7 pixels, as scikit-image does.
    """
    h, w = baseline.shape[:2]
    if h < _WIN or w < _WIN:
        raise ValueError(f"SSIM needs at least {_WIN}x{_WIN} pixels, got {w}x{h}")
    nch = baseline.shape[2] if baseline.ndim == 3 else 1
    step = _strip_rows(h, w, 3 * nch)
    sums = np.zeros(nch)
    for r0 in range(_PAD, h - _PAD, step):  # output rows r0..r1 (the map without its border)
        r1 = min(r0 + step, h - _PAD)
        x = convert(baseline[r0 - _PAD:r1 + _PAD], 0)
        y = convert(candidate[r0 - _PAD:r1 + _PAD], 1)
        for c in range(nch):
            xc, yc = (x[..., c], y[..., c]) if baseline.ndim == 3 else (x, y)
            sums[c] += _ssim_map_sum(np.asarray(xc, np.float64), np.asarray(yc, np.float64), data_range)
    n = (h - 2 * _PAD) * (w - 2 * _PAD)
    return float((sums / n).mean())


def _ssim_map_sum(x: np.ndarray, y: np.ndarray, data_range: float) -> float:
    """Sum of scikit-image's SSIM map over the strip's rows ``3..-3`` and columns ``3..-3``: the same
    expressions in the same order as ``structural_similarity``, on a strip with 3 rows of context."""
    from scipy.ndimage import uniform_filter

    cov_norm = _WIN * _WIN / (_WIN * _WIN - 1.0)
    ux = uniform_filter(x, size=_WIN)
    uy = uniform_filter(y, size=_WIN)
    uxx = uniform_filter(x * x, size=_WIN)
    uyy = uniform_filter(y * y, size=_WIN)
    uxy = uniform_filter(x * y, size=_WIN)
    vx = cov_norm * (uxx - ux * ux)
    vy = cov_norm * (uyy - uy * uy)
    vxy = cov_norm * (uxy - ux * uy)
    c1 = (_K1 * data_range) ** 2
    c2 = (_K2 * data_range) ** 2
    a1, a2, b1, b2 = 2 * ux * uy + c1, 2 * vxy + c2, ux**2 + uy**2 + c1, vx + vy + c2
    s = (a1 * a2) / (b1 * b2)
    return float(s[_PAD:-_PAD, _PAD:-_PAD].sum(dtype=np.float64))
