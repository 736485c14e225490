"""Noise added everywhere: the paired checks ``noise`` / ``ch=CbCr`` and ``noise`` / ``ch=Y``.

Per-slice checks read a power increase as an amplitude change of the texture that is
there (contrast masking, :mod:`harness.comparing.tolerance`): an increase ``dP`` of a band
with amplitude ``A`` is allowed ``2 A T(A)``.  White noise added to the whole image is a
different change -- new content on top of the old, not a louder copy of it -- and that
reading lets it through: the noise raises every slice's power by about the same amount, and
every slice's allowance grows with the amplitude the noise itself adds.  Fine-scale chroma is
where the two readings part most: photographs (and rendered images) hold little colour
detail, benign changes that act on R, G and B alike (an offset, a luma rounding) put none
there, and noise drawn per channel puts 40 % of its power into each of Cb and Cr
(:data:`~harness.measuring.metrics.noise.CHANNEL_NOISE_GAIN`).

**The estimate.**  ``detail`` (mean squared gradient / 4) has unit gain for white noise, so
noise of variance ``v`` per R, G, B channel raises a tile's ``detail`` of Cb plus Cr by
``v (g_Cb + g_Cr)``.  Over the faintest half of the tiles -- ranked by
``min(P_b, P_c)`` of their Cb + Cr detail, the same ranking for either order of the pair --
the added variance is::

    value = mean_t (P_c,t - P_b,t) / (g_Cb + g_Cr)        (code², per R, G, B channel)

On faint tiles a change of the texture that is there moves little power, so textured
changes (sharpening, a saturation change, smoothing) read near 0 while noise reads its
variance: ``sigma = 2`` noise reads 4.0-4.1 on the held-out photographs, fresh +-1 LSB jitter
1.0 (``tests/comparing/test_sensitivity.py``).  Negative values are noise taken away.

**The allowance.**  Noise spread over the whole image changes every 32-px window by its own
RMS, so the project's visibility line applies to it directly: up to ``INVISIBLE_LSB`` (1.6
LSB RMS, the level of two renders with fresh +-1 LSB jitter) is invisible by definition,
which also covers the benign noise floor (``BENIGN_LSB`` = 1.25 < 1.6)::

    tol = INVISIBLE_LSB² lsb² + k sqrt(2) std,   std = 2 sqrt(sum_t std_t²) / m / (g_Cb + g_Cr)

with ``std_t`` each tile's benign-noise std (the smaller side's, as in
:func:`harness.comparing.engine.compare_paired`) and the factor 2 for half-overlapping tiles
(a pixel lies in up to four).  A ``[[tolerances]]`` rule for ``noise`` with ``abs_tol`` or
``rel_tol`` replaces ``INVISIBLE_LSB²``.

**Luma-only noise** (``ch=Y``: one draw added to R, G and B alike, as most grain and sensor-noise
models do) puts nothing into Cb or Cr; it raises the luma band powers of every tile by
``v G_b`` (``G_b`` the band's white-noise gain, :func:`~harness.measuring.bands.band_gains`).  A
luma tile power cannot tell that from a contrast change of the texture, which scales each band
by the same factor: ``1 + s``.  The two differ in spectral shape -- noise adds equal power per
unit bandwidth, a contrast change adds power in proportion to what each band holds, and photographs
hold far less in ``top`` than in ``high`` and ``mid`` -- so the ``mid``, ``high`` and ``top`` luma
powers of the tiles are fitted jointly (weighted least squares, weights ``1 / std²``)::

    P_c,b,t - P_b,b,t = v G_b + s min(P_b,b,t, P_c,b,t)

over the faintest :data:`LUMA_SHARE` of the tiles (ranked by ``top``; the loudest quarter,
where sharpening halos and codec ringing change texture in ways neither term describes, is left
out).  ``value = v`` (code², negative: luma noise taken away); contrast x0.95-x1.05 reads
< 0.8 code² where the tile power alone reads up to 9.  Its std is ``2 sqrt(cov_vv)`` (half-
overlapping tiles, as above) and the allowance is the same line, so ``sigma = 2`` luma noise
(``v`` = 4) fails and ``sigma = 1.5`` (2.25) passes.  When the tiles' spectra are too alike to
separate the two terms (a flat or white image), ``cov_vv`` and so the tolerance grow: the check
passes rather than guess.
"""

from __future__ import annotations

import math

import numpy as np

from harness.comparing.tolerance import CompareConfig, rule_or_visible
from harness.measuring.bands import BAND_NAMES, band_gains
from harness.measuring.metrics.noise import CHANNEL_NOISE_GAIN
from harness.measuring.result import Measurement
from harness.measuring.visibility import visible_noise

__all__ = ["NOISE_METRIC", "NOISE_SLICE", "LUMA_SLICE", "FAINT_SHARE", "LUMA_SHARE", "LUMA_BANDS", "added_noise",
           "added_luma_noise"]

NOISE_METRIC = "noise"
NOISE_SLICE = "ch=CbCr"
FAINT_SHARE = 0.5  # the faintest half of the tiles
LUMA_SLICE = "ch=Y"
LUMA_SHARE = 0.75  # the luma fit: all but the loudest quarter of the tiles
LUMA_BANDS = ("mid", "high", "top")  # low: too few degrees of freedom per 64-px tile
_GAIN = CHANNEL_NOISE_GAIN["Cb"] + CHANNEL_NOISE_GAIN["Cr"]


def _tile_detail(m: Measurement) -> dict[str, tuple[float, float]] | None:
    """``{tile: (Cb + Cr detail, its std)}`` from the ``detail`` metric; None without tiles."""
    mv = m.metrics.get("detail")
    if mv is None:
        return None
    acc: dict[str, list[float]] = {}
    for s, v, e in zip(mv.slices, mv.values.tolist(), mv.std.tolist()):
        tile, _, ch = s.partition(" ")
        if tile.startswith("tile=") and ch in ("ch=Cb", "ch=Cr"):
            a = acc.setdefault(tile, [0.0, 0.0, 0.0])
            a[0] += v
            a[1] += e * e
            a[2] += 1
    out = {t: (a[0], math.sqrt(a[1])) for t, a in acc.items() if a[2] == 2}
    return out or None


def added_noise(baseline: Measurement, candidate: Measurement, config: CompareConfig,
                lsb: float = 1.0) -> tuple[float, float] | None:
    """``(value, tolerance)`` of the ``noise`` / ``ch=CbCr`` check (code²), None when either side lacks
    tile ``detail`` or their tiles differ; NaN for non-finite inputs (the engine makes it an error).

    ``lsb`` is one quantisation step of the measured images (code values).
    """
    tb, tc = _tile_detail(baseline), _tile_detail(candidate)
    if tb is None or tc is None or tb.keys() != tc.keys():
        return None
    tiles = sorted(tb)
    pb = np.array([tb[t][0] for t in tiles])
    pc = np.array([tc[t][0] for t in tiles])
    sd = np.minimum([tb[t][1] for t in tiles], [tc[t][1] for t in tiles])
    if not (np.all(np.isfinite(pb)) and np.all(np.isfinite(pc)) and np.all(np.isfinite(sd))):
        return math.nan, math.nan
    m = max(1, int(round(FAINT_SHARE * len(tiles))))
    faint = np.argsort(np.minimum(pb, pc), kind="stable")[:m]
    value = float(np.mean(pc[faint] - pb[faint])) / _GAIN
    std = 2.0 * float(np.sqrt(np.sum(sd[faint] ** 2))) / m / _GAIN
    return value, _allowance(NOISE_SLICE, value, std, config, lsb)


def _allowance(slice_: str, value: float, std: float, config: CompareConfig, lsb: float) -> float:
    """The visibility line (or a ``[[tolerances]]`` rule's ``abs_tol``/``rel_tol``) plus ``k sqrt(2) std``."""
    allow = rule_or_visible(NOISE_METRIC, slice_, value, float(visible_noise(lsb)), config)
    return allow + config.k * math.sqrt(2.0) * std


def _luma_bands(m: Measurement) -> dict[tuple[str, str], tuple[float, float]] | None:
    """``{(band, tile): (luma power, its std)}`` of :data:`LUMA_BANDS` from ``band_power``; None without tiles."""
    mv = m.metrics.get("band_power")
    if mv is None:
        return None
    out = {}
    for s, v, e in zip(mv.slices, mv.values.tolist(), mv.std.tolist()):
        parts = s.split(" ")
        if len(parts) == 3 and parts[1].startswith("tile=") and parts[2] == "ch=Y":
            band = parts[0].removeprefix("band=")
            if band in LUMA_BANDS:
                out[band, parts[1]] = (v, e)
    return out or None


def _luma_gains(meta_b, meta_c) -> np.ndarray | None:
    """White-noise gain of each of :data:`LUMA_BANDS` for the measured size; None if the sides' sizes differ."""
    try:
        hw = (int(meta_b["height"]), int(meta_b["width"]))
        if hw != (int(meta_c["height"]), int(meta_c["width"])):
            return None
    except (KeyError, TypeError, ValueError):
        return None
    g = band_gains(*hw)
    return np.array([g[BAND_NAMES.index(b)] for b in LUMA_BANDS])


def added_luma_noise(baseline: Measurement, candidate: Measurement, config: CompareConfig,
                     lsb: float = 1.0) -> tuple[float, float] | None:
    """``(value, tolerance)`` of the ``noise`` / ``ch=Y`` check (code², luma), None when either side lacks tile
    luma band powers, their tiles or sizes differ; NaN for non-finite inputs (the engine makes it an error).

    ``value`` is ``v`` of the fit in the module docstring.
    """
    tb, tc = _luma_bands(baseline), _luma_bands(candidate)
    gains = _luma_gains(baseline.meta, candidate.meta)
    if tb is None or tc is None or tb.keys() != tc.keys() or gains is None:
        return None
    tiles = sorted({t for _b, t in tb})
    if set(tb) != {(b, t) for b in LUMA_BANDS for t in tiles}:
        return None
    pb, pc, sd = _arrays(tb, tc, tiles)
    if not (np.all(np.isfinite(pb)) and np.all(np.isfinite(pc)) and np.all(np.isfinite(sd))):
        return math.nan, math.nan
    m = max(2, int(round(LUMA_SHARE * len(tiles))))
    keep = np.argsort(np.minimum(pb[-1], pc[-1]), kind="stable")[:m]  # ranked by top
    v, var = _fit(pb[:, keep], pc[:, keep], sd[:, keep], gains)
    if not (math.isfinite(v) and math.isfinite(var)):
        return math.nan, math.nan
    std = 2.0 * math.sqrt(var)
    return v, _allowance(LUMA_SLICE, v, std, config, lsb)


def _arrays(tb: dict, tc: dict, tiles: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(P_b, P_c, std)``, each ``(len(LUMA_BANDS), tiles)``; std is the smaller side's, as for ``ch=CbCr``."""
    pb = np.array([[tb[b, t][0] for t in tiles] for b in LUMA_BANDS])
    pc = np.array([[tc[b, t][0] for t in tiles] for b in LUMA_BANDS])
    sd = np.minimum([[tb[b, t][1] for t in tiles] for b in LUMA_BANDS],
                    [[tc[b, t][1] for t in tiles] for b in LUMA_BANDS])
    return pb, pc, sd


def _fit(pb: np.ndarray, pc: np.ndarray, sd: np.ndarray, gains: np.ndarray) -> tuple[float, float]:
    """``(v, var v)`` of the weighted least-squares fit ``P_c - P_b = v G + s min(P_b, P_c)``.

    ``pb``, ``pc``, ``sd``: ``(len(LUMA_BANDS), tiles)`` (code²); ``gains``: ``(len(LUMA_BANDS),)``.

    The normal matrix is inverted with ``pinv``: when the content column is all zero (a flat image)
    the fit is ``v`` alone; when it is nearly parallel to the gains, ``var v`` grows instead of ``v``.
    """
    x = np.stack([np.broadcast_to(gains[:, None], pb.shape).ravel(), np.minimum(pb, pc).ravel()], axis=1)
    y = (pc - pb).ravel()
    w = 1.0 / np.maximum(sd.ravel(), 1e-12) ** 2
    cov = np.linalg.pinv(x.T @ (x * w[:, None]))
    beta = cov @ (x.T @ (w * y))
    return float(beta[0]), float(cov[0, 0])
