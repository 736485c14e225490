"""Noise added everywhere: the paired check ``noise`` / ``ch=CbCr``.

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
"""

from __future__ import annotations

import math

import numpy as np

from harness.comparing.tolerance import CompareConfig, overridden, tolerance_arrays
from harness.measuring.metrics.noise import CHANNEL_NOISE_GAIN
from harness.measuring.result import Measurement
from harness.measuring.visibility import visible_noise

__all__ = ["NOISE_METRIC", "NOISE_SLICE", "FAINT_SHARE", "added_noise"]

NOISE_METRIC = "noise"
NOISE_SLICE = "ch=CbCr"
FAINT_SHARE = 0.5  # the faintest half of the tiles
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
    _spec, abs_t, rel_t, _dirs, _gate = tolerance_arrays(NOISE_METRIC, [NOISE_SLICE], config)
    if overridden(NOISE_METRIC, [NOISE_SLICE], config)[0]:
        allow = max(float(abs_t[0]), float(rel_t[0]) * abs(value))
    else:
        allow = float(visible_noise(lsb))
    return value, allow + config.k * math.sqrt(2.0) * std
