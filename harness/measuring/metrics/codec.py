"""Codec artifacts: block-grid edges (``blockiness``) and fine detail per channel (``detail``).

Both come from the squared forward differences that
:func:`harness.measuring.context.prepare` sums once per image over the whole
image and every tile (:data:`~harness.measuring.context.GRAD_MAPS`), so they
cost a few element-wise passes, no transform.

``blockiness`` (JND: one unit is a just-visible block edge)
    Block transforms (JPEG's 8x8 DCT, WebP's 16x16 macroblocks, JPEG's 4:2:0
    chroma on a 16-px grid) quantise each block on its own, so neighbouring
    pixels on either side of a block boundary differ by more than neighbours
    inside a block.  With ``E_on`` the mean squared difference across the
    boundaries of a ``g``-px grid (horizontal differences at ``x = g-1 (mod g)``,
    vertical ones at ``y = g-1 (mod g)``, the grid anchored at pixel (0, 0) as
    encoders place it) and ``E_off`` the mean over the differences on no 8-px
    boundary::

        blockiness = (E_on - E_off) / D(E_off)

    ``E_on - E_off`` is the excess energy of block edges (a natural image has no
    preferred grid and reads about 0, with scatter; a step ``s`` at every block
    edge adds ``s²``; texture flattened inside the blocks lowers ``E_off``).
    ``D`` (:func:`harness.measuring.visibility.block_threshold`) is the
    just-visible excess over an interior of energy ``E_off``: constant over flat
    interiors, growing as ``E_off ** 0.7`` over texture (activity masking, as in
    Wu & Yuen's generalized block-edge impairment metric, IEEE SPL 4(11), 1997,
    which weighs block-edge differences against the activity inside the blocks).
    Dividing by a function of the interior's energy also makes the value nearly
    indifferent to a plain contrast change of the whole texture.  Slices: the
    whole image per channel (``ch=Y grid=8``, ``ch=Cb grid=16``, ...) and every
    tile for luma (``tile=r3c5 ch=Y grid=8``).  Energies are in 8-bit code
    values whatever the bit depth, so the value is too.

``detail`` (code²)
    Mean squared gradient (both forward differences) divided by 4, its value
    for white noise of unit variance: fine-detail power in the units of
    ``band_power``, where an amplitude change reads as one.  Slices: the whole
    image per channel and every tile for Cb and Cr -- chroma subsampling and
    colour denoising flatten chroma edges that luma slices cannot see.

Noise floors (benign noise ``n`` of variance ``sigma²`` per pixel, white; a
chroma channel sees ``CHANNEL_NOISE_GAIN`` of it, the cross terms keep the full
``sigma`` as ``band_power`` does).  A difference ``d`` becomes ``d + delta`` with
``var delta = 2 sigma²``:

* ``detail`` is a band power of the gradient filter (gain 1 in these units,
  ``max |H|² = 8/4 = 2``): :func:`~harness.measuring.metrics.noise.power_noise`.
* ``blockiness``: ``E[delta²]`` is the same on and off the grid, so the excess
  has no bias; ``D`` grows with the ``2 sigma²`` noise adds to ``E_off``, which
  shrinks the value a little (the bias).  The random part is the cross term
  ``2 d delta`` -- on the grid the differences are ``g`` px apart and
  independent, ``var = 8 sigma² E_on / n_on``; off the grid neighbouring
  differences share a pixel, ``var <= 16 sigma² E_off / n_off`` -- plus the
  noise power ``delta²`` (``var = 8 sigma⁴`` per difference, ``12 sigma⁴`` off the
  grid), added in quadrature, over ``D``.  Measured on jitter it overstates the
  real scatter by about 1.5x.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

from harness.measuring.channels import CHANNELS
from harness.measuring.metrics import noise
from harness.measuring.result import MetricValues
from harness.measuring.slices import SliceLayout, slice_name
from harness.measuring.visibility import block_threshold

if TYPE_CHECKING:
    from harness.measuring.context import Context

__all__ = ["blockiness", "detail", "blockiness_jnd", "DETAIL_SCALE"]

# mean squared 2-axis forward-difference gradient of unit white noise: 2 + 2
DETAIL_SCALE = 4.0


def blockiness_jnd(e_on: np.ndarray, n_on: np.ndarray, e_off: np.ndarray, n_off: np.ndarray, sigma: float,
                   gain: float | np.ndarray = 1.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(value, std, bias)`` of ``(E_on - E_off) / D(E_off)`` from the mean squared differences on and off the grid.

    ``D`` is :func:`harness.measuring.visibility.block_threshold`; see the module
    docstring for the noise model.  ``gain`` is the channel's share of the
    per-pixel noise variance (1 for luma).
    """
    e_on = np.maximum(np.asarray(e_on, dtype=np.float64), 0.0)
    e_off = np.maximum(np.asarray(e_off, dtype=np.float64), 0.0)
    n_on = np.maximum(n_on, 1.0)
    n_off = np.maximum(n_off, 1.0)
    s1 = sigma * sigma
    s2 = s1 * np.asarray(gain, dtype=np.float64)
    den = block_threshold(e_off)
    value = (e_on - e_off) / den
    # cross terms 2 d delta: on the grid the differences share no pixel, var 8 sigma² E_on / n_on; off it
    # neighbours share one, var <= 16 sigma² E_off / n_off; noise power delta²: var 8 sigma⁴ per difference,
    # 12 sigma⁴ off the grid (neighbouring delta² are correlated).  The parts are added in quadrature
    # (the on/off covariance through the pixels they share is of order n_on / n_off = 1/8 of the total).
    var_b = (8.0 * s1 * e_on / n_on + 16.0 * s1 * e_off / n_off + 8.0 * s2 * s2 / n_on + 12.0 * s2 * s2 / n_off)
    std = np.sqrt(var_b) / den
    # benign noise adds 2 s2 to the interior energy, and D grows with it: the value shrinks that much
    bias = np.abs(value) * (1.0 - den / block_threshold(e_off + 2.0 * s2))
    return value, std, bias


@lru_cache(maxsize=32)
def _block_names(layout: SliceLayout, grids: tuple[int, ...]) -> tuple[str, ...]:
    return (tuple(slice_name(ch=c, grid=str(g)) for c in CHANNELS for g in grids)
            + tuple(slice_name(ch="Y", grid=str(g), tile=t) for g in grids for t in layout.tiles))


def blockiness(ctx: Context) -> dict[str, MetricValues]:
    """``blockiness`` (JND): excess squared difference across block boundaries; see the module docstring."""
    from harness.measuring.context import BLOCK_GRIDS

    d = ctx.diffs
    n_off = d.n_all - d.n_grid[8]
    off_mean = (d.total("grad_y") - d.total("grid8_y")) / np.maximum(n_off, 1.0)
    glob: dict[tuple[str, int], tuple[float, float, float]] = {}
    local = []
    for g in BLOCK_GRIDS:  # luma: whole image (column 0) and tiles at once
        on_mean = d.total(f"grid{g}_y") / np.maximum(d.n_grid[g], 1.0)
        v, sd, b = blockiness_jnd(on_mean, d.n_grid[g], off_mean, n_off, ctx.sigma)
        glob["Y", g] = (float(v[0]), float(sd[0]), float(b[0]))
        local.append((v[1:], sd[1:], b[1:]))
    for ci, ch in enumerate(CHANNELS[1:]):  # chroma: whole image only
        gain = noise.CHANNEL_NOISE_GAIN[ch]
        eo = (d.total(f"grad_{ch.lower()}")[0] - d.chroma_grid[ci, BLOCK_GRIDS.index(8)]) / max(float(n_off[0]), 1.0)
        for j, g in enumerate(BLOCK_GRIDS):
            eon = d.chroma_grid[ci, j] / max(float(d.n_grid[g][0]), 1.0)
            v, sd, b = blockiness_jnd(np.array(eon), d.n_grid[g][0], np.array(eo), n_off[0], ctx.sigma, gain)
            glob[ch, g] = (float(v), float(sd), float(b))
    head = np.array([glob[c, g] for c in CHANNELS for g in BLOCK_GRIDS])  # (6, 3)
    values = np.concatenate([head[:, 0], *(x[0] for x in local)])
    std = np.concatenate([head[:, 1], *(x[1] for x in local)])
    bias = np.concatenate([head[:, 2], *(x[2] for x in local)])
    return {"blockiness": MetricValues(_block_names(ctx.layout, BLOCK_GRIDS), values, std, bias)}


@lru_cache(maxsize=32)
def _detail_names(layout: SliceLayout) -> tuple[str, ...]:
    return (tuple(slice_name(ch=c) for c in CHANNELS)
            + tuple(slice_name(ch=c, tile=t) for c in CHANNELS[1:] for t in layout.tiles))


def detail(ctx: Context) -> dict[str, MetricValues]:
    """``detail`` (code²): mean squared gradient / 4 per channel (whole image) and per tile for Cb, Cr."""
    d = ctx.diffs
    n_px = ctx.sums.n[: 1 + ctx.grid.rows * ctx.grid.cols]  # pixels per location: whole image, tiles
    per = {c: d.total(f"grad_{c.lower()}") / (DETAIL_SCALE * n_px) for c in CHANNELS}
    values = np.concatenate([np.array([per[c][0] for c in CHANNELS]), per["Cb"][1:], per["Cr"][1:]])
    n = np.concatenate([np.full(3, n_px[0]), n_px[1:], n_px[1:]])
    t = n_px.size - 1
    gain = np.concatenate([[noise.CHANNEL_NOISE_GAIN[c] for c in CHANNELS],
                           np.full(t, noise.CHANNEL_NOISE_GAIN["Cb"]), np.full(t, noise.CHANNEL_NOISE_GAIN["Cr"])])
    std, bias = noise.power_noise(values, n, gain, ctx.sigma, max_gain=8.0 / DETAIL_SCALE)
    return {"detail": MetricValues(_detail_names(ctx.layout), values, std, bias)}
