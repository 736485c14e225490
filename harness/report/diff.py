"""``harness diff``: per-check deltas between two runs, worst first.

Every check of both runs is compared, read from their checks.parquet (the CHECK columns only;
a version-1 report's from its report.json).

An incomplete report (an interrupted run, or one still running) is no verdict: the diff still
lists what changed among the recorded cases, names the incomplete report(s) in
:attr:`DiffResult.incomplete`, and ``harness diff`` exits 1."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

from typing import TYPE_CHECKING

from harness.fsio import atomic_write_text
from harness.report.schema import load_report

if TYPE_CHECKING:
    from harness.comparing.checks import Check

__all__ = ["DiffRow", "DiffResult", "diff_reports", "format_diff", "write_diff"]


@dataclass
class DiffRow:
    case: str
    metric: str
    slice: str
    status_a: str | None
    status_b: str | None
    value_a: float | None
    value_b: float | None
    severity_a: float
    severity_b: float

    @property
    def change(self) -> float:
        """How much worse (positive) the check got, in units of its tolerance."""
        a = self.severity_a if math.isfinite(self.severity_a) else 1e9
        b = self.severity_b if math.isfinite(self.severity_b) else 1e9
        return b - a

    @property
    def regressed(self) -> bool:
        return self.status_a in ("pass", "skip", None) and self.status_b in ("fail", "error")


@dataclass
class DiffResult:
    run_a: str
    run_b: str
    rows: list[DiffRow] = field(default_factory=list)
    cases: list[tuple[str, str | None, str | None]] = field(default_factory=list)
    incomplete: list[str] = field(default_factory=list)  # "REPORT_A (<path>): 3 of 8 planned cases ..."

    @property
    def failed(self) -> bool:
        """The diff fails: something regressed, or a report is incomplete."""
        return bool(self.regressions or self.incomplete)

    @property
    def regressions(self) -> list[DiffRow]:
        return [r for r in self.rows if r.regressed] + [
            DiffRow(cid, "(case)", "", a, b, None, None, 0.0, 0.0) for cid, a, b in self.cases
            if a == "pass" and b in ("fail", "error")]


def _sev(c) -> float:
    return c.severity if c.status != "skip" else 0.0


def _checks_by_case(path: Path, report) -> dict[str, dict[tuple[str, str], Check]]:
    """Every check of a run (checks.parquet, or report.json for version 1), by case and
    ``(metric, slice)``: the CHECK columns only."""
    from harness.report.checks_table import checks_by_case

    p = Path(path)
    found = checks_by_case(p if p.is_dir() else p.parent, report=report)
    return {cid: {(c.metric, c.slice): c for c in checks} for cid, checks in found.items()}


def diff_reports(a_path: Path, b_path: Path) -> DiffResult:
    a, b = load_report(a_path), load_report(b_path)
    all_a, all_b = _checks_by_case(a_path, a), _checks_by_case(b_path, b)
    res = DiffResult(a.run_id, b.run_id)
    for label, rep, path in (("REPORT_A", a, a_path), ("REPORT_B", b, b_path)):
        if not rep.complete:
            res.incomplete.append(f"{label} {path} (run {rep.run_id}) is INCOMPLETE: {rep.incomplete_reason()}")
    ca, cb = {c.id: c for c in a.cases}, {c.id: c for c in b.cases}
    for cid in sorted(set(ca) | set(cb)):
        x, y = ca.get(cid), cb.get(cid)
        if (x.status if x else None) != (y.status if y else None):
            res.cases.append((cid, x.status if x else None, y.status if y else None))
        ka, kb = all_a.get(cid, {}), all_b.get(cid, {})
        for key in set(ka) | set(kb):
            p, q = ka.get(key), kb.get(key)
            row = DiffRow(cid, key[0], key[1], p.status if p else None, q.status if q else None,
                          p.value if p else None, q.value if q else None,
                          _sev(p) if p else 0.0, _sev(q) if q else 0.0)
            if row.status_a != row.status_b or (row.value_a != row.value_b):
                res.rows.append(row)
    res.rows.sort(key=lambda r: (not r.regressed, -r.change))
    return res


def format_diff(res: DiffResult, limit: int = 30) -> str:
    lines = [f"diff {res.run_a} -> {res.run_b}"]
    lines += [f"! {line}; this diff is no verdict" for line in res.incomplete]
    for cid, a, b in res.cases:
        lines.append(f"  case {cid}: {a or 'absent'} -> {b or 'absent'}")
    lines.append(f"  {'case':36} {'metric':12} {'slice':32} {'before':>10} {'after':>10} {'x tol':>13}")
    for r in res.rows[:limit]:
        def n(v):
            return f"{v:10.4g}" if v is not None else f"{'-':>10}"
        sa = f"{r.severity_a:.2f}" if math.isfinite(r.severity_a) else "err"
        sb = f"{r.severity_b:.2f}" if math.isfinite(r.severity_b) else "err"
        mark = "!" if r.regressed else " "
        lines.append(f"{mark} {r.case:36} {r.metric:12} {r.slice:32} {n(r.value_a)} {n(r.value_b)} {sa:>6}->{sb:<6}")
    if len(res.rows) > limit:
        lines.append(f"  ... {len(res.rows) - limit} more changed checks")
    lines.append(f"{len(res.regressions)} regression(s), {len(res.rows)} changed check(s)")
    return "\n".join(lines)


def write_diff(res: DiffResult, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    doc = {"run_a": res.run_a, "run_b": res.run_b, "incomplete": list(res.incomplete),
           "cases": [list(c) for c in res.cases],
           "rows": [{**asdict(r), "severity_a": r.severity_a if math.isfinite(r.severity_a) else None,
                     "severity_b": r.severity_b if math.isfinite(r.severity_b) else None,
                     "regressed": r.regressed} for r in res.rows]}
    pj, pm = out / "diff.json", out / "diff.md"
    atomic_write_text(pj, json.dumps(doc, indent=1) + "\n")
    atomic_write_text(pm, "```\n" + format_diff(res, limit=200) + "\n```\n")
    return [pj, pm]
