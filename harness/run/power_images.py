"""The images the seed-distribution power studies measure (:mod:`harness.run.power`,
:mod:`harness.run.power_nightly`): the ``face_gan`` backend's renders of chosen seeds, upscaled
as a pipeline would, and a hue rotation of them (the drift the studies must catch).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

__all__ = ["UPSCALERS", "BackendUnavailable", "face_images", "rotate_hue", "upscale"]

UPSCALERS = ("lanczos", "bicubic", "nearest")


def rotate_hue(image: np.ndarray, degrees: float) -> np.ndarray:
    """``image`` (uint8 RGB) with every pixel's chroma ``(Cb, Cr)`` rotated by ``degrees`` (hue + degrees).

    BT.601, as :func:`harness.measuring.channels.rgb_to_ycc`: luma is kept, the colour-difference
    vector is rotated and the inverse transform is exact before rounding to uint8 (clipping at 0
    and 255 is the only other change).
    """
    x = np.asarray(image, np.float64)
    y = x @ np.array([0.299, 0.587, 0.114])
    cb, cr = 0.564 * (x[..., 2] - y), 0.713 * (x[..., 0] - y)
    t = math.radians(degrees)
    cb2, cr2 = cb * math.cos(t) - cr * math.sin(t), cb * math.sin(t) + cr * math.cos(t)
    r = y + cr2 / 0.713
    b = y + cb2 / 0.564
    g = (y - 0.299 * r - 0.114 * b) / 0.587
    return np.clip(np.rint(np.stack([r, g, b], axis=-1)), 0, 255).astype(np.uint8)


class BackendUnavailable(RuntimeError):
    """A face GAN could not be rendered through the ``face_gan`` backend (weights or torch missing)."""


def face_images(model: str, seeds: Sequence[int]) -> np.ndarray:
    """``(N, 64, 64, 3)`` uint8: the ``face_gan`` backend's native renders of ``seeds``.

    Only through the backend: a rate measured on anything else would not be the backend's.
    Raises :class:`BackendUnavailable` (one line, naming the model) when it cannot render.
    """
    try:
        from harness.stages import StageContext, build_backend

        backend = build_backend("generate", "face_gan", {"model": model})
        placeholder = np.zeros((64, 64, 3), np.uint8)
        out = backend.generate_batch(placeholder, [StageContext(seed=int(s)) for s in seeds])
        return np.stack([np.asarray(r.image, np.uint8) for r in out])
    except Exception as exc:  # noqa: BLE001 - any failure to render is the same answer: no measurement
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise BackendUnavailable(f"face_gan model {model!r} cannot render: {first}") from exc


def upscale(images: np.ndarray, size: int = 256, method: str = "lanczos") -> list[np.ndarray]:
    """Each image resized to ``size`` x ``size`` with PIL's ``method`` (one of :data:`UPSCALERS`)."""
    from PIL import Image

    f = {"lanczos": Image.Resampling.LANCZOS, "bicubic": Image.Resampling.BICUBIC,
         "nearest": Image.Resampling.NEAREST}[method]
    return [np.asarray(Image.fromarray(np.asarray(a)).resize((size, size), f)) for a in images]
