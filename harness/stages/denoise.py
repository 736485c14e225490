"""denoise: one ``strength`` in [0, 1] per backend, mapped to its own parameters.

Strength 0 returns the input unchanged (bit-identical) for every backend;
larger strengths remove more noise (monotonic).  The mappings:

``nlmeans``    OpenCV ``fastNlMeansDenoisingColored``: h = hColor = 20 * s,
               template 7 px, search window 21 px
``bilateral``  OpenCV ``bilateralFilter``: d = 7 px, sigmaColor = 80 * s,
               sigmaSpace = 1 + 4 * s
``tv``         scikit-image ``denoise_tv_chambolle`` on [0, 1] floats:
               weight = 0.15 * s, per channel (``channel_axis=-1``)

``oidn``       Intel Open Image Denoise (``pyoidn``; its trained ``RT`` network is compiled
               into the library, nothing is downloaded) on the CPU: the image as float32
               RGB in [0, 1]; ``hdr`` false: LDR input, as 8-bit images are (true
               takes the values as HDR radiance); ``srgb`` false hands OIDN the code
               values as if linear -- right for noise added to the code values: sigma
               25 on a 256x256 photo 20.8 -> 27.7 dB (26.1 dB with ``srgb`` true, 27.8
               with ``hdr`` true).  ``quality`` "fast" (27.4 dB) / "balanced" / "high"
               (on the CPU balanced and high give identical output).  ``threads`` sets the OIDN device's
               ``numThreads`` (0: the suite's ``threads``); thread affinity is not set.
               Output is bit-identical across runs and thread counts (tested).  The
               network has no strength knob: the result is blended with the input,
               ``input + strength (denoised - input)`` (default 1: the network's output).

(``wavelet`` is not offered: scikit-image's ``denoise_wavelet`` needs PyWavelets,
which is not a dependency.)
"""

from __future__ import annotations

import importlib.util
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from harness.errors import StageError
from harness.imageio import float_to_uint8
from harness.stages.base import BackendBase, StageContext, StageResult, register, spec
from harness.threads import cv2_module

__all__ = ["NLMeans", "Bilateral", "TotalVariation", "OIDN"]


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


_OIDN_LOCK = threading.Lock()


@lru_cache(maxsize=4)
def _oidn_filter(threads: int):
    """A committed OIDN CPU device with ``threads`` threads and its ``RT`` filter (cached; use under the lock)."""
    try:
        import pyoidn
    except ImportError as e:
        raise StageError(f"denoise backend 'oidn': pyoidn is not installed ({e})") from None
    dev = pyoidn.Device(pyoidn.OIDN_DEVICE_TYPE_CPU)
    dev.set_int("numThreads", threads)
    dev.set_bool("setAffinity", False)
    dev.commit()
    err = dev.get_error()
    if err:
        raise StageError(f"denoise backend 'oidn': device creation failed: {err}")
    return pyoidn, dev, pyoidn.Filter(dev, pyoidn.OIDN_FILTER_TYPE_RT)


@register("denoise", "oidn")
class OIDN(BackendBase):
    @dataclass(frozen=True)
    class Params:
        strength: float = spec(1.0, 0.0, 1.0)
        quality: str = spec("high", choices=("fast", "balanced", "high"))
        hdr: bool = False
        srgb: bool = False
        threads: int = spec(0, 0, 64)  # 0: the suite's `threads` (environment.configured_threads)

    def weight_paths(self) -> list[Path]:
        """OIDN's core library (its trained weights are compiled in) and CPU device library: hashed
        into the stage cache key, so another OIDN build invalidates cached results."""
        found = importlib.util.find_spec("pyoidn")
        if found is None or not found.origin:
            return []
        lib = Path(found.origin).parent / "oidn" / "lib"
        return sorted(p for p in lib.glob("libOpenImageDenoise_*.so*") if "core" in p.name or "device_cpu" in p.name)

    def num_threads(self) -> int:
        """OIDN's device ``numThreads``: the ``threads`` parameter, else the configured count."""
        from harness.threads import configured_threads

        return self.params.threads or configured_threads()

    def denoised(self, image: np.ndarray) -> np.ndarray:
        """The network's output for uint8 ``image``: float32 (H, W, 3), finite-checked."""
        p = self.params
        x = np.ascontiguousarray(image, dtype=np.float32) / np.float32(255.0)
        out = np.empty_like(x)
        with _OIDN_LOCK:
            oidn, dev, flt = _oidn_filter(self.num_threads())
            flt.set_image(oidn.OIDN_IMAGE_COLOR, x, oidn.OIDN_FORMAT_FLOAT3)
            flt.set_image(oidn.OIDN_IMAGE_OUTPUT, out, oidn.OIDN_FORMAT_FLOAT3)
            flt.set_bool("hdr", p.hdr)
            flt.set_bool("srgb", p.srgb)
            flt.set_quality({"fast": oidn.OIDN_QUALITY_FAST, "balanced": oidn.OIDN_QUALITY_BALANCED,
                             "high": oidn.OIDN_QUALITY_HIGH}[p.quality])
            flt.commit()
            flt.execute()
            err = dev.get_error()
            flt.unset_image(oidn.OIDN_IMAGE_COLOR)  # the filter holds raw pointers: drop them with the arrays
            flt.unset_image(oidn.OIDN_IMAGE_OUTPUT)
        if err:
            raise StageError(f"denoise backend 'oidn': {err}")
        if out.shape != x.shape or not np.all(np.isfinite(out)):
            raise StageError("denoise backend 'oidn': output is not a finite image of the input's size")
        return out

    def __call__(self, image: np.ndarray, ctx: StageContext) -> StageResult:
        s = float(self.params.strength)
        if s == 0.0:
            return StageResult(image=image.copy())
        y = self.denoised(image)
        if s < 1.0:
            x = image.astype(np.float32) / np.float32(255.0)
            y = x + np.float32(s) * (y - x)
        return StageResult(image=float_to_uint8(np.clip(y, 0.0, 1.0)), info={"quality": self.params.quality})
