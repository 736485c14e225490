"""The periodic-peak detector behind the ``periodic`` metric: power in narrow spectral peaks per band.

Micro-tiling and other repeated patterns put their power into a few narrow lines of the
spectrum.  :func:`periodic_power` finds them in the Hann-windowed luma spectrum and sums
their excess over the local background per octave band, with the noise floor a benign
re-quantisation gives that sum.  The metric family that reports it is
:func:`harness.measuring.metrics.spectral.periodic`.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from harness.measuring.bands import BAND_CENTERS, radial_frequency, rfft_weights
from harness.measuring.sizecache import per_size

__all__ = ["periodic_power", "PEAK_THRESHOLD", "PEAK_WINDOW", "CHANCE_PEAK_SHARE"]

# See periodic_power.  CHANCE_PEAK_SHARE is the share of white noise's power
# that the detector calls peaks (measured: mean over 30 draws of 256² noise,
# 1.3e-4, doubled), the benign noise's own allowance.
PEAK_THRESHOLD = 6.0
CHANCE_PEAK_SHARE = 3e-4
PEAK_WINDOW = 7


@per_size(8)
def _hann2d(h: int, w: int) -> np.ndarray:
    """The periodic Hann window ``(1 - cos(2 pi n / N)) / 2`` on both axes, ``(h, w)`` float32: its DFT
    has three taps, so it can also be applied to a spectrum (``_kernels.hann_spectrum``)."""
    win = np.outer(np.hanning(h + 1)[:h], np.hanning(w + 1)[:w]).astype(np.float32)
    win.setflags(write=False)
    return win


@per_size(8)
def _peak_bands(h: int, w: int) -> np.ndarray:
    """``(n_bands, h*wr)`` float32 hard octave membership times rfft weight (none below ``low``).

    Band by band from a compact index (int8), without whole-plane int64 and bool temporaries.
    """
    f = radial_frequency(h, w)
    lo = np.asarray(BAND_CENTERS) / np.sqrt(2.0)
    idx = np.empty(f.size, np.int8)  # -1 (below low) .. n_bands - 1
    flat_f = f.reshape(-1)
    step = 1 << 20
    for i in range(0, f.size, step):
        idx[i:i + step] = np.searchsorted(lo, flat_f[i:i + step], side="right") - 1
    wt = rfft_weights(h, w).reshape(-1)
    onehot = np.empty((lo.size, f.size), np.float32)
    for b in range(lo.size):
        np.multiply(idx == b, wt, out=onehot[b])
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
        wr = spec.shape[1]
        # the candidates alone, so that the spectrum and the image-sized buffers go before _peak_sums
        flat, p3, over = ys[:c] * wr + xs[:c], p3[:c].copy(), over[:c].copy()
        del spec, ys, xs
        return _peak_sums(h, w, p3, over, flat, scale, norm, sigma)
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
    e = _hann2d(h, w).astype(np.float64)
    return float(np.square(e, out=e).sum())  # in place: one float64 plane, not two
