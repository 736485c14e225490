"""Spectral metrics: band power, radially averaged power spectrum, periodic peaks.

The array functions are pure and work on ``scipy.fft`` spectra of float32
images in 8-bit code values.  Power is *mean square per pixel* (code²), so by
Parseval the band powers of an image plus its ``base`` residual sum to its
variance.  :func:`band_power`, :func:`spectrum` and :func:`periodic` are the
metric families that :func:`harness.measure` calls: each takes the shared
:class:`~harness.measuring.context.Context` and returns its ``MetricValues``,
slice names included.  The bands themselves are defined in
:mod:`harness.measuring.bands`.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

from harness.measuring.bands import (
    BAND_CENTERS,
    BAND_NAMES,
    band_filters,
    band_gains,
    radial_frequency,
    rfft_weights,
)
from harness.measuring.channels import CHANNELS
from harness.measuring.metrics import noise
from harness.measuring.result import MetricValues
from harness.measuring.slices import SliceLayout, slice_name
from harness.measuring.tiles import tile_names

if TYPE_CHECKING:
    from harness.measuring.context import Context

__all__ = [
    "band_power",
    "spectrum",
    "periodic",
    "band_power_spectral",
    "radial_psd",
    "radial_centers",
    "RADIAL_EDGES",
    "periodic_power",
    "PEAK_THRESHOLD",
    "PEAK_WINDOW",
    "CHANCE_PEAK_SHARE",
]

# Half-octave radial bins from 1/64 cycle/px to the corner of the spectrum.
RADIAL_EDGES = tuple(float(x) for x in (1 / 64) * 2.0 ** (np.arange(12) / 2.0))
# See periodic_power.  CHANCE_PEAK_SHARE is the share of white noise's power
# that the detector calls peaks (measured: mean over 30 draws of 256² noise,
# 1.3e-4, doubled), the benign noise's own allowance.
PEAK_THRESHOLD = 6.0
CHANCE_PEAK_SHARE = 3e-4
PEAK_WINDOW = 7


@lru_cache(maxsize=16)
def _band_power_weights(h: int, w: int) -> np.ndarray:
    """``(n_bands, h*wr)``: squared band response times rfft multiplicity, over (h w)²."""
    wt = (band_filters(h, w) ** 2 * rfft_weights(h, w)).reshape(len(BAND_CENTERS), -1) / np.float32(h * w) ** 2
    wt.setflags(write=False)
    return wt


def band_power_spectral(spec: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Whole-image band power per channel, ``(C, n_bands)``, computed in the frequency domain.

    ``spec`` is ``rfft2`` of ``(C, H, W)`` images.  Equals the mean square of
    the band-passed image (Parseval).
    """
    p = (spec.real**2 + spec.imag**2).reshape(spec.shape[0], -1)
    return (p @ _band_power_weights(*shape).T).astype(np.float64)


@lru_cache(maxsize=16)
def _radial_onehot(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """``(n_bins, h*wr)`` float32 bin membership times rfft weight, and the bin counts."""
    f = radial_frequency(h, w).ravel()
    edges = np.asarray(RADIAL_EDGES)
    idx = np.searchsorted(edges, f, side="right") - 1
    nb = len(edges) - 1
    onehot = (idx[None, :] == np.arange(nb)[:, None]).astype(np.float32) * rfft_weights(h, w).ravel()[None, :]
    counts = onehot.sum(axis=1, dtype=np.float64)
    onehot.setflags(write=False)
    return onehot, counts


def radial_centers() -> list[float]:
    """Geometric centres (cycles/pixel) of the :data:`RADIAL_EDGES` bins: the ``f=`` of ``spectrum`` slices."""
    e = np.asarray(RADIAL_EDGES)
    return list(np.sqrt(e[:-1] * e[1:]))


def radial_psd(spec_y: np.ndarray, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Radially averaged power spectral density of luma in half-octave bins.

    Returns ``(psd, n_coefficients)``; white noise of variance ``s²`` gives
    ``psd == s²`` in every bin.  Bins with no coefficient (tiny images) read 0.
    """
    h, w = shape
    onehot, counts = _radial_onehot(h, w)
    p = (spec_y.real**2 + spec_y.imag**2).ravel()
    sums = (onehot @ p).astype(np.float64)
    psd = np.where(counts > 0, sums / np.maximum(counts, 1.0) / (h * w), 0.0)
    return psd, counts / 2.0  # each independent complex coefficient appears twice


@lru_cache(maxsize=8)
def _hann2d(h: int, w: int) -> np.ndarray:
    win = np.outer(np.hanning(h), np.hanning(w)).astype(np.float32)
    win.setflags(write=False)
    return win


@lru_cache(maxsize=8)
def _peak_bands(h: int, w: int) -> np.ndarray:
    """``(n_bands, h*wr)`` float32 hard octave membership times rfft weight (none below ``low``)."""
    f = radial_frequency(h, w)
    lo = np.asarray(BAND_CENTERS) / np.sqrt(2.0)
    idx = (np.searchsorted(lo, f, side="right") - 1).ravel()
    onehot = (idx[None, :] == np.arange(lo.size)[:, None]).astype(np.float32) * rfft_weights(h, w).ravel()[None, :]
    onehot.setflags(write=False)
    return onehot


@lru_cache(maxsize=8)
def _peak_band_counts(h: int, w: int) -> np.ndarray:
    """Full-plane coefficients per band of :func:`_peak_bands` (float64, ``(n_bands,)``)."""
    return _peak_bands(h, w).sum(axis=1).astype(np.float64)


def periodic_power(y: np.ndarray, sigma: float, y_mean: np.float32 | None = None
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Power held in narrow spectral peaks per band (code²), with its noise floor.

    ``y`` is luma ``(H, W)`` in code values.  The image is Hann-windowed (so
    the image border does not spread energy along the axes).  A Hann-windowed
    line spreads over a 3x3 main lobe, so each coefficient's 3x3 sum ``P3`` is
    compared with the mean power ``B`` of the surrounding ``PEAK_WINDOW``
    square less that 3x3; a local maximum with ``P3 > PEAK_THRESHOLD * 9 B``
    is a peak holding ``P3 - PEAK_THRESHOLD * 9 B`` (a soft threshold keeps
    the value continuous when a coefficient crosses it).  Power is normalised like band power:
    white noise of variance ``s²`` has total power ``s²``.

    ``y_mean`` is ``y.mean()`` where the caller has it already (the same float32 number).

    Returns ``(power, std, bias)`` per band.
    """
    import scipy.fft as sfft
    from scipy import ndimage

    h, w = y.shape
    win = _hann2d(h, w)
    # in-place float32 steps throughout: the same numbers as the plain expressions, fewer allocations
    yw = np.subtract(y, np.float32(y.mean() if y_mean is None else y_mean))
    yw *= win
    spec = sfft.rfft2(yw, workers=1)
    p = np.square(spec.real)
    p += np.square(spec.imag, out=yw[:, : p.shape[1]])
    mode = ("wrap", "nearest")
    p3 = ndimage.uniform_filter(p, size=3, mode=mode)
    p3 *= np.float32(9.0)
    bg9 = ndimage.uniform_filter(p, size=PEAK_WINDOW, mode=mode)  # the outer window's sum, less the lobe's:
    bg9 *= np.float32(PEAK_WINDOW**2)
    bg9 -= p3
    bg9 *= np.float32(9.0 / (PEAK_WINDOW**2 - 9))  # its mean power, over 9 coefficients
    over = np.subtract(p3, np.multiply(np.float32(PEAK_THRESHOLD), bg9, out=bg9), out=bg9)
    # Noise of variance sigma² adds sigma²/(h w) per coefficient in normalised
    # units, so it moves a 3x3 lobe of power P3 by delta = 2 sqrt(9 sigma² P3 / (h w))
    # (the cross term).  With m = over / delta, the soft-thresholded excess
    # max(0, over + delta Z) has second moment delta² g(m): g = 1 above the
    # threshold, (1 + m²) Phi(m) + m phi(m) below it -- a line just under the
    # threshold can cross, one far below cannot.  Variances of lobes add.
    norm = float(h * w) * _win_energy(h, w)
    s2 = 9.0 * sigma * sigma / (h * w)
    # delta = scale * root (raw units), wanted at the candidates only: the test below takes
    # -4 delta as (-4 scale) * root, the same float64 numbers (a power-of-two factor is exact)
    scale = 2.0 * np.sqrt(s2 * norm)
    root = np.sqrt(np.maximum(p3, np.float32(0.0)))
    # Candidates: within 4 noise std of the threshold -- and holding more than the benign noise's
    # own lobe power (s2 * norm): below that, noise added to the lobe and to its background
    # keeps it far under the threshold (a lobe needs PEAK_THRESHOLD times its background), and
    # a smooth image (an upscale) would otherwise make every empty coefficient a candidate.
    ys, xs = np.nonzero((over > (-4.0 * scale) * root) & (p3 > np.float32(s2 * norm)))
    keep = _local_max(p, ys, xs)
    ys, xs = ys[keep], xs[keep]
    onehot = _peak_bands(h, w)
    sel = onehot[:, ys * p.shape[1] + xs]
    o = over[ys, xs].astype(np.float64)
    # soft threshold: a coefficient crossing it adds nothing, so the value is continuous
    pk = (sel @ np.maximum(o, 0.0)) / norm
    d = scale * root[ys, xs].astype(np.float64)
    m = np.minimum(o / np.maximum(d, 1e-30), 0.0)
    from scipy.special import ndtr

    g = (1.0 + m * m) * ndtr(m) + m * np.exp(-0.5 * m * m) / np.sqrt(2.0 * np.pi)
    std = np.sqrt(sel @ (d * d * np.where(o >= 0, 1.0, g))) / norm
    n_coef = _peak_band_counts(h, w)
    bias = CHANCE_PEAK_SHARE * sigma * sigma * n_coef / (h * w)
    return pk, std, bias


_NEIGHBOURS = np.array([(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx])  # (8, 2)


def _local_max(p: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """Which of the coefficients ``(ys, xs)`` are maxima of their 3x3 neighbourhood.

    Only the few peak candidates are tested (a full maximum filter costs more
    than the FFT); rows wrap (vertical frequency is periodic), columns clamp.
    All eight neighbours are gathered in one ``(8, n)`` index.
    """
    h, w = p.shape
    yy = (ys[None, :] + _NEIGHBOURS[:, :1]) % h
    xx = np.clip(xs[None, :] + _NEIGHBOURS[:, 1:], 0, w - 1)
    flat = p.ravel()
    return (flat[ys * w + xs][None, :] >= flat[yy * w + xx]).all(axis=0)


@lru_cache(maxsize=8)
def _win_energy(h: int, w: int) -> float:
    return float((_hann2d(h, w).astype(np.float64) ** 2).sum())


# --- metric families: Context -> {metric name: MetricValues} -----------------------------------


@lru_cache(maxsize=32)
def _band_power_names(layout: SliceLayout, sub_rows: int, sub_cols: int, sub_bands: tuple[str, ...]
                      ) -> tuple[str, ...]:
    """Whole-image slices channel-major then band; local slices (luma only) band-major then location;
    then the sub-tiles of ``sub_bands`` (``band=top ch=Y sub=r7c9``), band-major."""
    return (tuple(slice_name(band=b, ch=c) for c in CHANNELS for b in BAND_NAMES)
            + tuple(slice_name(band=b, ch="Y", **loc) for b in BAND_NAMES for loc in layout.local)
            + tuple(slice_name(band=b, ch="Y", sub=t) for b in sub_bands for t in tile_names(sub_rows, sub_cols)))


def band_power(ctx: Context) -> dict[str, MetricValues]:
    """``band_power`` (code²): mean square of each band-passed channel per slice.

    Whole image: Y, Cb and Cr (chroma in the frequency domain, Parseval: no
    band images are formed for it); tiles and regions: luma only, averaged
    from the squared band images in ``ctx.sums``; sub-tiles (half the tile
    size, ``sub=rIcJ``): luma in the ``high`` and ``top`` bands only, where
    small local damage to fine texture shows.
    """
    h, w = ctx.shape
    n_img = float(h * w)
    n = ctx.sums.n
    band_sq = ctx.sums.mean("band_sq")  # (B, S)
    chroma_bp = band_power_spectral(ctx.spec[1:], (h, w))  # (2, B)
    bp_glob = np.concatenate([band_sq[:, 0][None], chroma_bp])  # (3, B)
    bp_local = band_sq[:, 1:]  # (B, T [+R])
    values = np.concatenate([bp_glob.ravel(), bp_local.ravel()])
    n_px = np.concatenate([np.full(bp_glob.size, n_img), np.tile(n[1:], len(BAND_NAMES))])
    gains = band_gains(h, w)
    # a chroma channel sees only its share of per-pixel RGB noise (see noise.CHANNEL_NOISE_GAIN)
    ch_gain = np.repeat([noise.CHANNEL_NOISE_GAIN[c] for c in CHANNELS], len(BAND_NAMES))
    gain = np.concatenate([np.tile(gains, 3) * ch_gain, np.repeat(gains, n.size - 1)])
    sub_rows = sub_cols = 0
    if ctx.sub is not None:
        from harness.measuring.context import SUB_BANDS

        sub_rows, sub_cols = ctx.sub.grid.rows, ctx.sub.grid.cols
        values = np.concatenate([values, ctx.sub.means.ravel()])
        n_px = np.concatenate([n_px, np.tile(ctx.sub.n, len(SUB_BANDS))])
        gain = np.concatenate([gain, np.repeat([gains[BAND_NAMES.index(b)] for b in SUB_BANDS], ctx.sub.n.size)])
        sub_bands = SUB_BANDS
    else:
        sub_bands = ()
    std, bias = noise.power_noise(values, n_px, gain, ctx.sigma)
    names = _band_power_names(ctx.layout, sub_rows, sub_cols, sub_bands)
    return {"band_power": MetricValues(names, values, std, bias)}


@lru_cache(maxsize=1)
def _spectrum_names() -> tuple[str, ...]:
    return tuple(slice_name(ch="Y", f=f"{c:.4f}") for c in radial_centers())


def spectrum(ctx: Context) -> dict[str, MetricValues]:
    """``spectrum`` (code²): luma power in each half-octave radial bin (the bins add up to the variance).

    The radially averaged power spectral density times the bin's share of the
    frequency plane: a power like ``band_power``'s, so a change reads as a
    change of the bin's RMS amplitude (white noise of variance ``s²`` puts
    ``s²`` times the share in each bin).
    """
    h, w = ctx.shape
    psd, ncoef = radial_psd(ctx.spec[0], ctx.shape)
    share = 2.0 * ncoef / (h * w)  # full-plane coefficients in the bin over all of them
    std, bias = noise.psd_noise(psd, ncoef, ctx.sigma)
    return {"spectrum": MetricValues(_spectrum_names(), psd * share, std * share, bias * share)}


@lru_cache(maxsize=1)
def _periodic_names() -> tuple[str, ...]:
    return tuple(slice_name(band=b, ch="Y") for b in BAND_NAMES)


def periodic(ctx: Context) -> dict[str, MetricValues]:
    """``periodic`` (code²): luma power in narrow spectral peaks per band (micro-tiling), whole image."""
    pk, std, bias = periodic_power(ctx.y, ctx.sigma, ctx.y_mean)
    return {"periodic": MetricValues(_periodic_names(), pk, std, bias)}
