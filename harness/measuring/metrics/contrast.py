"""Local contrast: RMS contrast (standard deviation of luma) per slice."""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

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
    return (slice_name(ch="Y"),) + tuple(slice_name(ch="Y", **loc) for loc in layout.local)


def local_contrast(ctx: Context) -> dict[str, MetricValues]:
    """``contrast`` (code): RMS contrast of luma over the whole image, every tile and every region.

    Reads the sums of the *centred* luma and its square from ``ctx.sums``.
    """
    s = ctx.sums
    c = rms_contrast(s.total("y"), s.total("y2"), s.n)
    std, bias = noise.contrast_noise(c, s.n, ctx.sigma)
    return {"contrast": MetricValues(_contrast_names(ctx.layout), c, std, bias)}
