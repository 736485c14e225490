"""inpaint: fill the masked pixels.

Soft masks are binarised at 0.5 for the fill region; every backend returns
``where(mask, filled, original)`` so unmasked pixels are bit-identical.

``telea`` / ``ns``   OpenCV's fast-marching (Telea) and Navier-Stokes inpainting
``biharmonic``      scikit-image biharmonic inpainting, restricted to a box around the mask
``patchmatch``      PatchMatch content-aware fill (pypatchmatch)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harness.stages.base import StageContext, StageResult, register, spec


def _binary(ctx: StageContext, shape) -> np.ndarray:
    if ctx.mask is None:
        return np.zeros(shape, bool)
    return np.asarray(ctx.mask) >= 0.5


def _compose(image: np.ndarray, filled: np.ndarray, m: np.ndarray) -> np.ndarray:
    return np.where(m[..., None], filled, image).astype(np.uint8)


class _Inpaint:
    def __init__(self, params) -> None:
        self.params = params

    def fill(self, image: np.ndarray, m: np.ndarray, ctx: StageContext) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def __call__(self, image: np.ndarray, ctx: StageContext) -> StageResult:
        m = _binary(ctx, image.shape[:2])
        if not m.any():
            return StageResult(image=image.copy(), info={"filled_px": 0})
        filled = self.fill(image, m, ctx)
        return StageResult(image=_compose(image, filled, m), info={"filled_px": int(m.sum())})


@register("inpaint", "telea")
class Telea(_Inpaint):
    @dataclass(frozen=True)
    class Params:
        radius: int = spec(3, 1, 32)

    method = "telea"

    def fill(self, image, m, ctx):
        import cv2

        flag = cv2.INPAINT_TELEA if self.method == "telea" else cv2.INPAINT_NS
        return cv2.inpaint(image, m.astype(np.uint8) * 255, float(self.params.radius), flag)


@register("inpaint", "ns")
class NavierStokes(Telea):
    method = "ns"


@register("inpaint", "biharmonic")
class Biharmonic(_Inpaint):
    @dataclass(frozen=True)
    class Params:
        margin: int = spec(8, 2, 64)

    def fill(self, image, m, ctx):
        from skimage.restoration import inpaint_biharmonic

        ys, xs = np.nonzero(m)
        y0, y1 = max(ys.min() - self.params.margin, 0), min(ys.max() + self.params.margin + 1, m.shape[0])
        x0, x1 = max(xs.min() - self.params.margin, 0), min(xs.max() + self.params.margin + 1, m.shape[1])
        out = image.copy()
        crop = inpaint_biharmonic(image[y0:y1, x0:x1] / 255.0, m[y0:y1, x0:x1], channel_axis=-1)
        out[y0:y1, x0:x1] = np.clip(np.rint(crop * 255.0), 0, 255).astype(np.uint8)
        return out


@register("inpaint", "patchmatch")
class PatchMatch(_Inpaint):
    @dataclass(frozen=True)
    class Params:
        patch_size: int = spec(5, 3, 15)

    def fill(self, image, m, ctx):
        from patchmatch import patch_match

        # PatchMatch draws random offsets from the C library's generator: seed it
        # from the case so a run is reproducible.
        patch_match.set_random_seed(int(ctx.seed)) if hasattr(patch_match, "set_random_seed") else None
        return patch_match.inpaint(image, mask=m.astype(np.uint8) * 255, patch_size=self.params.patch_size)
