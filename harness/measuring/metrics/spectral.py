"""Spectral metrics: band power, radially averaged power spectrum, periodic peaks.

The array functions are pure and work on ``scipy.fft`` spectra of float32
images in 8-bit code values.  Power is *mean square per pixel* (code²), so by
Parseval the band powers of an image plus its ``base`` residual sum to its
variance.  :func:`band_power`, :func:`spectrum` and :func:`periodic` are the
metric families that :func:`harness.measure` calls: each takes the shared
:class:`~harness.measuring.context.Context` and returns its ``MetricValues``,
slice names included.  The bands themselves are defined in
:mod:`harness.measuring.bands`; the periodic-peak detector in
:mod:`harness.measuring.metrics.peaks` (its names are re-exported here).
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
from harness.measuring.maps import SUB_BANDS
from harness.measuring.metrics import noise
from harness.measuring.metrics.peaks import CHANCE_PEAK_SHARE, PEAK_THRESHOLD, PEAK_WINDOW, periodic_power
from harness.measuring.result import MetricValues
from harness.measuring.sizecache import per_size
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


@per_size(16)
def _band_power_weights(h: int, w: int) -> np.ndarray:
    """``(n_bands, h*wr)``: squared band response times rfft multiplicity, over (h w)².

    Built in place, one float32 step at a time (the same numbers as the one expression
    ``band_filters ** 2 * rfft_weights / (h w)²``, without its temporaries).
    """
    wt = np.square(band_filters(h, w))
    wt *= rfft_weights(h, w)
    wt = wt.reshape(len(BAND_CENTERS), -1)
    wt /= np.float32(h * w) ** 2
    wt.setflags(write=False)
    return wt


def band_power_spectral(spec: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Whole-image band power per channel, ``(C, n_bands)``, computed in the frequency domain.

    ``spec`` is ``rfft2`` of ``(C, H, W)`` images.  Equals the mean square of
    the band-passed image (Parseval).
    """
    p = (spec.real**2 + spec.imag**2).reshape(spec.shape[0], -1)
    return (p @ _band_power_weights(*shape).T).astype(np.float64)


@per_size(16)
def _radial_onehot(h: int, w: int) -> np.ndarray:
    """``(n_bins, h*wr)`` float32 bin membership times rfft weight (its row sums: :func:`_radial_counts`)."""
    idx = _radial_bins(h, w).ravel()
    nb = len(RADIAL_EDGES) - 1
    onehot = (idx[None, :] == np.arange(nb)[:, None]).astype(np.float32) * rfft_weights(h, w).ravel()[None, :]
    onehot.setflags(write=False)
    return onehot


@lru_cache(maxsize=16)
def _radial_counts(h: int, w: int) -> np.ndarray:
    """The row sums of :func:`_radial_onehot` (full-plane coefficients per bin, float64), without the
    one-hot matrix: sums of the weights 1 and 2 are whole numbers, exact in float64 in any order."""
    idx = _radial_bins(h, w).ravel()
    keep = idx >= 0
    out = np.bincount(idx[keep], weights=rfft_weights(h, w).ravel()[keep], minlength=len(RADIAL_EDGES) - 1)
    out.setflags(write=False)
    return out


def radial_centers() -> list[float]:
    """Geometric centres (cycles/pixel) of the :data:`RADIAL_EDGES` bins: the ``f=`` of ``spectrum`` slices."""
    e = np.asarray(RADIAL_EDGES)
    return list(np.sqrt(e[:-1] * e[1:]))


def spectral_sums(spec: np.ndarray, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """:func:`band_power_spectral` of the chroma channels ``spec[1:]`` of ``spec`` ``(3, H, W//2+1)``
    (row 0, luma, is left 0: luma's whole-image band power comes from its band images) and the
    radial bin sums of luma that :func:`radial_psd` averages, from one read of the spectrum.

    With numba (:func:`harness.measuring.compiled.kernels`) a single kernel pass; else the two numpy
    functions.  Returns ``(band power (3, n_bands), radial sums (n_bins,))``, float64.
    """
    from harness.measuring.compiled import kernels

    k = kernels()
    h, w = shape
    bp = np.zeros((spec.shape[0], len(BAND_CENTERS)))
    if k is None:
        onehot = _radial_onehot(h, w)
        bp[1:] = band_power_spectral(spec[1:], shape)
        return bp, (onehot @ (spec[0].real**2 + spec[0].imag**2).ravel()).astype(np.float64)
    radial = np.zeros(len(RADIAL_EDGES) - 1)
    weights = _band_power_weights(h, w).reshape(len(BAND_CENTERS), h, -1)
    flat = np.ascontiguousarray(spec, dtype=np.complex64).view(np.float32)
    runs, runs_at = _radial_runs(h, w)
    k.spectrum_sums(flat, weights, _weight_rows(h, w), 1, runs, runs_at, rfft_weights(h, w)[0], bp, radial)
    return bp, radial


@lru_cache(maxsize=16)
def _weight_rows(h: int, w: int) -> np.ndarray:
    """``(n_bands, h)`` bool: which ``rfft2`` rows hold a nonzero band-power weight of each band."""
    out = (_band_power_weights(h, w).reshape(len(BAND_CENTERS), h, -1) != 0).any(axis=2)
    out.setflags(write=False)
    return out


@lru_cache(maxsize=16)
def _radial_runs(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """The :func:`_radial_bins` of each ``rfft2`` row as runs of columns: ``(n, 3)`` int64 rows
    ``(start, end, bin)`` (bins only, no ``-1`` runs) and ``(h + 1,)`` offsets of each row's runs."""
    bins = _radial_bins(h, w)
    runs, at = [], [0]
    for row in bins:
        cut = np.flatnonzero(np.diff(row)) + 1
        starts, ends = np.r_[0, cut], np.r_[cut, row.size]
        runs += [(a, b, row[a]) for a, b in zip(starts.tolist(), ends.tolist()) if row[a] >= 0]
        at.append(len(runs))
    out = np.array(runs, dtype=np.int64).reshape(-1, 3), np.array(at, dtype=np.int64)
    for a in out:
        a.setflags(write=False)
    return out


@per_size(16)
def _radial_bins(h: int, w: int) -> np.ndarray:
    """``(h, w//2+1)`` int16: the :data:`RADIAL_EDGES` bin of each coefficient, -1 outside them."""
    f = radial_frequency(h, w)
    idx = np.searchsorted(np.asarray(RADIAL_EDGES), f, side="right") - 1
    out = np.where(idx < len(RADIAL_EDGES) - 1, idx, -1).astype(np.int16)
    out.setflags(write=False)
    return out


def radial_psd(spec_y: np.ndarray, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Radially averaged power spectral density of luma in half-octave bins.

    Returns ``(psd, n_coefficients)``; white noise of variance ``s²`` gives
    ``psd == s²`` in every bin.  Bins with no coefficient (tiny images) read 0.
    """
    h, w = shape
    onehot, counts = _radial_onehot(h, w), _radial_counts(h, w)
    p = (spec_y.real**2 + spec_y.imag**2).ravel()
    return _psd((onehot @ p).astype(np.float64), counts, h, w), counts / 2.0  # each complex coefficient twice


def _psd(sums: np.ndarray, counts: np.ndarray, h: int, w: int) -> np.ndarray:
    """Radial bin sums of ``|rfft2|²`` over their full-plane coefficient counts, per pixel; 0 for empty bins."""
    return np.where(counts > 0, sums / np.maximum(counts, 1.0) / (h * w), 0.0)


# --- metric families: Context -> {metric name: MetricValues} -----------------------------------


def _spectral(ctx: Context) -> tuple[np.ndarray, np.ndarray]:
    """:func:`spectral_sums` of ``ctx.spec``, computed once per image (``band_power`` and ``spectrum``
    both read it) and kept in ``ctx.memo``."""
    if "spectral_sums" not in ctx.memo:
        ctx.memo["spectral_sums"] = spectral_sums(ctx.spec, ctx.shape)
    return ctx.memo["spectral_sums"]


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
    chroma_bp = _spectral(ctx)[0][1:]  # (2, B): band_power_spectral of Cb, Cr
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
    counts = _radial_counts(h, w)
    psd = _psd(_spectral(ctx)[1], counts, h, w)
    ncoef = counts / 2.0
    share = 2.0 * ncoef / (h * w)  # full-plane coefficients in the bin over all of them
    std, bias = noise.psd_noise(psd, ncoef, ctx.sigma)
    return {"spectrum": MetricValues(_spectrum_names(), psd * share, std * share, bias * share)}


@lru_cache(maxsize=1)
def _periodic_names() -> tuple[str, ...]:
    return tuple(slice_name(band=b, ch="Y") for b in BAND_NAMES)


def periodic(ctx: Context) -> dict[str, MetricValues]:
    """``periodic`` (code²): luma power in narrow spectral peaks per band (micro-tiling), whole image."""
    if "periodic" not in ctx.memo:  # a large image's (computed before its spectrum was let go)
        ctx.memo["periodic"] = periodic_power(ctx.y, ctx.sigma, ctx.y_mean, ctx.spec[0])
    pk, std, bias = ctx.memo["periodic"]
    return {"periodic": MetricValues(_periodic_names(), pk, std, bias)}
