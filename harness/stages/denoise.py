"""denoise: one ``strength`` in [0, 1] per backend, mapped to its own parameters.

Strength 0 returns the input unchanged for every backend.

``nlmeans``    OpenCV fastNlMeansDenoisingColored, h = hColor = 20 * strength
``bilateral``  OpenCV bilateral filter, sigmaColor = 80 * strength, sigmaSpace = 1 + 4 * strength, d = 7
``tv``         scikit-image total-variation (Chambolle), weight = 0.15 * strength
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harness.stages.base import StageContext, StageResult, register, spec


class _Denoise:
    @dataclass(frozen=True)
    class Params:
        strength: float = spec(0.45, 0.0, 1.0)

    def __init__(self, params) -> None:
        self.params = params

    def apply(self, image: np.ndarray, s: float) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def __call__(self, image: np.ndarray, ctx: StageContext) -> StageResult:
        s = self.params.strength
        if s == 0:
            return StageResult(image=image.copy())
        return StageResult(image=self.apply(image, s))


@register("denoise", "nlmeans")
class NLMeans(_Denoise):
    def apply(self, image, s):
        import cv2

        h = 20.0 * s
        return cv2.fastNlMeansDenoisingColored(np.ascontiguousarray(image), None, h, h, 7, 21)


@register("denoise", "bilateral")
class Bilateral(_Denoise):
    def apply(self, image, s):
        import cv2

        return cv2.bilateralFilter(np.ascontiguousarray(image), 7, 80.0 * s, 1.0 + 4.0 * s)


@register("denoise", "tv")
class TotalVariation(_Denoise):
    def apply(self, image, s):
        from skimage.restoration import denoise_tv_chambolle

        out = denoise_tv_chambolle(image / 255.0, weight=0.15 * s, channel_axis=-1)
        return np.clip(np.rint(out * 255.0), 0, 255).astype(np.uint8)
