"""Metric registry: every metric's name, unit, direction and default tolerance.

The metric *functions* live in the sibling modules (``spectral``, ``contrast``,
``color``, ``seams``, ``reference``; ``noise`` derives every slice's noise floor):
pure functions of arrays, plus one function per metric family that turns the
shared :class:`harness.measuring.context.Context` into its values and slice
names, which :func:`harness.measure` calls in turn.  This module holds only the
metadata the comparison engine needs, so importing it is cheap.

Direction says which change is a regression:

``both``      a change either way fails (lost texture *and* amplified noise);
``increase``  only an increase fails (e.g. new periodic peaks);
``decrease``  only a decrease fails (e.g. PSNR).

Tolerances combine as ``max(abs_tol, rel_tol * scale) + bias + k * sqrt(2) * min(std_b, std_c)``
where ``bias`` and ``std`` are the per-slice noise floor that the measurement
derived from the quantisation step (see :mod:`harness.measuring.metrics.noise`).
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.registry import Registry

__all__ = ["MetricSpec", "METRICS", "get_metric", "register_metric", "DIRECTIONS"]

DIRECTIONS = ("both", "increase", "decrease")


@dataclass(frozen=True)
class MetricSpec:
    """Metadata for one metric (torchmetrics-style: it lives beside the metric)."""

    name: str
    unit: str
    direction: str
    rel_tol: float
    abs_tol: float
    description: str
    gating: bool = True
    period: float | None = None  # circular metrics (hue): deltas wrap at this period

    def __post_init__(self) -> None:
        if self.direction not in DIRECTIONS:
            raise ValueError(f"metric {self.name!r}: direction must be one of {DIRECTIONS}, got {self.direction!r}")
        if self.rel_tol < 0 or self.abs_tol < 0:
            raise ValueError(f"metric {self.name!r}: tolerances must be >= 0")


METRICS: Registry[MetricSpec] = Registry("metric")


def register_metric(spec: MetricSpec) -> MetricSpec:
    METRICS.register(spec.name, spec)
    return spec


def get_metric(name: str) -> MetricSpec:
    return METRICS.resolve(name)


for _spec in (
    MetricSpec("band_power", "code²", "both", 0.10, 0.0,
               "mean square of the band-passed luma (per channel for the whole image): spectral energy per band"),
    MetricSpec("spectrum", "code²", "both", 0.15, 0.0,
               "radially averaged power spectral density of luma in half-octave bins (white noise of variance s² reads s²)"),
    MetricSpec("periodic", "code²", "increase", 0.25, 0.01,
               "luma power held in narrow spectral peaks per band (micro-tiling, repeated patterns)"),
    MetricSpec("contrast", "code", "both", 0.05, 0.0, "RMS contrast: standard deviation of luma"),
    MetricSpec("mean", "code", "both", 0.0, 1.0, "mean Y, Cb, Cr"),
    MetricSpec("chroma", "code", "both", 0.05, 0.5, "mean chroma magnitude |(Cb, Cr)| (saturation)"),
    MetricSpec("hue", "deg", "both", 0.0, 1.0, "hue angle of the mean chroma vector; undefined (skipped) at low chroma",
               period=360.0),
    MetricSpec("seam_step", "code", "both", 0.0, 1.0,
               "mean luma just inside the mask border minus just outside it"),
    MetricSpec("seam_profile", "code", "both", 0.0, 1.0,
               "mean luma in 1-px shells at signed distance d from the mask border (d < 0 inside)"),
    MetricSpec("seam_grad", "code²", "both", 0.10, 0.0,
               "mean squared luma gradient across the border (edge + ring)"),
    # numbers reported by the pipeline stages, compared like slices
    MetricSpec("detect_recall", "1", "decrease", 0.0, 0.05, "text detector recall against the ground-truth mask"),
    MetricSpec("detect_precision", "1", "decrease", 0.0, 0.05, "text detector precision against the ground truth"),
    MetricSpec("mask_coverage", "1", "both", 0.10, 0.002, "fraction of the image the shaped mask covers"),
    MetricSpec("mask_rejected", "1", "both", 0.0, 0.5, "1 when the mask stage rejected the mask (coverage gate)"),
    MetricSpec("anchor_clipped_px", "px", "both", 0.10, 16.0,
               "mask pixels clipped off protected texture anchors by the mask stage"),
    MetricSpec("psnr", "dB", "decrease", 0.0, 0.0, "PSNR of candidate against baseline (reference figure)", gating=False),
    MetricSpec("ssim", "1", "decrease", 0.0, 0.0, "SSIM of candidate against baseline (reference figure)", gating=False),
):
    register_metric(_spec)
