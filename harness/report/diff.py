"""``harness diff A B``: what changed from run A (before) to run B (after), one row per
vector × pipeline × check with the seeds folded.

Both runs' checks are read from their checks.parquet with only the columns the diff needs
(:func:`harness.report.checks_table.read_checks`; a version-1 report's from its report.json),
joined per case, metric and slice, and folded over seeds in Arrow; only the rows shown become
Python objects.  Each folded row (:class:`DiffRow`) lands in one section (:data:`SECTIONS`):

* ``newly_failing``: some seed gates in B (fail or error) and did not in A (pass, skip or absent);
* ``newly_fixed``: none of that, and some seed gated in A and does not in B;
* ``still_failing``: some seed gates in both (sorted by how much it changed, in tolerances);
* ``moved``: passes in both but its value moved (largest move first, capped at :data:`MOVED_CAP`);
* unchanged rows are only counted.

Swapping A and B swaps ``newly_failing`` and ``newly_fixed`` (a row with seeds going both ways is
newly failing in both directions: something got worse either way).  At the top sit the
configuration differences (:mod:`harness.report.diff_config`).

An incomplete report (an interrupted run, or one still running) is no verdict: the diff still
lists what changed among the recorded cases, names the incomplete report(s) in
:attr:`DiffResult.incomplete`, and ``harness diff`` exits 1.  So does any newly failing check or
case (:attr:`DiffResult.failed`)."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.report.schema import Report, load_report
from harness.status import GATING

if TYPE_CHECKING:
    import pyarrow as pa

    from harness.report.diff_config import ConfigDiff

__all__ = ["SECTIONS", "MOVED_CAP", "SeedDelta", "DiffRow", "UnitDiff", "DiffResult", "diff_reports", "unit_of"]

#: The sections of a diff, in the order every view shows them.
SECTIONS = ("newly_failing", "newly_fixed", "still_failing", "moved")
#: Rows of ``moved`` kept (largest move first): the rest are counted.
MOVED_CAP = 100
_COLUMNS = ("case", "vector", "pipeline", "seed", "metric", "slice", "value", "delta", "tolerance", "status", "box")


def unit_of(case_id: str) -> str:
    """A case id without its seed: ``v/p/s3`` → ``v/p``; a group ``v/p/seeds`` stays itself."""
    head, _, last = case_id.rpartition("/")
    return head if last[:1] == "s" and last[1:].isdigit() else case_id


def _gates(status: str | None) -> bool:
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
    order = sorted(counts.items(), key=lambda kv: (kv[0][0] == kv[0][1], -_gates(kv[0][1]), -kv[1]))
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
        return sum(not _gates(s.status_a) and _gates(s.status_b) for s in self.seeds)

    @property
    def newly_fixed(self) -> int:
        return sum(_gates(s.status_a) and not _gates(s.status_b) for s in self.seeds)

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
    shown: tuple[Any, Any] | None = None  # (A's case, B's case) of the shown seed, for the images

    @property
    def status(self) -> str:
        return transitions([(a, b) for _, a, b in self.cases])

    @property
    def regressed(self) -> bool:
        return any(not _gates(a) and _gates(b) for _, a, b in self.cases)

    @property
    def fixed(self) -> bool:
        return any(_gates(a) and not _gates(b) for _, a, b in self.cases)

    @property
    def changed(self) -> bool:
        return any(a != b for _, a, b in self.cases) or bool(self.newly_failing or self.newly_fixed or self.config)


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


def _run_dir(path: Path) -> Path:
    p = Path(path)
    return p if p.is_dir() else p.parent


def diff_reports(a_path: Path, b_path: Path, *, moved_cap: int = MOVED_CAP) -> DiffResult:
    """The diff of run B against run A (run folders, or their report.json): an InputError
    (exit 2) for a missing or malformed report or checks file."""
    from harness.report.diff_config import config_diff
    from harness.report.diff_fold import fold_checks, join_checks

    a, b = load_report(a_path), load_report(b_path)
    res = DiffResult(a.run_id, b.run_id, _run_dir(a_path), _run_dir(b_path))
    for label, rep, path in (("REPORT_A", a, a_path), ("REPORT_B", b, b_path)):
        if not rep.complete:
            res.incomplete.append(f"{label} {path} (run {rep.run_id}) is INCOMPLETE: {rep.incomplete_reason()}")
    joined = join_checks(_read(res.dir_a, a), _read(res.dir_b, b))
    res.sections, res.counts = fold_checks(joined, moved_cap=moved_cap)
    res.units = _units(a, b, res.sections)
    from harness.run.store import store_root_of

    res.stores = (store_root_of(a.environment), store_root_of(b.environment))
    res.config = config_diff(a, b, res.units, res.dir_a, res.dir_b)
    return res


def _read(run_dir: Path, report: Report) -> pa.Table:
    from harness.report.checks_table import read_checks

    return read_checks(run_dir, _COLUMNS, report=report)


def _units(a: Report, b: Report, sections: dict[str, list[DiffRow]]) -> list[UnitDiff]:
    """Every vector × pipeline of either run, its cases' statuses per seed, the folded rows it
    newly fails and fixes, and the seed to show (most severe newly failing check, then most of them)."""
    ca, cb = {c.id: c for c in a.cases}, {c.id: c for c in b.cases}
    units: dict[str, UnitDiff] = {}
    for cid in sorted(set(ca) | set(cb)):
        x, y = ca.get(cid), cb.get(cid)
        seed = (x or y).seed  # type: ignore[union-attr]
        u = units.setdefault(unit_of(cid), UnitDiff(unit_of(cid)))
        u.cases.append((seed, x.status if x else None, y.status if y else None))
    score: dict[str, dict[int | None, tuple[float, int]]] = {}
    for row in sections["newly_failing"]:
        units[row.unit].newly_failing += 1
        for s in row.seeds:
            if not _gates(s.status_a) and _gates(s.status_b):
                sev, n = score.setdefault(row.unit, {}).get(s.seed, (-1.0, 0))
                score[row.unit][s.seed] = (max(sev, s.severity_b if s.severity_b is not None else -1.0), n + 1)
    for row in sections["newly_fixed"]:
        units[row.unit].newly_fixed += 1
    for name, u in units.items():
        if score.get(name):
            u.worst_seed = max(score[name].items(), key=lambda kv: (kv[1], -(kv[0] or 0)))[0]
        elif u.regressed:
            u.worst_seed = next(s for s, pa_, pb in u.cases if not _gates(pa_) and _gates(pb))
    # regressions first, then fixes, each the most checks first: ``diff B A`` lists its fixes as ``diff A B`` its failures
    order = sorted(units.values(), key=lambda u: (not (u.regressed or u.newly_failing), -u.newly_failing,
                                                  not (u.fixed or u.newly_fixed), -u.newly_fixed, u.unit))
    return order
