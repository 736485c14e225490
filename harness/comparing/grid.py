"""Micro-tiling: the paired checks ``grid`` / ``ch=Y period=8`` and ``period=16``.

Each side's ``meta["grid_cells"]`` holds its mean ``p x p`` luma cell
(:mod:`harness.measuring.metrics.grid`); the content's own cell is the same on both sides, so
their difference is the pattern the candidate added (or lost)::

    value = ± mean_ij (D_ij - mean D)²,   D = M_c - M_b        (code²: the pattern's power)

signed ``+`` when the candidate's cell holds at least the baseline's power (a pattern added),
``-`` when it holds less (one taken away), so that swapping the sides negates it.

**Noise floor.**  Benign noise (std ``sigma`` per pixel, :mod:`harness.measuring.metrics.noise`)
moves each phase mean of ``n = H W / p²`` pixels by ``sigma / sqrt(n)`` on each side, so ``D``
carries ``2 sigma² / n`` of noise power per phase: ``bias = 2 sigma² / n``, and its spread over
``p² - 1`` free phases ``std = bias * sqrt(2 / (p² - 1))``.

**Allowance** (visibility model ``additive``, :mod:`harness.measuring.visibility`): a pattern is
an addition, visible when its RMS exceeds the visible change over the pattern both sides
already share, ``T(A_lo)²`` with ``A_lo²`` the smaller side's cell power -- 0.25 LSB² for a new
grid, so +-1 LSB (0.5 LSB²) fails and a JPEG re-encode's incoherent block errors do not::

    tol = T(A_lo)² + bias + k sqrt(2) std

Either sign fails past it: a grid that appears and one that vanishes are both a changed
image (the cross term with a grid already there can make an added pattern lower the cell's
power, so the sign says which side is stronger, not whether a pattern was added).  Measurements without
cells (baselines baked before them, images under ``MIN_CELLS * p`` px) get no check.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np

from harness.comparing.tolerance import CompareConfig, rule_or_visible
from harness.measuring.metrics.noise import BENIGN_LSB
from harness.measuring.visibility import visible_addition

__all__ = ["GRID_METRIC", "grid_checks"]

GRID_METRIC = "grid"


def _cells(meta: Mapping[str, Any]) -> dict[int, np.ndarray]:
    raw = meta.get("grid_cells")
    out: dict[int, np.ndarray] = {}
    if not isinstance(raw, Mapping):
        return out
    for key, vals in raw.items():
        try:
            p = int(key)
            arr = np.asarray(vals, dtype=np.float64)
        except (TypeError, ValueError):
            arr = np.array([math.nan])
            p = -1
        out[p] = arr
    return out


def grid_checks(baseline_meta: Mapping[str, Any], candidate_meta: Mapping[str, Any], config: CompareConfig,
                lsb: float = 1.0) -> list[tuple[str, float, float]]:
    """``(slice, value, tolerance)`` per period both sides have cells for (code²; NaN for a malformed cell).

    ``lsb`` is one quantisation step of the measured images (code values); the benign noise std
    is ``BENIGN_LSB * lsb`` and the candidate meta's ``height``/``width`` give the pixels per phase.
    """
    sigma = BENIGN_LSB * lsb
    cb, cc = _cells(baseline_meta), _cells(candidate_meta)
    try:
        n_px = float(candidate_meta["height"]) * float(candidate_meta["width"])
    except (KeyError, TypeError, ValueError):
        n_px = math.nan
    out = []
    for p in sorted(set(cb) & set(cc)):
        name = f"ch=Y period={p}"
        b, c = cb[p], cc[p]
        if p <= 0 or b.shape != (p * p,) or c.shape != (p * p,) or not (np.all(np.isfinite(b))
                                                                     and np.all(np.isfinite(c))):
            out.append((name, math.nan, math.nan))
            continue
        d = c - b
        power_b, power_c = float(np.mean(b * b)), float(np.mean(c * c))
        value = math.copysign(float(np.mean((d - d.mean()) ** 2)), power_c - power_b)
        bias = 2.0 * sigma * sigma * p * p / n_px
        std = bias * math.sqrt(2.0 / (p * p - 1))
        lo = min(power_b, power_c)
        allow = rule_or_visible(GRID_METRIC, name, value, float(visible_addition(lo, lsb)), config)
        out.append((name, value, allow + bias + config.k * math.sqrt(2.0) * std))
    return out
