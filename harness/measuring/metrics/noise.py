"""Noise floors derived from first principles.

A benign change -- a fresh re-quantisation, ``±1`` LSB of jitter, a ``+1`` LSB
offset -- perturbs every pixel by independent noise of variance at most
``sigma²``.  We take ``sigma = BENIGN_LSB`` LSB: uniform integer jitter in
``{-1, 0, 1}`` has variance 2/3 LSB², a random ``±1`` flip 1 LSB², a
re-quantisation adds 1/12 LSB²; 1.25 LSB (1.56 LSB²) covers all of them.
Values are in 8-bit code values, so for a 16-bit image one LSB is 255/65535.

For each slice we derive how far such noise can move the value:

``bias``  the systematic shift it causes (noise *adds* power to every band);
``std``   the standard deviation of the random part.

The comparison engine allows ``bias + k * std`` on top of the metric's own
tolerance, so a flat sky tile (whose top-band energy *is* quantisation noise)
is not flagged when the noise is re-drawn, while the same relative change in a
textured tile is.

Band power over ``n`` pixels with band gain ``G`` (the fraction of white-noise
power the band passes) and measured power ``E``::

    E' = E + (2/n) sum b (h*v) + (1/n) sum (h*v)^2
    bias = sigma² G
    std  = 2 sigma sqrt(E / n)           (cross term; |H| <= 1)
         + sigma² sqrt(2 G / n)          (noise power over ~n G degrees of freedom)
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "BENIGN_LSB",
    "CHANNEL_NOISE_GAIN",
    "power_noise",
    "mean_noise",
    "contrast_noise",
    "psd_noise",
    "hue_noise",
    "HUE_MIN_CHROMA",
    "CHROMA_NOISE_COV",
    "rotation_noise",
]

BENIGN_LSB = 1.25
# Share of per-pixel RGB noise variance that reaches each channel when the
# noise is independent per channel (BT.601): Y = 0.447, Cb = 0.388, Cr = 0.431.
# Correlated noise (the same offset on R, G and B) reaches Y fully and cancels
# in Cb/Cr, so Y takes 1 and the chroma channels their independent-noise gain.
CHANNEL_NOISE_GAIN = {
    "Y": 1.0,
    "Cb": 0.564**2 * ((1 - 0.114) ** 2 + 0.299**2 + 0.587**2),
    "Cr": 0.713**2 * ((1 - 0.299) ** 2 + 0.587**2 + 0.114**2),
}
# Below this mean chroma (code values) the hue of a slice is not defined.
HUE_MIN_CHROMA = 2.0
# Covariance of per-pixel (Cb, Cr) noise, in units of the per-channel RGB noise
# variance, for noise independent per channel (BT.601 rows Cb = 0.564 (B - Y),
# Cr = 0.713 (R - Y)): the diagonal is CHANNEL_NOISE_GAIN's Cb and Cr.
_CB_ROW = 0.564 * (np.array([0.0, 0.0, 1.0]) - np.array([0.299, 0.587, 0.114]))
_CR_ROW = 0.713 * (np.array([1.0, 0.0, 0.0]) - np.array([0.299, 0.587, 0.114]))
CHROMA_NOISE_COV = np.array([[_CB_ROW @ _CB_ROW, _CB_ROW @ _CR_ROW], [_CR_ROW @ _CB_ROW, _CR_ROW @ _CR_ROW]])


def power_noise(power: np.ndarray, n: np.ndarray | float, gain: np.ndarray | float,
                sigma: float, max_gain: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """(std, bias) of a mean-square band power over ``n`` pixels; see the module docstring.

    ``max_gain`` is ``max |H|²`` of the filter (1 for the bands, 8 for a 2-axis
    forward-difference gradient).
    """
    n = np.maximum(np.asarray(n, dtype=np.float64), 1.0)
    gain = np.asarray(gain, dtype=np.float64)
    s2 = sigma * sigma
    dof = n * np.minimum(gain, 1.0)  # independent samples of the filtered noise
    std = 2.0 * sigma * np.sqrt(max_gain * np.maximum(power, 0.0) / n) + s2 * gain * np.sqrt(2.0 / np.maximum(dof, 1.0))
    bias = np.broadcast_to(s2 * gain, np.shape(std)).astype(np.float64)
    return std, bias


def mean_noise(n: np.ndarray | float, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """(std, bias) of a mean over ``n`` pixels: ``sigma/sqrt(n)`` and a 1-LSB offset allowance."""
    n = np.maximum(np.asarray(n, dtype=np.float64), 1.0)
    std = sigma / np.sqrt(n)
    return std, np.full_like(std, sigma / BENIGN_LSB)


def contrast_noise(c: np.ndarray, n: np.ndarray | float, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """(std, bias) of an RMS contrast ``c``: adding variance ``sigma²`` moves it to ``sqrt(c²+sigma²)``."""
    n = np.maximum(np.asarray(n, dtype=np.float64), 1.0)
    c = np.asarray(c, dtype=np.float64)
    bias = np.sqrt(c * c + sigma * sigma) - c
    std = sigma * np.sqrt(2.0 / n)
    return std, bias


def psd_noise(psd: np.ndarray, n_coef: np.ndarray, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """(std, bias) of a periodogram averaged over ``n_coef`` independent coefficients.

    White noise of variance ``sigma²`` adds ``sigma²`` to every coefficient's
    expected power; the cross term fluctuates with ``sqrt(2 P sigma²)``.
    """
    n = np.maximum(np.asarray(n_coef, dtype=np.float64), 1.0)
    s2 = sigma * sigma
    std = np.sqrt(2.0 * np.maximum(psd, 0.0) * s2 / n) + s2 / np.sqrt(n)
    return std, np.full_like(std, s2)


def hue_noise(mean_chroma_vec: np.ndarray, n: np.ndarray | float, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """(std, bias) in degrees of the hue angle of a mean chroma vector of length ``|z|``.

    A perpendicular error ``e`` turns the angle by ``atan(e/|z|)``.  The random
    part is ``sigma/sqrt(n)``; the systematic allowance is half an LSB (per-channel
    rounding).  Below :data:`HUE_MIN_CHROMA` the hue is undefined: bias = 180°.
    """
    n = np.maximum(np.asarray(n, dtype=np.float64), 1.0)
    z = np.asarray(mean_chroma_vec, dtype=np.float64)
    zs = np.maximum(z, 1e-9)
    std = np.degrees(np.arctan(sigma / np.sqrt(n) / zs))
    bias = np.degrees(np.arctan(0.5 * sigma / zs))
    bias = np.where(z < HUE_MIN_CHROMA, 180.0, bias)
    return std, bias


def rotation_noise(z: np.ndarray, cell_rows: np.ndarray, cell_cols: np.ndarray, sigma: float) -> float:
    """Std (degrees) of the hue rotation ``arg sum_t conj(b_t) c_t`` estimated from one side's tile chroma.

    ``z`` is ``(rows, cols)`` complex: the mean chroma ``Cb + i Cr`` of every
    tile of a half-overlapping grid whose cells are ``cell_rows`` by
    ``cell_cols`` px (:func:`harness.measuring.tiles.cell_sizes`).  Tile
    ``(r, c)`` covers cells ``r..r+1`` by ``c..c+1`` (one cell where there is
    only one) and holds ``n_t`` pixels.

    Let ``b_t = z_t + eps_t`` with ``eps_t = (1/n_t) sum_{p in t} e_p`` the mean of
    per-pixel chroma noise ``e_p`` (independent per pixel, covariance
    ``sigma² CHROMA_NOISE_COV``).  To first order the angle moves by
    ``Im sum_t conj(z_t) eps_t / sum_t |z_t|²``, and the numerator is
    ``sum_p Im(conj(A_p) e_p)`` with ``A_p = sum_{t ∋ p} z_t / n_t``: the same for
    every pixel of a cell.  So, exactly (overlap included; the ``4 / n`` bound
    of four tiles per pixel is reached only where neighbouring tiles share one
    colour)::

        var = sigma² sum_cells n_cell (A_im, -A_re) C (A_im, -A_re)ᵀ,   C = CHROMA_NOISE_COV
        std = sqrt(var) / sum_t |z_t|²    (radians; returned in degrees)

    This is one side's noise: a comparison of two noisy sides allows ``sqrt(2)`` of it.
    Returns ``inf`` when every tile is grey.
    """
    z = np.asarray(z, dtype=np.complex128)
    ry = np.asarray(cell_rows, dtype=np.float64)
    rx = np.asarray(cell_cols, dtype=np.float64)
    rows, cols = z.shape
    sy = (0, 1) if ry.size == rows + 1 else (0,)
    sx = (0, 1) if rx.size == cols + 1 else (0,)
    if ry.size != rows - 1 + len(sy) or rx.size != cols - 1 + len(sx):
        raise ValueError(f"{rows}x{cols} tiles do not fit {ry.size}x{rx.size} cells")
    ty = ry[:-1] + ry[1:] if len(sy) == 2 else ry
    tx = rx[:-1] + rx[1:] if len(sx) == 2 else rx
    b = z / np.outer(ty, tx)
    a = np.zeros((ry.size, rx.size), np.complex128)
    for dy in sy:
        for dx in sx:
            a[dy:dy + rows, dx:dx + cols] += b
    u, v = a.imag, -a.real  # Im(conj(A) e) = A_re e_cr - A_im e_cb = -(u e_cb + v e_cr)
    c = CHROMA_NOISE_COV
    quad = c[0, 0] * u * u + 2.0 * c[0, 1] * u * v + c[1, 1] * v * v
    var = sigma * sigma * float(np.sum(np.outer(ry, rx) * quad))
    den = float(np.sum(np.abs(z) ** 2))
    if den <= 0.0:
        return math.inf
    return math.degrees(math.sqrt(var) / den)
