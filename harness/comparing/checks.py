"""The CHECK record (the report contract's seven keys, plus an optional pixel box) and its
distribution-mode form with power, defined once for every comparison and every reader.

:class:`Check` is what the paired engine (:mod:`harness.comparing.engine`), the seed-distribution
tests (:mod:`harness.comparing.distribution`) and the absolute checks produce, and what
report.json, ``harness compare --json`` and pytest read back (:meth:`Check.from_dict`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

from harness.measuring.result import Box

__all__ = ["Check", "DistributionCheck"]

_FIELDS = ("metric", "slice", "value", "baseline", "delta", "tolerance", "status")


@dataclass(frozen=True)
class Check:
    """One compared slice (the CHECK of the report contract).

    ``box`` (optional) is where a spatial slice lies in the measured image:
    ``(x0, y0, x1, y1)`` pixels, exclusive ends; None for a whole-image slice.
    """

    metric: str
    slice: str
    value: float | None
    baseline: float | None
    delta: float | None
    tolerance: float | None
    status: str
    box: Box | None = None

    @property
    def severity(self) -> float:
        """``|delta| / tolerance``: > 1 fails; errors sort first, skips last."""
        if self.status == "error":
            return math.inf
        if self.status == "skip":
            return -1.0
        if self.status == "fail" and (self.delta is None or not self.tolerance):
            return math.inf  # a failed absolute check (no allowance): as bad as it gets
        if self.delta is None or not self.tolerance:
            return -1.0
        return abs(self.delta) / self.tolerance

    def to_dict(self) -> dict[str, Any]:
        """The seven CHECK keys, plus ``"box": [x0, y0, x1, y1]`` when the slice has one."""
        out = {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
               for k, v in ((k, getattr(self, k)) for k in _FIELDS)}
        if self.box is not None:
            out["box"] = [int(v) for v in self.box]
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Check":
        box = d.get("box")
        if box is not None:
            try:
                x0, y0, x1, y1 = (int(v) for v in box)
                box = (x0, y0, x1, y1)
            except (TypeError, ValueError):
                box = None  # a malformed box only loses the location, never the check
        if cls is Check and ("min_detectable" in d or "seeds" in d):  # a distribution check keeps its power
            seeds = d.get("seeds")
            return DistributionCheck(**{k: d.get(k) for k in _FIELDS}, box=box, min_detectable=d.get("min_detectable"),
                                     seeds=tuple(seeds) if isinstance(seeds, list) and len(seeds) == 2 else None,
                                     note=str(d.get("note") or ""), se=d.get("se"))
        return cls(**{k: d.get(k) for k in _FIELDS}, box=box)


@dataclass(frozen=True)
class DistributionCheck(Check):
    """A check of distribution mode: a :class:`Check` plus its power.

    ``min_detectable``: the smallest drift (units of ``delta``) detected with the suite's
    ``power`` at its family's level with these seeds (None: none could be); ``se``: the
    standard error of ``delta``; ``seeds``: ``(baseline seeds, candidate seeds)``; ``note``: how
    it was tested.
    """

    min_detectable: float | None = None
    seeds: tuple[int, int] | None = None
    note: str = ""
    se: float | None = None
    crit: float | None = None  # the family's critical value of |delta| / se (not reported)

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        for k in ("min_detectable", "seeds", "note", "se", "crit"):
            out.pop(k, None)
        md = self.min_detectable
        if self.status != "error":
            out["min_detectable"] = md if md is not None and math.isfinite(md) else None
        if self.se is not None and math.isfinite(self.se):
            out["se"] = self.se
        if self.seeds is not None:
            out["seeds"] = [int(self.seeds[0]), int(self.seeds[1])]
        if self.note:
            out["note"] = self.note
        return out
