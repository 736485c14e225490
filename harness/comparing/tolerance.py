"""Tolerances: the per-metric defaults, a run's overrides, and how they apply to slices.

A slice's allowance is ``max(abs_tol, rel_tol * scale) + bias + k * sqrt(2) * min(std_b, std_c)``
(see :mod:`harness.comparing.engine`).  ``abs_tol``, ``rel_tol``, the failing direction and
whether the metric gates at all come from the metric's registry entry
(:mod:`harness.measuring.metrics`) unless a :class:`ToleranceRule` of the suite or of a
``--tolerances`` file overrides them for the slices its glob matches (rules apply in
order, the last match wins); ``bias``/``std`` are the measured noise floor.
"""

from __future__ import annotations

import fnmatch
import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from harness.measuring.metrics import DIRECTIONS, MetricSpec, get_metric

__all__ = ["ToleranceRule", "CompareConfig", "tolerance_arrays"]


@dataclass(frozen=True)
class ToleranceRule:
    """Overrides for checks whose metric matches ``metric`` and whose slice matches the glob ``slice``."""

    metric: str
    slice: str = "*"
    rel_tol: float | None = None
    abs_tol: float | None = None
    direction: str | None = None
    gating: bool | None = None

    def __post_init__(self) -> None:
        if self.direction is not None and self.direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {', '.join(DIRECTIONS)}, got {self.direction!r}")
        for name in ("rel_tol", "abs_tol"):
            v = getattr(self, name)
            if v is not None and (not math.isfinite(v) or v < 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {v!r}")


@dataclass(frozen=True)
class CompareConfig:
    """How strictly to compare: noise multiplier ``k``, seed-spread multiplier, overrides."""

    k: float = 4.0
    spread_k: float = 3.0
    rules: tuple[ToleranceRule, ...] = field(default_factory=tuple)


def tolerance_arrays(metric: str, slices: Sequence[str], config: CompareConfig
                      ) -> tuple[MetricSpec, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-slice ``abs_tol, rel_tol, direction code, gating`` after applying rules in order."""
    spec = get_metric(metric)
    n = len(slices)
    abs_t = np.full(n, spec.abs_tol)
    rel_t = np.full(n, spec.rel_tol)
    dirs = np.full(n, DIRECTIONS.index(spec.direction))
    gate = np.full(n, spec.gating)
    for rule in config.rules:
        if rule.metric != metric:
            continue
        hit = np.fromiter((fnmatch.fnmatchcase(s, rule.slice) for s in slices), bool, n) if rule.slice != "*" \
            else np.ones(n, bool)
        if rule.abs_tol is not None:
            abs_t[hit] = rule.abs_tol
        if rule.rel_tol is not None:
            rel_t[hit] = rule.rel_tol
        if rule.direction is not None:
            dirs[hit] = DIRECTIONS.index(rule.direction)
        if rule.gating is not None:
            gate[hit] = rule.gating
    return spec, abs_t, rel_t, dirs, gate
