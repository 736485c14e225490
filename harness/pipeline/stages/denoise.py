"""denoise: one ``strength`` in [0, 1] per backend, mapped to its own parameters.

Strength 0 returns the input unchanged (bit-identical) for every backend;
larger strengths remove more noise (monotonic).  The mappings:

``nlmeans``    OpenCV ``fastNlMeansDenoisingColored``: h = hColor = 20 * s,
               template 7 px, search window 21 px
``bilateral``  OpenCV ``bilateralFilter``: d = 7 px, sigmaColor = 80 * s,
               sigmaSpace = 1 + 4 * s
``tv``         scikit-image ``denoise_tv_chambolle`` on [0, 1] floats:
               weight = 0.15 * s, per channel (``channel_axis=-1``)

(``wavelet`` is not offered: scikit-image's ``denoise_wavelet`` needs PyWavelets,
which is not a dependency.)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harness.imageio import float_to_uint8
from harness.pipeline.stages.base import BackendBase, StageContext, StageResult, cv2_module, register, spec

__all__ = ["NLMeans", "Bilateral", "TotalVariation"]


class _Denoise(BackendBase):
    @dataclass(frozen=True)
    class Params:
        strength: float = spec(0.45, 0.0, 1.0)

    def apply(self, image: np.ndarray, s: float) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def __call__(self, image: np.ndarray, ctx: StageContext) -> StageResult:
        s = float(self.params.strength)
        if s == 0.0:
            return StageResult(image=image.copy())
        return StageResult(image=self.apply(np.ascontiguousarray(image), s))


@register("denoise", "nlmeans")
class NLMeans(_Denoise):
    def apply(self, image, s):
        cv2 = cv2_module()
        h = 20.0 * s
        return cv2.fastNlMeansDenoisingColored(image, None, h, h, 7, 21)


@register("denoise", "bilateral")
class Bilateral(_Denoise):
    def apply(self, image, s):
        cv2 = cv2_module()
        return cv2.bilateralFilter(image, 7, 80.0 * s, 1.0 + 4.0 * s)


@register("denoise", "tv")
class TotalVariation(_Denoise):
    def apply(self, image, s):
        from skimage.restoration import denoise_tv_chambolle

        out = denoise_tv_chambolle(image.astype(np.float64) / 255.0, weight=0.15 * s, channel_axis=-1)
        return float_to_uint8(out)
