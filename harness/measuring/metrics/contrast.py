"""Local contrast: RMS contrast (standard deviation) of luma and of each chroma channel per slice.

Chroma contrast per tile and region sees what luma slices cannot: colour
noise removed by a colour denoiser, colour bleeding, a desaturated patch.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

from harness.measuring.channels import CHANNELS
from harness.measuring.metrics import noise
from harness.measuring.result import MetricValues
from harness.measuring.slices import SliceLayout, slice_name

if TYPE_CHECKING:
    from harness.measuring.context import Context

__all__ = ["rms_contrast", "local_contrast"]


def rms_contrast(total: np.ndarray, total_sq: np.ndarray, n: np.ndarray) -> np.ndarray:
    """RMS contrast from per-slice sums of luma and squared luma over ``n`` pixels.

    ``sqrt(E[Y²] - E[Y]²)``, clipped at zero against rounding; a flat field reads 0.
    All arguments are ``(S,)``; the result is in the units of ``Y``.
    Callers should centre ``Y`` on the image mean first to avoid cancellation.
    """
    n = np.maximum(n, 1.0)
    mean = total / n
    return np.sqrt(np.maximum(total_sq / n - mean * mean, 0.0))


@lru_cache(maxsize=32)
def _contrast_names(layout: SliceLayout) -> tuple[str, ...]:
    """Channel-major: the whole image, then every tile and region, for Y, Cb, Cr."""
    return tuple(name for c in CHANNELS for name in
                 (slice_name(ch=c),) + tuple(slice_name(ch=c, **loc) for loc in layout.local))


def local_contrast(ctx: Context) -> dict[str, MetricValues]:
    """``contrast`` (code): RMS contrast of Y, Cb and Cr over the whole image, every tile and every region.

    Reads the sums of the *centred* channels and their squares from ``ctx.sums``
    (chroma is centred on its image mean: the plain ``cb``/``cr`` sums minus
    ``n`` times that mean).  A chroma channel sees its share of per-pixel noise
    (:data:`~harness.measuring.metrics.noise.CHANNEL_NOISE_GAIN`).
    """
    s = ctx.sums
    n = s.n
    vals, stds, biases = [], [], []
    for c, total, sq, centre in (("Y", s.total("y"), s.total("y2"), 0.0),
                                 ("Cb", s.total("cb"), s.total("cb2"), float(ctx.c_mean[0])),
                                 ("Cr", s.total("cr"), s.total("cr2"), float(ctx.c_mean[1]))):
        v = rms_contrast(total - centre * n, sq, n)
        std, bias = noise.contrast_noise(v, n, ctx.sigma * np.sqrt(noise.CHANNEL_NOISE_GAIN[c]))
        vals.append(v)
        stds.append(std)
        biases.append(bias)
    return {"contrast": MetricValues(_contrast_names(ctx.layout), np.concatenate(vals), np.concatenate(stds),
                                     np.concatenate(biases))}
