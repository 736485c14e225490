"""Colour metrics: mean Y/Cb/Cr, chroma magnitude, hue of the mean chroma vector."""

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

__all__ = ["hue_degrees", "circular_delta", "mean_chroma_hue"]


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


@lru_cache(maxsize=32)
def _mean_names(layout: SliceLayout) -> tuple[str, ...]:
    """Whole image per channel, then channel-major over the local slices."""
    return tuple(slice_name(ch=c) for c in CHANNELS) + tuple(
        slice_name(ch=c, **loc) for c in CHANNELS for loc in layout.local)


@lru_cache(maxsize=32)
def _colour_names(layout: SliceLayout) -> tuple[str, ...]:
    """Chroma and hue have no channel: ``all``, then one slice per location."""
    return (slice_name(),) + tuple(slice_name(**loc) for loc in layout.local)


def mean_chroma_hue(ctx: Context) -> dict[str, MetricValues]:
    """``mean`` (code), ``chroma`` (code) and ``hue`` (degrees) over the whole image, tiles and regions."""
    s = ctx.sums
    n = s.n
    h, w = ctx.shape
    n_img = float(h * w)
    # the luma map is centred on the image mean (see context.MAPS): add it back
    mean_ycc = np.stack([s.mean("y") + float(ctx.y_mean), s.mean("cb"), s.mean("cr")])  # (3, S)
    mean_vals = np.concatenate([mean_ycc[:, 0], mean_ycc[:, 1:].ravel()])
    std, bias = noise.mean_noise(np.concatenate([np.full(3, n_img), np.tile(n[1:], 3)]), ctx.sigma)
    out = {"mean": MetricValues(_mean_names(ctx.layout), mean_vals, std, bias)}

    colour = _colour_names(ctx.layout)
    std, bias = noise.mean_noise(n, ctx.sigma)
    out["chroma"] = MetricValues(colour, s.mean("chroma"), std, bias)

    mean_cb, mean_cr = s.mean("cb"), s.mean("cr")
    zlen = np.hypot(mean_cb, mean_cr)  # length of the mean chroma vector: how well the hue is defined
    std, bias = noise.hue_noise(zlen, n, ctx.sigma)
    out["hue"] = MetricValues(colour, hue_degrees(mean_cb, mean_cr), std, bias)
    return out
