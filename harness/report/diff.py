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

from pathlib import Path
from typing import TYPE_CHECKING

from harness.report.diff_model import (MOVED_CAP, SECTIONS, DiffResult, DiffRow, SeedDelta, UnitDiff, gates,
                                       transitions, unit_of)
from harness.report.schema import Report, load_report

if TYPE_CHECKING:
    import pyarrow as pa

_COLUMNS = ("case", "vector", "pipeline", "seed", "metric", "slice", "value", "delta", "tolerance", "status", "box")
__all__ = ["SECTIONS", "MOVED_CAP", "SeedDelta", "DiffRow", "UnitDiff", "DiffResult", "diff_reports", "unit_of",
           "transitions"]


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
            if not gates(s.status_a) and gates(s.status_b):
                sev, n = score.setdefault(row.unit, {}).get(s.seed, (-1.0, 0))
                score[row.unit][s.seed] = (max(sev, s.severity_b if s.severity_b is not None else -1.0), n + 1)
    for row in sections["newly_fixed"]:
        units[row.unit].newly_fixed += 1
    for name, u in units.items():
        if score.get(name):
            u.worst_seed = max(score[name].items(), key=lambda kv: (kv[1], -(kv[0] or 0)))[0]
        elif u.regressed:
            u.worst_seed = next(s for s, pa_, pb in u.cases if not gates(pa_) and gates(pb))
    # regressions first, then fixes, each the most checks first: ``diff B A`` lists its fixes as ``diff A B`` its failures
    order = sorted(units.values(), key=lambda u: (not (u.regressed or u.newly_failing), -u.newly_failing,
                                                  not (u.fixed or u.newly_fixed), -u.newly_fixed, u.unit))
    return order
