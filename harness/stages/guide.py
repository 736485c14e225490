"""The guide image a guided upscaler follows (:mod:`harness.stages.guided`), as it sits in
``StageContext.guide``; the case runner builds it (:mod:`harness.suite.guides`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Guide"]


@dataclass(frozen=True)
class Guide:
    """A full-resolution image from an earlier stage that a guided upscaler follows."""

    name: str  # where it came from, as the suite names it: "stage:source"
    image: np.ndarray  # (Hg, Wg, 3) uint8, normally the upscale's output size
    exclude: np.ndarray | None = None  # (Hg, Wg) bool: where the guide does not show the input's content
    info: dict[str, Any] = field(default_factory=dict)  # JSON-serialisable: how it was made (recorded)

    def key_parts(self) -> tuple:
        """Everything a cached result depends on, as flat parts of a cache key (arrays by content)."""
        return (self.name, self.image, self.exclude, self.info)
