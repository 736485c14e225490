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
    onehot, _ = _radial_onehot(h, w)
    bp = np.zeros((spec.shape[0], len(BAND_CENTERS)))
    if k is None:
        bp[1:] = band_power_spectral(spec[1:], shape)
        return bp, (onehot @ (spec[0].real**2 + spec[0].imag**2).ravel()).astype(np.float64)
    radial = np.zeros(onehot.shape[0])
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


@lru_cache(maxsize=16)
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
    onehot, counts = _radial_onehot(h, w)
    p = (spec_y.real**2 + spec_y.imag**2).ravel()
    sums = (onehot @ p).astype(np.float64)
    psd = np.where(counts > 0, sums / np.maximum(counts, 1.0) / (h * w), 0.0)
    return psd, counts / 2.0  # each independent complex coefficient appears twice


@lru_cache(maxsize=8)
def _hann2d(h: int, w: int) -> np.ndarray:
    """The periodic Hann window ``(1 - cos(2 pi n / N)) / 2`` on both axes, ``(h, w)`` float32: its DFT
    has three taps, so it can also be applied to a spectrum (``_kernels.hann_spectrum``)."""
    win = np.outer(np.hanning(h + 1)[:h], np.hanning(w + 1)[:w]).astype(np.float32)
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


def periodic_power(y: np.ndarray, sigma: float, y_mean: np.float32 | None = None, spec_y: np.ndarray | None = None
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Power held in narrow spectral peaks per band (code²), with its noise floor.

    ``y`` is luma ``(H, W)`` in code values.  The image less its mean is Hann-windowed
    (periodic Hann on both axes, so the image border does not spread energy along the axes).  A
    Hann-windowed line spreads over a 3x3 main lobe, so each coefficient's 3x3 sum ``P3`` is
    compared with the mean power ``B`` of the surrounding ``PEAK_WINDOW``
    square less that 3x3; a local maximum with ``P3 > PEAK_THRESHOLD * 9 B``
    is a peak holding ``P3 - PEAK_THRESHOLD * 9 B`` (a soft threshold keeps
    the value continuous when a coefficient crosses it).  Power is normalised like band power:
    white noise of variance ``s²`` has total power ``s²``.  On the ``rfft2`` half-plane the
    vertical frequency wraps and the horizontal one is clamped at its ends.

    ``y_mean`` is ``y.mean()`` where the caller has it already; ``spec_y`` is ``rfft2(y)``
    where the caller has it: with the compiled kernels the window is then applied in the
    frequency domain (a 3-tap convolution per axis) instead of by a second transform.

    Returns ``(power, std, bias)`` per band.
    """
    import scipy.fft as sfft

    from harness.measuring.compiled import kernels

    h, w = y.shape
    k = kernels() if PEAK_WINDOW == 7 else None
    if k is not None and spec_y is not None:
        spec = np.empty(spec_y.shape, np.complex64)
        k.hann_spectrum(np.ascontiguousarray(spec_y, dtype=np.complex64), w, spec)
    else:
        # in-place float32 steps throughout: the same numbers as the plain expressions, fewer allocations
        yw = np.subtract(y, np.float32(y.mean() if y_mean is None else y_mean))
        yw *= _hann2d(h, w)
        spec = sfft.rfft2(yw, workers=1)
    norm = float(h * w) * _win_energy(h, w)
    s2 = 9.0 * sigma * sigma / (h * w)
    scale = 2.0 * np.sqrt(s2 * norm)
    # the outer window's sum less the lobe's is 40 coefficients of background: scaled to 9 of them
    # and by the threshold, what the lobe must exceed
    k_bg = -PEAK_THRESHOLD * 9.0 / (PEAK_WINDOW**2 - 9)
    if k is not None:
        n = spec.size
        ys, xs, p3, over = np.empty(n, np.int64), np.empty(n, np.int64), np.empty(n, np.float32), np.empty(n, np.float32)
        c = k.peak_candidates(spec, np.float32(k_bg), np.float32(4.0 * scale), np.float32(s2 * norm), ys, xs, p3, over)
        return _peak_sums(h, w, p3[:c], over[:c], ys[:c] * spec.shape[1] + xs[:c], scale, norm, sigma)
    r = PEAK_WINDOW // 2
    pad = _padded_power(spec, r, np.empty((h, spec.shape[1]), np.float32))
    p3, outer = _box_sums(pad, r)
    over = np.subtract(outer, p3, out=outer)
    over *= np.float32(k_bg)
    over += p3
    ys, xs = _candidates(pad, p3, over, r, scale, s2 * norm)
    return _peak_sums(h, w, p3[ys, xs], over[ys, xs], ys * p3.shape[1] + xs, scale, norm, sigma)


def _padded_power(spec: np.ndarray, r: int, scratch: np.ndarray) -> np.ndarray:
    """``|spec|²`` (float32) in the middle of a plane padded by ``r`` on every side: rows wrap
    (vertical frequency is periodic), columns repeat the first and last one (the half-plane's ends)."""
    h, wr = spec.shape
    pad = np.empty((h + 2 * r, wr + 2 * r), dtype=np.float32)
    mid = pad[r:r + h, r:r + wr]
    np.square(spec.real, out=mid)
    mid += np.square(spec.imag, out=scratch[:, :wr])
    pad[:r, r:r + wr] = mid[h - r:]
    pad[r + h:, r:r + wr] = mid[:r]
    pad[:, :r] = pad[:, r:r + 1]
    pad[:, r + wr:] = pad[:, r + wr - 1:r + wr]
    return pad


def _box_sums(pad: np.ndarray, r: int) -> tuple[np.ndarray, np.ndarray]:
    """3x3 and ``(2r+1)²`` box sums of the padded power plane over its middle: ``(P3, outer)``.

    Separable sums of shifted slices, the wider built from the narrower (a 7-sum is the
    3-sums two before and two after plus the centre), so every sum is a few float32
    additions of neighbours: no running sum, whose float32 cancellation would blur
    a faint coefficient beside a strong one.
    """
    assert r == 3, "the wide sum is built from 3-sums: PEAK_WINDOW must be 7"
    c3 = pad[:, :-2] + pad[:, 1:-1]
    c3 += pad[:, 2:]  # c3[:, j]: columns j..j+2 of pad
    c7 = c3[:, :-4] + c3[:, 4:]
    c7 += pad[:, 3:-3]  # c7[:, x]: columns x..x+6, centred on x + 3
    p3 = c3[2:-4, 2:-2] + c3[3:-3, 2:-2]
    p3 += c3[4:-2, 2:-2]
    r3 = c7[:-2] + c7[1:-1]
    r3 += c7[2:]
    outer = r3[:-4] + r3[4:]
    outer += c7[3:-3]
    return p3, outer


def _candidates(pad: np.ndarray, p3: np.ndarray, over: np.ndarray, r: int, scale: float, floor: float
                ) -> tuple[np.ndarray, np.ndarray]:
    """Coefficients ``(ys, xs)`` that may hold a peak: local maxima of the power within 4 noise std of the
    threshold (``over > -4 delta``, ``delta = scale sqrt(P3)``) whose lobe exceeds the benign noise's own
    lobe power ``floor``.

    Below that floor, noise added to the lobe and to its background keeps it far under the
    threshold (a lobe needs PEAK_THRESHOLD times its background), and a smooth image (an
    upscale) would otherwise make every empty coefficient a candidate.
    """
    t = np.sqrt(p3)
    t *= np.float32(4.0 * scale)
    t += over
    ok = t > 0.0
    ok &= p3 > np.float32(floor)
    ys, xs = np.divmod(np.flatnonzero(ok), p3.shape[1])
    # 3x3 local maxima, read from the padded plane: rows wrap, columns clamp
    wp = pad.shape[1]
    at = (ys + r) * wp + (xs + r)
    flat = pad.reshape(-1)
    nb = flat[at[None, :] + (_NEIGHBOURS[:, :1] * wp + _NEIGHBOURS[:, 1:])]
    keep = (flat[at][None, :] >= nb).all(axis=0)
    return ys[keep], xs[keep]


def _peak_sums(h: int, w: int, p3: np.ndarray, over: np.ndarray, flat: np.ndarray, scale: float, norm: float,
               sigma: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(power, std, bias)`` per band of the peaks with lobe sums ``p3`` and excesses ``over`` at ``flat``.

    Noise of variance sigma² adds sigma²/(h w) per coefficient in normalised
    units, so it moves a 3x3 lobe of power P3 by delta = 2 sqrt(9 sigma² P3 / (h w))
    (the cross term).  With m = over / delta, the soft-thresholded excess
    max(0, over + delta Z) has second moment delta² g(m): g = 1 above the
    threshold, (1 + m²) Phi(m) + m phi(m) below it -- a line just under the
    threshold can cross, one far below cannot.  Variances of lobes add.
    """
    from scipy.special import ndtr

    sel = _peak_bands(h, w)[:, flat]
    o = over.astype(np.float64)
    # soft threshold: a coefficient crossing it adds nothing, so the value is continuous
    pk = (sel @ np.maximum(o, 0.0)) / norm
    d = scale * np.sqrt(p3.astype(np.float64))
    m = np.minimum(o / np.maximum(d, 1e-30), 0.0)
    g = (1.0 + m * m) * ndtr(m) + m * np.exp(-0.5 * m * m) / np.sqrt(2.0 * np.pi)
    std = np.sqrt(sel @ (d * d * np.where(o >= 0, 1.0, g))) / norm
    bias = CHANCE_PEAK_SHARE * sigma * sigma * _peak_band_counts(h, w) / (h * w)
    return pk, std, bias


_NEIGHBOURS = np.array([(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx])  # (8, 2)


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
    chroma_bp = ctx.spectral[0][1:]  # (2, B): band_power_spectral of Cb, Cr
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
        from harness.measuring.maps import SUB_BANDS

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
    _, counts = _radial_onehot(h, w)
    psd = np.where(counts > 0, ctx.spectral[1] / np.maximum(counts, 1.0) / (h * w), 0.0)  # as radial_psd
    ncoef = counts / 2.0
    share = 2.0 * ncoef / (h * w)  # full-plane coefficients in the bin over all of them
    std, bias = noise.psd_noise(psd, ncoef, ctx.sigma)
    return {"spectrum": MetricValues(_spectrum_names(), psd * share, std * share, bias * share)}


@lru_cache(maxsize=1)
def _periodic_names() -> tuple[str, ...]:
    return tuple(slice_name(band=b, ch="Y") for b in BAND_NAMES)


def periodic(ctx: Context) -> dict[str, MetricValues]:
    """``periodic`` (code²): luma power in narrow spectral peaks per band (micro-tiling), whole image."""
    pk, std, bias = periodic_power(ctx.y, ctx.sigma, ctx.y_mean, ctx.spec[0])
    return {"periodic": MetricValues(_periodic_names(), pk, std, bias)}
