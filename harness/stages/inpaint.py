"""inpaint: fill the masked pixels.

The fill region is ``ctx.mask >= 0.5``: soft masks are binarised at 0.5 (a
feathered rim below 0.5 is left alone).  Every backend returns
``where(region, filled, original)``, so pixels outside the region are
bit-identical to the input; an empty or absent mask returns the input unchanged.
``info``: ``filled_px``.

``telea``       OpenCV fast-marching inpainting (Telea 2004), ``radius`` in px
``ns``          OpenCV Navier-Stokes inpainting (Bertalmio 2001), ``radius`` in px
``biharmonic``  scikit-image biharmonic inpainting, computed on the mask's bounding
                box plus ``margin`` px only (the solver needs a 2 px neighbourhood)
``patchmatch``  PatchMatch (Barnes 2009) via pypatchmatch; ``patch_size`` is the
                patch *radius* (patches are ``(2 p + 1)^2``); the random search is
                seeded with ``ctx.seed`` before every call, so equal inputs and
                seeds give bit-identical output (the native seed is global state:
                calls are serialised with a lock)
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from harness.imageio import float_to_uint8
from harness.stages.base import BackendBase, StageContext, StageResult, binary_mask, register, spec
from harness.threads import cv2_module

__all__ = ["Telea", "NavierStokes", "Biharmonic", "PatchMatch"]


class _Inpaint(BackendBase):
    def fill(self, image: np.ndarray, m: np.ndarray, ctx: StageContext) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def __call__(self, image: np.ndarray, ctx: StageContext) -> StageResult:
        m = binary_mask(ctx, image.shape[:2], f"inpaint backend {self.name!r}")
        if not m.any():
            return StageResult(image=image.copy(), info={"filled_px": 0})
        filled = np.asarray(self.fill(np.ascontiguousarray(image), m, ctx))
        out = np.where(m[..., None], filled, image).astype(np.uint8)
        return StageResult(image=out, info={"filled_px": int(m.sum())})


class _OpenCV(_Inpaint):
    @dataclass(frozen=True)
    class Params:
        radius: int = spec(3, 1, 32)

    flag = "INPAINT_TELEA"

    def fill(self, image, m, ctx):
        cv2 = cv2_module()
        return cv2.inpaint(image, m.astype(np.uint8) * 255, float(self.params.radius), getattr(cv2, self.flag))


@register("inpaint", "telea")
class Telea(_OpenCV):
    flag = "INPAINT_TELEA"


@register("inpaint", "ns")
class NavierStokes(_OpenCV):
    flag = "INPAINT_NS"


@register("inpaint", "biharmonic")
class Biharmonic(_Inpaint):
    @dataclass(frozen=True)
    class Params:
        margin: int = spec(8, 2, 64)

    def fill(self, image, m, ctx):
        from skimage.restoration import inpaint_biharmonic

        ys, xs = np.nonzero(m)
        g = self.params.margin
        y0, y1 = max(int(ys.min()) - g, 0), min(int(ys.max()) + g + 1, m.shape[0])
        x0, x1 = max(int(xs.min()) - g, 0), min(int(xs.max()) + g + 1, m.shape[1])
        out = image.copy()
        crop = inpaint_biharmonic(image[y0:y1, x0:x1].astype(np.float64) / 255.0, m[y0:y1, x0:x1],
                                  channel_axis=-1)
        out[y0:y1, x0:x1] = float_to_uint8(crop)
        return out


_PM_LOCK = threading.Lock()


@register("inpaint", "patchmatch")
class PatchMatch(_Inpaint):
    @dataclass(frozen=True)
    class Params:
        patch_size: int = spec(3, 1, 15)

    def fill(self, image, m, ctx):
        from patchmatch import patch_match

        with _PM_LOCK:
            patch_match.set_random_seed(int(ctx.seed) % 2**32)
            return patch_match.inpaint(image, mask=m.astype(np.uint8) * 255, patch_size=self.params.patch_size)
