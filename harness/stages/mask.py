"""mask: validate and shape a detected mask before inpainting.

``shape`` dilates the detection (disk of ``dilate_px``), optionally feathers it,
and gates it: an empty mask or one covering more than ``max_coverage`` of the
image is *rejected* -- a reported outcome of the case (``info["rejected"]``),
not a crash.  With ``protect_anchors`` the pixels that dilation added on top of
a texture anchor are clipped off again (the detection itself is kept: an
overlay on an anchor must still go) and counted in ``anchor_clipped_px``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harness.stages.base import StageContext, StageResult, register, spec


def _disk_dilate(m: np.ndarray, r: int) -> np.ndarray:
    if r <= 0:
        return m.copy()
    import cv2

    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
    return cv2.dilate(m.astype(np.uint8), k).astype(bool)


@register("mask", "shape")
class Shape:
    @dataclass(frozen=True)
    class Params:
        max_coverage: float = spec(0.12, 0.0, 1.0)
        dilate_px: int = spec(2, 0, 64)
        feather_px: int = spec(0, 0, 32)
        threshold: float = spec(0.5, 0.01, 0.99)
        protect_anchors: bool = True

    def __init__(self, params: "Shape.Params") -> None:
        self.params = params

    def __call__(self, image: np.ndarray, ctx: StageContext) -> StageResult:
        p = self.params
        h, w = image.shape[:2]
        src = ctx.mask if ctx.mask is not None else np.zeros((h, w), np.float32)
        det = src >= p.threshold
        info: dict = {"dilate_px": p.dilate_px, "coverage": 0.0, "anchor_clipped_px": 0}
        if not det.any():
            info["rejected"] = "empty mask"
            return StageResult(image=None, mask=np.zeros((h, w), np.float32), info=info)
        grown = _disk_dilate(det, p.dilate_px)
        if p.protect_anchors and ctx.anchors is not None:
            clip = grown & ~det & ctx.anchors.astype(bool)
            info["anchor_clipped_px"] = int(clip.sum())
            grown &= ~clip
        out = grown.astype(np.float32)
        if p.feather_px:
            import cv2

            k = 2 * p.feather_px + 1
            soft = cv2.GaussianBlur(out, (k, k), p.feather_px / 2.0)
            out = np.maximum(out, soft)  # feather outwards only: never shrink the fill
            if p.protect_anchors and ctx.anchors is not None:
                out = np.where(ctx.anchors.astype(bool) & ~det, np.minimum(out, 0.49), out)
        coverage = float((out >= 0.5).mean())
        info["coverage"] = round(coverage, 6)
        if coverage > p.max_coverage:
            info["rejected"] = f"coverage {coverage:.3f} > max_coverage {p.max_coverage}"
            return StageResult(image=None, mask=np.zeros((h, w), np.float32), info=info)
        return StageResult(image=None, mask=out.astype(np.float32), info=info)
