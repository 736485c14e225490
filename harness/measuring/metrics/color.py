"""Colour metrics: mean Y/Cb/Cr, chroma magnitude, hue of the mean chroma vector.

Plus one statistic that is not a slice: :func:`hue_histogram`, the image's chroma-weighted hue
histogram, stored in ``Measurement.meta["hue_hist"]`` (it never produces a check of its own;
``distribution`` mode pools it over seeds to measure a hue rotation between two seed sets, see
:mod:`harness.comparing.distribution`).
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

__all__ = ["hue_degrees", "circular_delta", "mean_chroma_hue", "hue_histogram", "HUE_BINS", "HUE_HIST_PIXELS"]

#: Bins of the chroma-weighted hue histogram (``meta["hue_hist"]``): bin ``j`` holds hues in
#: ``[j, j + 1) * 360 / HUE_BINS`` degrees.
HUE_BINS = 72
#: At most this many pixels go into the histogram (a regular subsample of larger images).
HUE_HIST_PIXELS = 1 << 15


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


def hue_histogram(ctx: Context) -> dict[str, list[float]]:
    """``{"hue_hist": [...]}``: the chroma-weighted hue histogram of the image, for ``Measurement.meta``.

    Bin ``j`` is the sum of ``|(Cb, Cr)|`` (code values) over the pixels whose hue lies in
    ``[j, j + 1) * 360 / HUE_BINS`` degrees, divided by the number of pixels: the bins add up to
    the image's mean chroma, and grey pixels weigh nothing.  A rotation of every pixel's chroma by
    ``t`` degrees shifts the histogram by ``t`` (exactly, up to binning).  Images over
    :data:`HUE_HIST_PIXELS` pixels are subsampled on a regular grid (every ``s``-th row and
    column): the statistic is pooled over seeds, whose differences dwarf the sampling error,
    and it keeps the cost of ``measure`` below a millisecond.  Rounded to 6 significant digits.
    """
    h, w = ctx.shape
    step = max(1, int(np.ceil(np.sqrt(h * w / HUE_HIST_PIXELS))))
    cb = ctx.ycc[1, ::step, ::step]
    cr = ctx.ycc[2, ::step, ::step]
    ang = np.arctan2(cr, cb)  # (-pi, pi]
    idx = np.floor(ang * np.float32(HUE_BINS / (2.0 * np.pi))).astype(np.intp)
    idx %= HUE_BINS
    mag = np.sqrt(np.square(cb) + np.square(cr))  # |(Cb, Cr)|: hypot, at a sixth of its cost
    hist = np.bincount(idx.ravel(), weights=mag.ravel(), minlength=HUE_BINS) / float(cb.size)
    return {"hue_hist": [float(f"{v:.6g}") for v in hist.tolist()]}
