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

Tolerances combine as ``max(abs_tol, rel_tol * scale, visible) + bias + k * sqrt(2) * min(std_b, std_c)``
where ``bias`` and ``std`` are the per-slice noise floor that the measurement
derived from the quantisation step (see :mod:`harness.measuring.metrics.noise`)
and ``visible`` is the change a viewer sees under the metric's ``visibility``
model (contrast masking, :mod:`harness.measuring.visibility`): ``amplitude`` for
a power, ``level`` for an amplitude, ``jnd`` for a value in just-visible units, ``additive`` for the power of an
overlay (what is added on top of the content).  Metrics with
a model have no hand-set ``rel_tol``/``abs_tol``; every one that remains says
why in the comment beside it.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.registry import Registry

__all__ = ["MetricSpec", "METRICS", "get_metric", "register_metric", "DIRECTIONS", "VISIBILITY_MODELS"]

DIRECTIONS = ("both", "increase", "decrease")
VISIBILITY_MODELS = ("amplitude", "level", "jnd", "additive")  # see harness.comparing.tolerance


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
    visibility: str | None = None  # contrast-masking model of the visible change (harness.comparing.tolerance)

    def __post_init__(self) -> None:
        if self.visibility is not None and self.visibility not in VISIBILITY_MODELS:
            raise ValueError(f"metric {self.name!r}: visibility must be one of {VISIBILITY_MODELS}, "
                             f"got {self.visibility!r}")
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
    MetricSpec("band_power", "code²", "both", 0.0, 0.0,
               "mean square of the band-passed luma (per channel for the whole image): spectral energy per band",
               visibility="amplitude"),
    MetricSpec("spectrum", "code²", "both", 0.0, 0.0,
               "luma power in half-octave radial frequency bins (the bins add up to the variance): spectral shape",
               visibility="amplitude"),
    # 25 % (+0.01 code²): a peak must grow by a quarter of its power -- chance peaks of textures
    # flicker across the detector's threshold by about that much; only growth fails
    MetricSpec("periodic", "code²", "increase", 0.25, 0.01,
               "luma power held in narrow spectral peaks per band (micro-tiling, repeated patterns)"),
    # paired only (harness.comparing.grid), from meta["grid_cells"]
    MetricSpec("grid", "code²", "both", 0.0, 0.0,
               "power of the luma pattern added (+) or taken away (-) every 8 (16) px: the difference of the two "
               "sides' mean cells (VAE-latent or block micro-tiling)", visibility="additive"),
    MetricSpec("contrast", "code", "both", 0.0, 0.0, "RMS contrast: standard deviation of Y, Cb and Cr",
               visibility="level"),
    # 1 code: a uniform shift of one LSB on top of the 1-LSB offset that the noise floor's bias allows
    MetricSpec("mean", "code", "both", 0.0, 1.0, "mean Y, Cb, Cr"),
    MetricSpec("chroma", "code", "both", 0.0, 0.0, "mean chroma magnitude |(Cb, Cr)| (saturation)",
               visibility="level"),
    # 1 degree: the rotation that counts as a regression however precisely it is measured (engine._hue_offset)
    MetricSpec("hue", "deg", "both", 0.0, 1.0, "hue angle of the mean chroma vector; undefined (skipped) at low chroma",
               period=360.0),
    # 1 code: a one-LSB step or shell offset across a mask border, the smallest seam a fill may leave
    MetricSpec("seam_step", "code", "both", 0.0, 1.0,
               "mean luma just inside the mask border minus just outside it"),
    MetricSpec("seam_profile", "code", "both", 0.0, 1.0,
               "mean luma in 1-px shells at signed distance d from the mask border (d < 0 inside)"),
    # 10 % (5 % of gradient amplitude): the border's own gradient energy, a fill's texture mismatch
    # right at the seam; the ring's band_power slices carry the visibility model
    MetricSpec("seam_grad", "code²", "both", 0.10, 0.0,
               "mean squared luma gradient across the border (edge + ring)"),
    MetricSpec("blockiness", "JND", "both", 0.0, 0.0,
               "excess squared difference across 8/16-px block boundaries over that inside the blocks, in units "
               "of a just-visible block edge (JPEG, WebP blocking)", visibility="jnd"),
    MetricSpec("detail", "code²", "both", 0.0, 0.0,
               "mean squared gradient / 4 per channel; per tile for Cb, Cr (chroma subsampling, colour smearing)",
               visibility="amplitude"),
    # paired only (harness.comparing.added_noise): its allowance is the visibility line itself
    MetricSpec("noise", "code²", "both", 0.0, 0.0,
               "variance of white noise added (negative: removed): per R, G, B channel from the fine chroma "
               "energy of the faintest half of the tiles (ch=CbCr); luma-only from a fit of the tiles' luma band "
               "powers that sets contrast changes apart (ch=Y)"),
    # numbers reported by the pipeline stages, compared like slices (counts and rates, not images:
    # their tolerances are product decisions, not visibility)
    MetricSpec("detect_recall", "1", "decrease", 0.0, 0.05, "text detector recall against the ground-truth mask"),
    MetricSpec("detect_precision", "1", "decrease", 0.0, 0.05, "text detector precision against the ground truth"),
    # 10 % (+0.2 % of the image): a mask a tenth larger or smaller is a different mask stage
    MetricSpec("mask_coverage", "1", "both", 0.10, 0.002, "fraction of the image the shaped mask covers"),
    MetricSpec("mask_rejected", "1", "both", 0.0, 0.5, "1 when the mask stage rejected the mask (coverage gate)"),
    # 10 % (+16 px): the clipped area moves with the mask's shape by about that much between backends
    MetricSpec("anchor_clipped_px", "px", "both", 0.10, 16.0,
               "mask pixels clipped off protected texture anchors by the mask stage"),
    MetricSpec("psnr", "dB", "decrease", 0.0, 0.0, "PSNR of candidate against baseline (reference figure)", gating=False),
    MetricSpec("ssim", "1", "decrease", 0.0, 0.0, "SSIM of candidate against baseline (reference figure)", gating=False),
):
    register_metric(_spec)
