"""Whole-image luma spectra for image-to-image checks: the mirror-extended power spectrum, the
content scale a resize leaves in it, and the energy of the fine bands at that scale (the
cross-model ``cross_hf_energy`` check, :mod:`harness.checks.cross`).

Bands and their responses are the measuring bands' (:mod:`harness.measuring.bands`), so a
"high + top" energy here means what it means in a slice.
"""

from __future__ import annotations

import numpy as np

from harness.measuring.hue import luma_chroma

__all__ = ["luma_spectrum", "content_scale", "common_scale", "hf_energy", "HF_BANDS", "CLIFF_RATIO"]

HF_BANDS = ("high", "top")
CLIFF_RATIO = 0.005  # power density above / below a resize's Nyquist: measured ~0.001 (cliff), >= 0.012 (none)


def luma_spectrum(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(power, f)`` on the ``rfft2`` grid of the mirror-extended luma (periodic without a
    wrap-around edge): each coefficient's share of the mean-square luma (code values², DC
    removed, conjugate pairs counted twice), and its radial frequency (cycles/px)."""
    import scipy.fft as sfft

    from harness.measuring.bands import radial_frequency, rfft_weights

    y = luma_chroma(codes)[0]
    y = y - y.mean()
    ext = np.concatenate([y, y[::-1]], axis=0)
    ext = np.concatenate([ext, ext[:, ::-1]], axis=1)
    h, w = ext.shape
    power = (np.abs(sfft.rfft2(ext, workers=1)) ** 2) * rfft_weights(h, w) / float(h * w) ** 2
    return power, radial_frequency(h, w)


def _max_norm_frequency(power: np.ndarray) -> np.ndarray:
    """``max(|fy|, |fx|)`` on the ``rfft2`` grid of ``power`` (of a mirror-extended image: even width)."""
    h, w = power.shape[0], 2 * (power.shape[1] - 1)
    return np.maximum(np.abs(np.fft.fftfreq(h))[:, None], np.fft.rfftfreq(w)[None, :])


def _density(power: np.ndarray, fm: np.ndarray, lo: float, hi: float) -> float:
    """Mean power per coefficient with ``lo <= fm < hi`` (0 where there is none)."""
    sel = power[(fm >= lo) & (fm < hi)]
    return float(sel.mean()) if sel.size else 0.0


def content_scale(power: np.ndarray) -> int:
    """How many times (1, 2, 4 or 8) an image is larger than its content, from the spectral cliff
    a resize leaves at the content's Nyquist ``0.5/u`` cycles/px: the largest ``u`` for which the
    mean power per coefficient just above (``[0.625/u, 1/u)``, max-norm frequency: resizing is
    separable) is below :data:`CLIFF_RATIO` times that of the octave below (``[0.25/u, 0.5/u)``).
    A 64 px generator output resized to 256 px is 4 (~0.001: quantisation over content); a
    photograph is 1 (a natural spectrum falls by ~4x per octave, soft ones by <100x)."""
    fm = _max_norm_frequency(power)
    found = 1
    for u in (2, 4, 8):
        c = 0.5 / u
        below, above = _density(power, fm, 0.5 * c, c), _density(power, fm, 1.25 * c, 2 * c)
        if above < CLIFF_RATIO * below:
            found = u
    return found


def common_scale(power_a: np.ndarray, power_b: np.ndarray) -> int:
    """The content scale both sides are measured at: the sharper side's (the smaller), unless that
    side's smaller scale only means it has no cliff to find (a smooth image): when its power above
    the other's content Nyquist is within 4x of the other's (quantisation, measured), the larger."""
    ua, ub = content_scale(power_a), content_scale(power_b)
    if ua == ub:
        return ua
    (lo, p_lo), (hi, p_hi) = sorted(((ua, power_a), (ub, power_b)), key=lambda t: t[0])
    fm = _max_norm_frequency(power_a)
    band = (0.625 / hi, 1.0 / hi)
    return hi if _density(p_lo, fm, *band) <= 4.0 * _density(p_hi, fm, *band) else lo


def hf_energy(power: np.ndarray, f: np.ndarray, scale: int = 1) -> tuple[float, float]:
    """``(energy, floor)``: the luma energy (mean square, code values²) of the measuring bands
    ``high`` + ``top`` at content scale ``scale`` (their responses at ``f * scale``: everything
    above ``1/(4 scale)`` cycles/px, a raised-cosine ramp from ``1/(8 scale)``), and the
    quantisation floor ``BENIGN_LSB² x`` their gain."""
    from harness.measuring.bands import BAND_CENTERS, BAND_NAMES, _band_response, rfft_weights
    from harness.measuring.metrics.noise import BENIGN_LSB

    fs = f.astype(np.float64) * scale
    last = len(BAND_NAMES) - 1
    weight = sum(_band_response(fs, BAND_CENTERS[BAND_NAMES.index(b)], BAND_NAMES.index(b) == last) ** 2
                 for b in HF_BANDS)
    weight[0, 0] = 0.0  # the mean is never band energy
    h, w = f.shape[0], 2 * (f.shape[1] - 1)  # the mirror-extended image: even width
    gain = float((weight * rfft_weights(h, w)).sum()) / (h * w)  # share of white-noise power passed
    return float((power * weight).sum()), BENIGN_LSB ** 2 * gain
