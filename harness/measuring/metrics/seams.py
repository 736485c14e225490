"""Seam metrics across a mask border: luma step, luma profile and gradient energy.

Measured only with a mask: they look at the ``edge`` (inside, within ``ring``
px of the border) and ``ring`` (outside, within ``ring`` px) regions of
:mod:`harness.measuring.regions`, where a fill meets the original content.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from harness.measuring.metrics import noise
from harness.measuring.result import MetricValues
from harness.measuring.slices import slice_name

if TYPE_CHECKING:
    from harness.measuring.context import Context

__all__ = ["gradient_energy_map", "seam_metrics", "GRADIENT_GAIN", "GRADIENT_MAX_GAIN", "SEAM_SHELLS"]

# Forward differences on both axes: white noise of variance s² gives a
# squared-gradient mean of 4 s² (each difference has variance 2 s²); the
# largest squared response |1 - e^{iw}|² per axis is 4, 8 for the sum.
GRADIENT_GAIN = 4.0
GRADIENT_MAX_GAIN = 8.0
# seam_profile: 1-px distance shells on each side of the mask border.
SEAM_SHELLS = 4

_BORDER = slice_name(region="border", ch="Y")
_PROFILE_NAMES = np.array([slice_name(region="border", ch="Y", d=f"{d:+d}")
                           for d in range(-SEAM_SHELLS, SEAM_SHELLS + 1)])


def gradient_energy_map(y: np.ndarray) -> np.ndarray:
    """``gx² + gy²`` (code²) of an ``(H, W)`` image with forward differences (zero on the last row/column)."""
    g = np.zeros_like(y)
    dx = np.diff(y, axis=1)
    dy = np.diff(y, axis=0)
    g[:, :-1] += dx * dx
    g[:-1, :] += dy * dy
    return g


def seam_metrics(ctx: Context) -> dict[str, MetricValues]:
    """``seam_step`` (code), ``seam_profile`` (code) and ``seam_grad`` (code²) of luma across the mask border.

    Empty without a mask, or when the border has no pixel on one side.
    ``seam_profile`` has one slice per non-empty 1-px shell at signed distance
    ``d`` (``d < 0`` inside; ``d = 0`` never occurs).
    """
    regions, sigma = ctx.regions, ctx.sigma
    if regions is None:
        return {}
    # everything here lies within ``ring`` px of the mask: work on the regions' crop
    y = ctx.y[regions.window]
    edge, ringm, depth = regions.edge_c, regions.ring_c, regions.depth_c
    n_e, n_r = float(np.count_nonzero(edge)), float(np.count_nonzero(ringm))
    if not (n_e > 0 and n_r > 0):
        return {}
    out: dict[str, MetricValues] = {}
    step = float(y[edge].mean() - y[ringm].mean())
    step_std = sigma * np.sqrt(1.0 / n_e + 1.0 / n_r)
    out["seam_step"] = MetricValues((_BORDER,), [step], [step_std], [0.0])

    # shell k holds the pixels at distance (k-1, k] from the border, signed by side
    near = np.abs(depth) <= SEAM_SHELLS  # never 0; +inf (beyond the crop) is far
    d = depth[near]
    shells = np.ceil(np.abs(d)).astype(np.int32) * np.sign(d).astype(np.int32)
    idx = shells + SEAM_SHELLS
    cnt = np.bincount(idx, minlength=2 * SEAM_SHELLS + 1)
    prof = np.bincount(idx, weights=y[near], minlength=2 * SEAM_SHELLS + 1) / np.maximum(cnt, 1)
    keep = cnt > 0
    keep[SEAM_SHELLS] = False
    std, bias = noise.mean_noise(cnt[keep], sigma)
    out["seam_profile"] = MetricValues(tuple(_PROFILE_NAMES[keep]), prof[keep], std, bias)

    # the crop reaches at least one pixel past the border region (or the image edge, where the
    # forward difference is zero in both), so the gradient there is the whole image's
    border = edge | ringm
    ge = float(gradient_energy_map(y)[border].mean())
    std, bias = noise.power_noise(np.array([ge]), n_e + n_r, GRADIENT_GAIN, sigma, max_gain=GRADIENT_MAX_GAIN)
    out["seam_grad"] = MetricValues((_BORDER,), [ge], std, bias)
    return out
