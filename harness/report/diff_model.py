"""The data of ``harness diff`` (:mod:`harness.report.diff`): folded rows, vector × pipelines and
the result, with the section names and status words every view shares."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.status import GATING

__all__ = ["SECTIONS", "MOVED_CAP", "SeedDelta", "DiffRow", "UnitDiff", "ConfigDiff", "DiffResult", "unit_of", "gates",
           "transitions"]

#: The sections of a diff, in the order every view shows them.
SECTIONS = ("newly_failing", "newly_fixed", "still_failing", "moved")
#: Rows of ``moved`` kept (largest move first): the rest are counted.
MOVED_CAP = 100


def unit_of(case_id: str) -> str:
    """A case id without its seed: ``v/p/s3`` → ``v/p``; a group ``v/p/seeds`` stays itself."""
    head, _, last = case_id.rpartition("/")
    return head if last[:1] == "s" and last[1:].isdigit() else case_id


def gates(status: str | None) -> bool:
    """Whether a status (None: absent) makes a run fail."""
    return status in GATING


@dataclass
class SeedDelta:
    """One seed of a folded row: each side's status (None: absent), value and severity
    (``|delta| / tolerance``; inf for an error or a failed absolute check; None: absent or no tolerance)."""

    seed: int | None
    status_a: str | None
    status_b: str | None
    value_a: float | None
    value_b: float | None
    severity_a: float | None
    severity_b: float | None

    @property
    def change(self) -> float | None:
        """``value_b - value_a`` (None unless both are numbers)."""
        return self.value_b - self.value_a if self.value_a is not None and self.value_b is not None else None


def transitions(pairs: list[tuple[str | None, str | None]]) -> str:
    """``pass → fail in 2/3 seeds, fail → fail in 1/3``: status pairs (A, B) counted, changes
    first, the most common first; ``absent`` for a side without it."""
    n = len(pairs)
    counts: dict[tuple[str, str], int] = {}
    for a, b in pairs:
        key = (a or "absent", b or "absent")
        counts[key] = counts.get(key, 0) + 1
    order = sorted(counts.items(), key=lambda kv: (kv[0][0] == kv[0][1], -gates(kv[0][1]), -kv[1]))
    parts = [f"{a} → {b} in {k}/{n}" for (a, b), k in order]
    return f"{parts[0]} seeds" + "".join(f", {p}" for p in parts[1:]) if parts else ""


@dataclass
class DiffRow:
    """One check (metric + slice) of one vector × pipeline (``unit``), its seeds folded."""

    unit: str
    metric: str
    slice: str
    section: str
    seeds: list[SeedDelta]
    box: tuple[int, int, int, int] | None = None

    @property
    def n_seeds(self) -> int:
        return len(self.seeds)

    @property
    def newly_failing(self) -> int:
        return sum(not gates(s.status_a) and gates(s.status_b) for s in self.seeds)

    @property
    def newly_fixed(self) -> int:
        return sum(gates(s.status_a) and not gates(s.status_b) for s in self.seeds)

    @property
    def status(self) -> str:
        """``pass → fail in 2/3 seeds, pass → pass in 1/3``."""
        return transitions([(s.status_a, s.status_b) for s in self.seeds])

    @property
    def change(self) -> tuple[float, float, float] | None:
        """The B − A value change over the seeds that have both: (median, min, max)."""
        ch = [c for c in (s.change for s in self.seeds) if c is not None]
        return (statistics.median(ch), min(ch), max(ch)) if ch else None

    @property
    def severity_a(self) -> float | None:
        return _worst(s.severity_a for s in self.seeds)

    @property
    def severity_b(self) -> float | None:
        return _worst(s.severity_b for s in self.seeds)

    @property
    def regressed(self) -> bool:
        return self.section == "newly_failing"

    def to_dict(self) -> dict[str, Any]:
        ch = self.change
        return {"unit": self.unit, "metric": self.metric, "slice": self.slice, "section": self.section,
                "regressed": self.regressed, "seeds": self.n_seeds, "newly_failing": self.newly_failing,
                "newly_fixed": self.newly_fixed, "status": self.status,
                "change": None if ch is None else {"median": ch[0], "min": ch[1], "max": ch[2]},
                "severity_a": _finite(self.severity_a), "severity_b": _finite(self.severity_b),
                "box": list(self.box) if self.box else None,
                "per_seed": [{"seed": s.seed, "status_a": s.status_a, "status_b": s.status_b, "value_a": s.value_a,
                              "value_b": s.value_b, "severity_a": _finite(s.severity_a),
                              "severity_b": _finite(s.severity_b)} for s in self.seeds]}


def _worst(values) -> float | None:
    vals = [v for v in values if v is not None]
    return max(vals) if vals else None


def _finite(v: float | None) -> float | str | None:
    """JSON has no infinity: an error's severity is the string ``"inf"``."""
    return "inf" if v is not None and math.isinf(v) else v


@dataclass
class UnitDiff:
    """One vector × pipeline (``unit``): its cases' statuses per seed in A and B and what differs."""

    unit: str
    cases: list[tuple[int | None, str | None, str | None]] = field(default_factory=list)  # (seed, A, B)
    newly_failing: int = 0  # folded check rows newly failing
    newly_fixed: int = 0
    config: list[str] = field(default_factory=list)  # "mask.dilate_px 2 → 6" (A → B)
    first_image_change: str | None = None  # the first artifact (stage) whose image differs A vs B
    diverged_a: str = ""
    diverged_b: str = ""
    worst_seed: int | None = None  # the seed to show: where B's newly failing checks are worst
    shown: tuple[Any, Any] | None = None  # (A's case or None, B's case) of the shown seed, for the images
    error_b: str = ""  # the shown seed's error in B, its first line

    @property
    def status(self) -> str:
        return transitions([(a, b) for _, a, b in self.cases])

    @property
    def regressed(self) -> bool:
        return any(not gates(a) and gates(b) for _, a, b in self.cases)

    @property
    def fixed(self) -> bool:
        return any(gates(a) and not gates(b) for _, a, b in self.cases)

    @property
    def changed(self) -> bool:
        return any(a != b for _, a, b in self.cases) or bool(self.newly_failing or self.newly_fixed or self.config)


@dataclass
class ConfigDiff:
    """``environment``: ``(key, A, B)`` for each differing flattened key, :data:`ENV_FIRST` first;
    ``same``: the brief keys that are equal (``key=value``); ``pipeline``: each config change
    (A → B) with the vector × pipelines it applies to, most first; ``notes``: what could not be compared."""

    environment: list[tuple[str, str, str]] = field(default_factory=list)
    same: list[str] = field(default_factory=list)
    pipeline: list[tuple[str, list[str]]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class DiffResult:
    run_a: str
    run_b: str
    dir_a: Path
    dir_b: Path
    sections: dict[str, list[DiffRow]] = field(default_factory=lambda: {s: [] for s in SECTIONS})
    counts: dict[str, int] = field(default_factory=dict)  # rows per section before any cap, + "unchanged"
    units: list[UnitDiff] = field(default_factory=list)
    incomplete: list[str] = field(default_factory=list)  # "REPORT_A <path> (run x) is INCOMPLETE: ..."
    config: ConfigDiff | None = None
    stores: tuple[Path | None, Path | None] = (None, None)  # each run's image store (artifact references)

    @property
    def rows(self) -> list[DiffRow]:
        """Every kept row, section by section (:data:`SECTIONS`), each worst first."""
        return [r for name in SECTIONS for r in self.sections[name]]

    @property
    def regressions(self) -> list[DiffRow]:
        return self.sections["newly_failing"]

    @property
    def regressed_units(self) -> list[UnitDiff]:
        """Vector × pipelines with a newly failing case or check."""
        return [u for u in self.units if u.regressed or u.newly_failing]

    @property
    def failed(self) -> bool:
        """The diff fails: a check or case newly fails in B, or a report is incomplete."""
        return bool(self.regressions or self.regressed_units or self.incomplete)


