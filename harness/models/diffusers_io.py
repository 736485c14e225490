"""Images in and out of the diffusers pipelines (:mod:`harness.models.diffusers_backends`):
sizes rounded up to multiples of 8 and resized back (Lanczos), float outputs to uint8 with
NaN/inf refused, a watch on the latents that stops a batch at its first non-finite sample, and
one batch job's bookkeeping."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from harness.errors import StageError

if TYPE_CHECKING:  # only _Job's annotation names it
    from harness.stages.base import StageContext

__all__ = ["_round8", "_resize", "_model_input", "_to_uint8", "_which", "_NaNWatch", "_Job"]


def _round8(n: int) -> int:
    return max(8, -(-int(n) // 8) * 8)


def _resize(arr: np.ndarray, w: int, h: int) -> np.ndarray:
    from PIL import Image

    if arr.shape[:2] == (h, w):
        return arr
    return np.asarray(Image.fromarray(arr).resize((w, h), Image.Resampling.LANCZOS))


def _model_input(image: np.ndarray) -> tuple[tuple[int, int], tuple[int, int], Any]:
    """``((h, w), (h8, w8), PIL image)``: the caller's size, the model's (multiples of 8) and the
    image resized to it."""
    from PIL import Image

    h, w = image.shape[:2]
    h8, w8 = _round8(h), _round8(w)
    return (h, w), (h8, w8), Image.fromarray(_resize(np.ascontiguousarray(image), w8, h8))


def _to_uint8(img: Any, label: str, which: str = "") -> np.ndarray:
    a = np.asarray(img, dtype=np.float32)
    if not np.all(np.isfinite(a)):
        raise StageError(f"{label}: the model produced NaN or inf pixels{which}")
    return np.round(np.clip(a, 0.0, 1.0) * 255.0).astype(np.uint8)


def _which(seeds: Sequence[int], bad: Sequence[int]) -> str:
    """``""`` for a lone sample (the one-by-one message), else which seeds of the batch."""
    if len(seeds) == 1:
        return ""
    return f" (seed {', '.join(str(seeds[i]) for i in bad)} of a batch of {len(seeds)})"


class _NaNWatch:
    """Checks the latents after every denoising step; the first NaN/inf stops the run with a clear reason."""

    def __init__(self, label: str, dtype: str, seeds: Sequence[int] = (0,)) -> None:
        self.label, self.dtype, self.seeds = label, dtype, list(seeds)

    def check(self, step: int, latents) -> None:
        import torch

        ok = torch.isfinite(latents).reshape(latents.shape[0], -1).all(dim=1).tolist()
        if not all(ok):
            bad = [i for i, good in enumerate(ok) if not good and i < len(self.seeds)]
            hint = " (a float16 overflow? try dtype = \"float32\" or \"bfloat16\")" if self.dtype == "float16" else ""
            raise StageError(f"{self.label}: the latents became NaN or inf at denoising step {step + 1}"
                             f"{_which(self.seeds, bad)}{hint}")

    def on_step_end(self, pipe, step, timestep, kwargs):  # diffusers' callback_on_step_end
        self.check(step, kwargs["latents"])
        return kwargs

    def legacy(self, step, timestep, latents):  # the upscaler's old-style callback(step, t, latents)
        self.check(step, latents)


@dataclass
class _Job:
    """One sample, prepared for the model: what varies per sample and what must agree within a batch."""

    ctx: StageContext
    size: tuple[int, int]  # the caller's image (h, w)
    shape: tuple  # what the samples of one model call must share (model input size)
    inputs: dict[str, Any] = field(default_factory=dict)  # per-sample pipeline inputs (PIL images)
    extra: Any = None
