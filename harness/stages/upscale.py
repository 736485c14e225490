"""upscale: enlarge by an integer ``scale`` (2..4).

``lanczos`` / ``bicubic`` / ``nearest``  OpenCV ``resize`` (INTER_LANCZOS4 / INTER_CUBIC /
                INTER_NEAREST)
``guided``      follows a full-resolution guide image from an earlier stage
                (``guide = "stage:source"``: the vector's source photograph), He et
                al.'s guided-filter model applied to the detail the input lacks; see
                :mod:`harness.stages.guided`, where it lives.
``edge_aware``  self-guided: interpolation constrained by a map of the input's own
                edges (``edges``: Canny, Sobel or a Felzenszwalb segmentation), bicubic
                within a region, nothing mixed across the map's edges (sharp steps, no
                ringing halo); :mod:`harness.stages.edge_aware`.
``realesrgan``  Real-ESRGAN with its real weights, and ``realcugan``, ``waifu2x``,
                ``realsr``: trained networks run by ncnn on the CPU, defined in
                :mod:`harness.stages.sr` (``RealESRGAN`` is re-exported here).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harness.stages.base import BackendBase, StageContext, StageResult, register, spec
from harness.threads import cv2_module
from harness.stages.sr import REALESRGAN_MODELS, RealESRGAN  # noqa: F401  (moved to sr)

__all__ = ["Lanczos", "Bicubic", "Nearest", "RealESRGAN", "REALESRGAN_MODELS"]


class _Resize(BackendBase):
    interp = "INTER_LANCZOS4"

    @dataclass(frozen=True)
    class Params:
        scale: int = spec(2, 2, 4)

    def __call__(self, image: np.ndarray, ctx: StageContext) -> StageResult:
        cv2 = cv2_module()
        h, w = image.shape[:2]
        s = self.params.scale
        return StageResult(image=cv2.resize(image, (w * s, h * s), interpolation=getattr(cv2, self.interp)))


@register("upscale", "lanczos")
class Lanczos(_Resize):
    interp = "INTER_LANCZOS4"


@register("upscale", "bicubic")
class Bicubic(_Resize):
    interp = "INTER_CUBIC"


@register("upscale", "nearest")
class Nearest(_Resize):
    interp = "INTER_NEAREST"
