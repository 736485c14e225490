"""generate: produce the pipeline's input image.

``source``  the vector's rendered image (photograph, file, recipe), unchanged:
            the runner renders the vector and passes that image in.

Seam for prompt-based generation (diffusers, later): register another backend
here with ``@register("generate", "<name>")``, a frozen ``Params`` dataclass
(prompt, steps, guidance, size, ...) and the usual ``__call__(image, ctx)``.
It must take its randomness from ``ctx.seed`` only (e.g. a
``torch.Generator().manual_seed(ctx.seed)``), import torch/diffusers inside
``__init__``/``__call__`` (never at module import), load weights from a local
path given as a parameter (nothing may download at run time), and return a
``StageResult(image=<(H, W, 3) uint8>)``; ``image`` may be ignored.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harness.stages.base import BackendBase, StageContext, StageResult, register

__all__ = ["Source"]


@register("generate", "source")
class Source(BackendBase):
    """The vector's own image, unchanged."""

    @dataclass(frozen=True)
    class Params:
        pass

    def __call__(self, image: np.ndarray, ctx: StageContext) -> StageResult:
        return StageResult(image=image.copy())
