"""``measure``: every slice value of one image -- the hot path.

:func:`~harness.measuring.context.prepare` validates the input and computes
what the metrics share once (one forward FFT for the three channels, one
inverse FFT per band for luma, one pass of tile and region sums); each metric
family in ``harness.measuring.metrics`` then turns that context into its
``MetricValues``, slice names included.  A windowed FFT for the peak detector
is the only other transform, and no Python loop runs over tiles or pixels.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from harness.measuring.context import DEFAULT_MASK_THRESHOLD, DEFAULT_RING, prepare
from harness.measuring.inputs import as_code_values, check_mask
from harness.measuring.metrics import codec, color, contrast, grid, seams, spectral
from harness.measuring.result import Measurement, MetricValues

__all__ = ["measure", "as_code_values", "check_mask", "DEFAULT_RING", "DEFAULT_MASK_THRESHOLD"]


def measure(image: Any, mask: Any = None, *, anchors: Any = None, tile: int | None = None,
            ring: int = DEFAULT_RING, mask_threshold: float = DEFAULT_MASK_THRESHOLD,
            lsb: float | None = None) -> Measurement:
    """Measure all slices of one image.

    Parameters
    ----------
    image : array, shape (H, W, 3)
        uint8, uint16, or float in [0, 1].
    mask : array, shape (H, W), optional
        Soft mask in [0, 1] (bool and uint8 accepted), thresholded at
        ``mask_threshold`` into inside / ring / outside regions.
    anchors : array, shape (H, W), optional
        Protected texture regions (bool or soft, thresholded at 0.5) measured as
        one more region, ``anchor``: fine print and microprinting that must keep
        their micro-texture whatever happens to the mask.
    tile : int, optional
        Tile size in pixels (even, >= 8); tiles overlap by half.  Default:
        64, or a quarter of the short side for images under 256 px.
    ring : int
        Width in pixels of the border ring outside the mask.
    lsb : float, optional
        Quantisation step in [0, 1] units for float input (default 1/255).

    Returns
    -------
    Measurement
        Values in 8-bit code values (power in code²), each with the noise
        ``std`` and ``bias`` that a benign ±1 LSB change could cause.

    Raises
    ------
    ValueError
        For a wrong shape, dtype, range, NaN/inf, or an empty/full mask.
    """
    ctx = prepare(image, mask, anchors=anchors, tile=tile, ring=ring, mask_threshold=mask_threshold, lsb=lsb,
                  readers=_spectrum_readers)
    metrics: dict[str, MetricValues] = {}
    metrics |= spectral.band_power(ctx)
    metrics |= spectral.spectrum(ctx)
    metrics |= spectral.periodic(ctx)
    metrics |= contrast.local_contrast(ctx)
    metrics |= color.mean_chroma_hue(ctx)
    metrics |= seams.seam_metrics(ctx)
    metrics |= codec.blockiness(ctx)
    metrics |= codec.detail(ctx)
    _check_finite(metrics)
    # + meta["hue_hist"] (distribution mode), meta["grid_cells"] (paired micro-tiling check)
    return Measurement(metrics, ctx.meta() | color.hue_histogram(ctx) | grid.grid_cells(ctx))


def _spectrum_readers(spec: np.ndarray, y: np.ndarray, y_mean: np.float32, sigma: float, memo: dict) -> None:
    """What the metrics read of a large image's spectrum, computed before :func:`prepare` lets it go:
    the periodic peaks and the spectral sums (into ``memo``, where :mod:`.metrics.spectral` looks first),
    and the small per-size figures read later, while their sources are at hand."""
    from harness.measuring.metrics.peaks import periodic_power
    from harness.measuring.sizecache import size_scope

    h, w = y.shape
    memo["periodic"] = periodic_power(y, sigma, y_mean, spec[0])
    with size_scope(spectral._radial_bins):
        spectral._radial_counts(h, w)
        memo["spectral_sums"] = spectral.spectral_sums(spec, (h, w))


def _check_finite(metrics: dict[str, MetricValues]) -> None:
    """Raise ``FloatingPointError`` if any value or noise floor is NaN or inf.

    Inputs were validated, so a non-finite number here is a bug in a metric,
    not an input error: it must not reach a baseline.  One sum over every
    array decides (it is finite when every entry is, unless it overflows); only
    then is each metric searched for the culprit.
    """
    arrays = [a for mv in metrics.values() for a in (mv.values, mv.std, mv.bias)]
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(np.concatenate(arrays).sum()):
            return
    for name, mv in metrics.items():
        if not (np.all(np.isfinite(mv.values)) and np.all(np.isfinite(mv.std)) and np.all(np.isfinite(mv.bias))):
            raise FloatingPointError(f"metric {name!r} produced NaN or inf")
