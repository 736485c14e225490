"""generate: produce the pipeline's input image.

``source`` passes the vector's rendered image through (photographs, files,
recipes).  Prompt-based generation (diffusers) registers further backends here
with the same call shape; the seed comes from ``ctx.seed``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harness.stages.base import StageContext, StageResult, register


@register("generate", "source")
class Source:
    """The vector's own image, unchanged."""

    @dataclass(frozen=True)
    class Params:
        pass

    def __init__(self, params: "Source.Params") -> None:
        self.params = params

    def __call__(self, image: np.ndarray, ctx: StageContext) -> StageResult:
        return StageResult(image=image.copy())
