"""upscale backend ``guided``: upsampling that follows a full-resolution guide image.

The guide (``guide = "stage:source"``) is an image from an earlier stage at the output's
resolution -- the vector's source photograph, of which the pipeline's input is a
low-resolution rendering (built by :mod:`harness.suite.guides`) -- so it carries detail
the input lacks, as the high-resolution image does in joint bilateral upsampling (Kopf et
al. 2007) and in the guided filter's upsampling (He, Sun & Tang 2010/2013; He & Sun 2015).
The self-guided mode, whose map comes from the input itself, is backend ``edge_aware``
(:mod:`harness.stages.edge_aware`).

**Model** -- He et al.'s local linear model with a colour guide (2013, eq. 14): in each window
``w_k`` of radius ``radius`` (output px) the base-upsampled input ``p`` (OpenCV bicubic, 0..1)
is fitted as an affine function of the guide *as the input's resolution sees it*,
``L = bicubic(area_downsample(I, scale))``: ``p_c ~ a_k[c] . L + b_k[c]`` with
``a_k[c] = (S_k + eps U)^-1 cov_k(L, p_c)`` (``S_k`` the 3x3 covariance of ``L`` in ``w_k``).
The fitted gains are then applied to what the guide holds beyond that resolution::

    q = p + a_bar . (I - L),    a_bar = the mean of a_k over the windows that contain the pixel

Where the guide is flat (``I = L``) this is exactly the base upsampler; across a step the input
cannot resolve ``a_bar`` is the step's gain and ``q`` steps as sharply as the guide.  ``eps``
(0..1 levels, squared) is He's regulariser: where the guide's local variance is well below
it (sigma << sqrt(eps)) no detail is transferred, so faint guide noise is not copied.

**Left out**: guide pixels in ``Guide.exclude`` (where the guide does not show the input's
content, e.g. overlays) and under the pipeline's mask ``ctx.mask`` (what was removed: there
the source still shows it).  A window is used only when neither it nor the footprint of ``L``
over it (``3 scale`` px: an area cell plus the bicubic taps) touches such a pixel; a pixel with
no usable window gets ``q = p``.  So no excluded guide pixel affects any output pixel, and the
excluded region itself is the base upsampler's.

**Sizes**: the guide must have the output's size, or be larger with its aspect ratio (within a
pixel), when it is area-downsampled to it (``info["guide_resized_from"]``); a smaller guide is
refused (StageError): enlarged, it would hold nothing finer than the input.

Cost: box filters by integral images (exact, windows clipped at the border) on ~21 channels
and a batched 3x3 solve: ~0.5 s for 256x256 -> 512x512 on one core.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harness.errors import ConfigError, StageError
from harness.stages.base import BackendBase, StageContext, StageResult, register, spec
from harness.threads import cv2_module
from harness.stages.guide import Guide

__all__ = ["Guided", "GUIDE_STAGES", "box_mean", "local_gains", "guided_upsample", "usable_windows"]

# The images a guide may name (``guide = "stage:<name>"``), built by harness.suite.guides.
GUIDE_STAGES = ("source",)
_LABEL = "upscale backend 'guided'"


def box_mean(a: np.ndarray, r: int) -> np.ndarray:
    """Mean of ``a`` ((H, W) or (H, W, C)) over the (2r+1)^2 window around each pixel, the window
    clipped at the image border (He's normalisation by the pixel count N); float64, by integral image."""
    a = np.asarray(a, np.float64)
    h, w = a.shape[:2]
    c = np.zeros((h + 1, w + 1) + a.shape[2:])
    c[1:, 1:] = a.cumsum(0).cumsum(1)
    y0, y1 = np.clip(np.arange(h) - r, 0, h), np.clip(np.arange(h) + r + 1, 0, h)
    x0, x1 = np.clip(np.arange(w) - r, 0, w), np.clip(np.arange(w) + r + 1, 0, w)
    total = c[y1][:, x1] - c[y0][:, x1] - c[y1][:, x0] + c[y0][:, x0]
    n = ((y1 - y0)[:, None] * (x1 - x0)[None, :]).astype(np.float64)
    return total / n.reshape(n.shape + (1,) * (a.ndim - 2))


def local_gains(low: np.ndarray, p: np.ndarray, r: int, eps: float) -> np.ndarray:
    """He's colour-guide coefficients ``a_k`` ((H, W, C, 3)): per window of radius ``r``, the
    ridge-regularised least-squares gains of ``p`` ((H, W, C)) on the guide ``low`` ((H, W, 3)),
    ``(cov(low) + eps I)^-1 cov(low, p_c)`` for each channel ``c``."""
    h, w = p.shape[:2]
    ml, mp = box_mean(low, r), box_mean(p, r)
    ll = box_mean((low[..., :, None] * low[..., None, :]).reshape(h, w, 9), r).reshape(h, w, 3, 3)
    lp = box_mean((low[..., :, None] * p[..., None, :]).reshape(h, w, -1), r).reshape(h, w, 3, p.shape[2])
    cov = ll - ml[..., :, None] * ml[..., None, :] + eps * np.eye(3)
    cross = lp - ml[..., :, None] * mp[..., None, :]
    return np.swapaxes(np.linalg.solve(cov, cross), -1, -2)


def usable_windows(exclude: np.ndarray | None, shape: tuple[int, int], r: int, reach: int) -> np.ndarray:
    """(H, W) float64, 1 where the window of radius ``r`` centred there lies more than ``reach`` px
    (chessboard) from every excluded pixel, else 0; all 1 without ``exclude``."""
    if exclude is None or not exclude.any():
        return np.ones(shape)
    cv2 = cv2_module()
    near = cv2.dilate(exclude.astype(np.uint8), np.ones((2 * reach + 1, 2 * reach + 1), np.uint8)) > 0
    return (box_mean(near, r) == 0).astype(np.float64)


def guided_upsample(image: np.ndarray, guide: np.ndarray, scale: int, radius: int, eps: float,
                    exclude: np.ndarray | None = None) -> tuple[np.ndarray, float]:
    """``image`` ((h, w, 3) uint8) enlarged ``scale`` times following ``guide`` ((h s, w s, 3) uint8),
    leaving out the guide where ``exclude`` ((h s, w s) bool) is set; see the module doc.
    Returns (float64 levels 0..255, unclipped; the share of output pixels the guide reached)."""
    cv2 = cv2_module()
    h, w = image.shape[:2]
    size = (w * scale, h * scale)
    p = cv2.resize(image.astype(np.float32) / 255, size, interpolation=cv2.INTER_CUBIC).astype(np.float64)
    g = guide.astype(np.float32) / 255
    low = cv2.resize(cv2.resize(g, (w, h), interpolation=cv2.INTER_AREA), size, interpolation=cv2.INTER_CUBIC)
    low = low.astype(np.float64)
    gains = local_gains(low, p, radius, eps)
    ok = usable_windows(exclude, p.shape[:2], radius, 3 * scale)
    den = box_mean(ok, radius)
    num = box_mean(gains.reshape(*p.shape[:2], -1) * ok[..., None], radius)
    reached = den > 1e-9
    a_bar = np.where(reached[..., None], num / np.maximum(den, 1e-9)[..., None], 0.0).reshape(gains.shape)
    q = p + np.einsum("hwcj,hwj->hwc", a_bar, g.astype(np.float64) - low)
    return q * 255, float(reached.mean())


def _fit_guide(guide: Guide, out_hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray | None, dict]:
    """The guide image and its exclusion at the output size (see "Sizes" in the module doc)."""
    g = np.asarray(guide.image)
    if g.ndim != 3 or g.shape[2] != 3 or g.dtype != np.uint8:
        raise StageError(f"{_LABEL}: guide {guide.name!r} must be (H, W, 3) uint8, got {g.shape} {g.dtype}")
    ex = None if guide.exclude is None else np.asarray(guide.exclude, bool)
    if ex is not None and ex.shape != g.shape[:2]:
        raise StageError(f"{_LABEL}: guide {guide.name!r} exclusion {ex.shape} does not match its image {g.shape[:2]}")
    (gh, gw), (oh, ow) = g.shape[:2], out_hw
    if (gh, gw) == (oh, ow):
        return g, ex, {}
    if gh < oh or gw < ow or abs(gw * oh / gh - ow) > 1:
        raise StageError(f"{_LABEL}: guide {guide.name!r} is {gw}x{gh}, the output {ow}x{oh}: a guide must have the "
                         f"output's size or be larger with its aspect ratio (a smaller one holds nothing finer "
                         f"than the input)")
    cv2 = cv2_module()
    g = cv2.resize(g, (ow, oh), interpolation=cv2.INTER_AREA)
    if ex is not None:
        ex = cv2.resize(ex.astype(np.float32), (ow, oh), interpolation=cv2.INTER_AREA) > 0
    return g, ex, {"guide_resized_from": f"{gw}x{gh}"}


@register("upscale", "guided")
class Guided(BackendBase):
    @dataclass(frozen=True)
    class Params:
        scale: int = spec(2, 2, 4)
        guide: str = spec("")  # "stage:<name>", <name> one of GUIDE_STAGES: required
        radius: int = spec(0, 0, 64)  # window radius, output px; 0: 2 x scale
        eps: float = spec(1e-4, 1e-8, 1.0)  # He's regulariser, (0..1 levels)^2

    def __init__(self, params) -> None:
        super().__init__(params)
        kind, colon, stage = params.guide.partition(":")
        allowed = ", ".join(f"stage:{s}" for s in GUIDE_STAGES)
        if not params.guide:
            raise ConfigError(f"{_LABEL}: parameter 'guide' is required, one of: {allowed} (a full-resolution "
                              f"image to follow); for upsampling led by the input's own edges use backend "
                              f"'edge_aware'")
        if kind != "stage" or not colon:
            raise ConfigError(f"{_LABEL}: guide {params.guide!r} is not 'stage:<name>'; allowed: {allowed}")
        if stage not in GUIDE_STAGES:
            raise ConfigError(f"{_LABEL}: guide {params.guide!r} names an unknown stage {stage!r}; allowed: {allowed}")
        self.guide_stage = stage  # read by the case runner, which builds ctx.guide

    def __call__(self, image: np.ndarray, ctx: StageContext) -> StageResult:
        p = self.params
        h, w = image.shape[:2]
        s = p.scale
        if ctx.guide is None:
            raise StageError(f"{_LABEL}: no guide image in the context (guide = {p.guide!r}: the case runner "
                             f"builds it; called directly, pass StageContext(guide=Guide(...)))")
        if ctx.guide.name != p.guide:
            raise StageError(f"{_LABEL}: the context's guide is {ctx.guide.name!r}, the backend was set up for "
                             f"{p.guide!r}")
        g, ex, info = _fit_guide(ctx.guide, (h * s, w * s))
        if ctx.mask is not None:  # what the pipeline removed: the source still shows it there
            if np.shape(ctx.mask) != (h, w):
                raise StageError(f"{_LABEL}: mask shape {np.shape(ctx.mask)} does not match the image {(h, w)}")
            removed = np.repeat(np.repeat(np.asarray(ctx.mask) > 0, s, axis=0), s, axis=1)
            ex = removed if ex is None else ex | removed
        r = p.radius or 2 * s
        q, reached = guided_upsample(image, g, s, r, p.eps, ex)
        out = np.clip(np.rint(q), 0, 255).astype(np.uint8)
        return StageResult(image=out, info={"guide": p.guide, "radius": r, "guided_share": round(reached, 6),
                                            "excluded_share": round(float(ex.mean()) if ex is not None else 0.0, 6),
                                            **info, **ctx.guide.info})
