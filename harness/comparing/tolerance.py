"""Tolerances: the visibility model, the per-metric defaults, a run's overrides.

A slice's allowance is::

    max(abs_tol, rel_tol * scale, visible) + bias + k * sqrt(2) * min(std_b, std_c)

(see :mod:`harness.comparing.engine`): the change a viewer could see, plus the change
benign noise could cause.  ``bias``/``std`` are the noise floor each measurement derived
(:mod:`harness.measuring.metrics.noise`); ``visible`` is :func:`visibility_tolerance`,
below; ``abs_tol``, ``rel_tol``, the failing direction and whether the metric gates at all
come from the metric's registry entry (:mod:`harness.measuring.metrics`) unless a
:class:`ToleranceRule` of the suite or of a ``--tolerances`` file overrides them for the
slices its glob matches (rules apply in order, the last match wins).  Metrics with a
visibility model carry ``abs_tol = rel_tol = 0``; on a slice where a rule sets ``abs_tol``
or ``rel_tol``, the rule's values replace the model (an override overrides, tighter or
looser).

**Visibility** is :mod:`harness.measuring.visibility`: a change ``dA`` of an RMS
amplitude ``A`` is visible when ``|dA| > T(A) = T0 * max(1, A / A0) ** 0.7`` (contrast
masking after Legge & Foley 1980 and Watson 1993; ``T0 = 0.5``, ``A0 = 8`` LSB, placed on
the project's visibility line), and ``blockiness`` is measured in units of a
just-visible block edge.

How a model turns into an allowance on the metric's own value (:data:`VISIBILITY`):

``amplitude``  the value is a power ``P`` (code²: ``band_power``, ``detail``).  With
               ``A = (sqrt(P_b) + sqrt(P_c)) / 2``, ``|dA| > T(A)`` is exactly
               ``|P_c - P_b| > 2 A T(A)``.
``level``      the value is itself an amplitude (code: ``contrast``, ``chroma``):
               ``T((|v_b| + |v_c|) / 2)``.
``jnd``        the value is already in units of a just-visible change (``blockiness``):
               the allowance is 1.
``additive``   the value is the power of something added on top of the content (``grid``):
               ``T(A_lo)²`` with ``A_lo = sqrt(min(P_b, P_c))``, the RMS an uncorrelated
               addition must reach to be seen over what both sides share.

Noise added over the whole image has its own paired check (``noise``, allowed
``INVISIBLE_LSB²``: :mod:`harness.comparing.added_noise`).
"""

from __future__ import annotations

import fnmatch
import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from harness.measuring.metrics import DIRECTIONS, MetricSpec, get_metric
from harness.measuring.visibility import VIS_EXPONENT, VIS_KNEE, VIS_T0, visible_addition, visible_change

__all__ = ["ToleranceRule", "CompareConfig", "tolerance_arrays", "overridden", "rule_or_visible", "visible_change",
           "visibility_tolerance",
           "VISIBILITY", "VIS_T0", "VIS_KNEE", "VIS_EXPONENT"]

VISIBILITY = ("amplitude", "level", "jnd", "additive")


def visibility_tolerance(model: str | None, baseline: np.ndarray, candidate: np.ndarray,
                         lsb: float = 1.0) -> np.ndarray:
    """The visible change of each slice, in the units of its value (0 without a model).

    ``lsb`` is one quantisation step of the measured images in code values.
    """
    b = np.asarray(baseline, dtype=np.float64)
    c = np.asarray(candidate, dtype=np.float64)
    if model is None:
        return np.zeros(np.broadcast(b, c).shape)
    with np.errstate(invalid="ignore"):
        if model == "amplitude":
            a = 0.5 * (np.sqrt(np.maximum(b, 0.0)) + np.sqrt(np.maximum(c, 0.0)))
            return 2.0 * a * visible_change(a, lsb)
        if model == "level":
            return visible_change(0.5 * (np.abs(b) + np.abs(c)), lsb)
        if model == "jnd":
            return np.ones(np.broadcast(b, c).shape)
        if model == "additive":
            return visible_addition(np.minimum(b, c), lsb)
    raise ValueError(f"unknown visibility model {model!r}; expected one of {VISIBILITY}")


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
    """Per-slice ``abs_tol, rel_tol, direction code, gating`` after applying rules in order.

    See :func:`overridden` for the slices whose visibility model a rule replaced.
    """
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


def overridden(metric: str, slices: Sequence[str], config: CompareConfig) -> np.ndarray:
    """Which slices a rule gave an ``abs_tol`` or ``rel_tol`` (their visibility model does not apply)."""
    n = len(slices)
    hit_any = np.zeros(n, bool)
    for rule in config.rules:
        if rule.metric != metric or (rule.abs_tol is None and rule.rel_tol is None):
            continue
        hit_any |= np.fromiter((fnmatch.fnmatchcase(s, rule.slice) for s in slices), bool, n) if rule.slice != "*" \
            else np.ones(n, bool)
    return hit_any


def rule_or_visible(metric: str, slice_: str, value: float, visible: float, config: CompareConfig) -> float:
    """One derived slice's allowance before its noise terms: a rule's ``max(abs_tol, rel_tol |value|)``
    where a rule sets either (see :func:`overridden`), else the visibility line ``visible``."""
    if overridden(metric, [slice_], config)[0]:
        _spec, abs_t, rel_t, _dirs, _gate = tolerance_arrays(metric, [slice_], config)
        return max(float(abs_t[0]), float(rel_t[0]) * abs(value))
    return visible
