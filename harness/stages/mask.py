"""mask: validate and shape a detected mask before inpainting.

``shape``  1. binarise the detection (``ctx.mask``) at ``threshold``;
           1b. with ``protect_anchors`` and ``drop_anchor_regions`` > 0, drop each
              detected region (8-connected component) of which at least that share
              lies on a texture anchor: it is the anchor's own content, not an
              overlay (a text detector finds fine print as text, as it finds a
              caption); an overlay that only crosses an anchor is kept whole.  The
              dropped count is ``anchor_dropped_px`` (only when this is on);
           2. dilate it with a Euclidean disk of radius ``dilate_px``;
           3. with ``protect_anchors``, clip off the pixels that *dilation added*
              on top of a texture anchor (``ctx.anchors``): the detection itself
              is kept even where it lies on an anchor -- an overlay there must
              still be removed -- and the clipped count is ``anchor_clipped_px``;
           4. optionally feather (Gaussian, ``feather_px``) *outwards only*: the
              fill region (mask >= 0.5) is exactly the result of steps 1-3, the
              soft rim is for inpainters that blend; on anchors the rim stays
              below 0.5 (never enters the fill region);
           5. gate it: an empty mask or one whose coverage (fraction of pixels
              >= 0.5) exceeds ``max_coverage`` is *rejected*: ``info["rejected"]``
              says why and the mask is all zeros.  This is a reported outcome of
              the case, not an exception.

``info`` always has ``coverage``, ``dilate_px`` and ``anchor_clipped_px``
(``anchor_dropped_px`` too with ``drop_anchor_regions``);
``rejected`` (the reason, a string) only when the mask was rejected.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harness.errors import StageError
from harness.stages.base import BackendBase, StageContext, StageResult, register, spec
from harness.threads import cv2_module
from harness.stages.detect import disk

__all__ = ["Shape", "dilate", "drop_anchor_regions"]


def dilate(m: np.ndarray, r: int) -> np.ndarray:
    """Binary dilation of bool ``m`` by a Euclidean disk of radius ``r``."""
    if r <= 0:
        return m.copy()
    cv2 = cv2_module()
    return cv2.dilate(m.astype(np.uint8), disk(r), borderType=cv2.BORDER_CONSTANT, borderValue=0).astype(bool)


def drop_anchor_regions(det: np.ndarray, anchors: np.ndarray, share: float) -> tuple[np.ndarray, int]:
    """``det`` (bool ``(H, W)``) without its 8-connected regions of which at least ``share``
    of the pixels lie on ``anchors``; returns it and the number of pixels dropped."""
    cv2 = cv2_module()
    n, labels = cv2.connectedComponents(det.astype(np.uint8), connectivity=8)
    size = np.bincount(labels.ravel(), minlength=n)
    on_anchor = np.bincount(labels[anchors], minlength=n)
    drop = on_anchor >= share * size
    drop[0] = False  # label 0: the background
    gone = drop[labels]
    return det & ~gone, int(np.count_nonzero(gone))


@register("mask", "shape")
class Shape(BackendBase):
    @dataclass(frozen=True)
    class Params:
        max_coverage: float = spec(0.12, 0.0, 1.0)
        dilate_px: int = spec(2, 0, 64)
        feather_px: int = spec(0, 0, 32)
        threshold: float = spec(0.5, 0.01, 0.99)
        protect_anchors: bool = True
        # 0: off (the detection is kept even on anchors); e.g. 0.5: a region mostly on an anchor is dropped
        drop_anchor_regions: float = spec(0.0, 0.0, 1.0)

    def __call__(self, image: np.ndarray, ctx: StageContext) -> StageResult:
        p = self.params
        h, w = image.shape[:2]
        zeros = np.zeros((h, w), np.float32)
        info: dict = {"dilate_px": p.dilate_px, "coverage": 0.0, "anchor_clipped_px": 0}
        if ctx.mask is not None and np.shape(ctx.mask) != (h, w):
            raise StageError(f"mask backend 'shape': mask shape {np.shape(ctx.mask)} does not match the image {(h, w)}")
        det = np.asarray(ctx.mask) >= p.threshold if ctx.mask is not None else np.zeros((h, w), bool)
        anchors = None
        if p.protect_anchors and ctx.anchors is not None:
            anchors = np.asarray(ctx.anchors).astype(bool)
            if anchors.shape != (h, w):
                raise StageError(f"mask backend 'shape': anchors shape {anchors.shape} does not match the image "
                                 f"{(h, w)}")
            if p.drop_anchor_regions > 0:
                det, info["anchor_dropped_px"] = drop_anchor_regions(det, anchors, p.drop_anchor_regions)
        if not det.any():
            info["rejected"] = "empty mask"
            return StageResult(image=None, mask=zeros, info=info)
        grown = dilate(det, p.dilate_px)
        if anchors is not None:
            clip = grown & ~det & anchors
            info["anchor_clipped_px"] = int(clip.sum())
            grown &= ~clip
        out = grown.astype(np.float32)
        if p.feather_px:
            cv2 = cv2_module()
            k = 2 * p.feather_px + 1
            soft = cv2.GaussianBlur(out, (k, k), p.feather_px / 2.0, borderType=cv2.BORDER_REFLECT)
            rim = np.minimum(soft, 0.49)  # the rim never enters the fill region
            if anchors is not None:
                rim[anchors] = 0.0
            out = np.where(grown, 1.0, rim).astype(np.float32)
        coverage = float(np.count_nonzero(out >= 0.5)) / out.size
        info["coverage"] = round(coverage, 6)
        if coverage > p.max_coverage:
            info["rejected"] = f"coverage {coverage:.3f} > max_coverage {p.max_coverage:g}"
            return StageResult(image=None, mask=zeros, info=info)
        return StageResult(image=None, mask=out, info=info)
