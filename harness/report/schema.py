"""report.json (contract, ``schema_version`` 1) as data classes, with atomic writes.

``{"schema_version", "run_id", "suite", "created", "environment", "summary":
{"passed", "failed", "errors", "skipped"}, "cases": [{"id", "vector",
"pipeline", "seed", "status", "error", "timings", "artifacts", "checks"}]}``

Extra keys (``complete``, ``planned``, ``notes``, a case's ``stages`` numbers and ``config``)
are additions that readers of the contract may ignore.

A run folder (see :mod:`harness.pipeline.rundir`) holds ``cases/<slug>.json`` records written
as cases finish and a ``report.json`` written twice: at the start (``complete: false``, no
cases, ``planned``: the ids the run will record) and once at the end or on an interrupt.
:func:`load_report` therefore reads an interrupted run, or one still in progress, from its case
records: an incomplete :class:`Report` that every consumer fails, never a crash and never a pass.
"""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.comparing.engine import Check
from harness.errors import InputError
from harness.status import STATUSES, exit_code, worst
from harness.fsio import atomic_write_text

__all__ = ["SCHEMA_VERSION", "CaseResult", "Report", "load_report", "write_checks_csv", "read_case_records",
           "run_in_progress"]

SCHEMA_VERSION = 1
CASE_STATUSES = STATUSES


@dataclass
class CaseResult:
    id: str
    vector: str
    pipeline: str
    seed: int | None
    status: str
    error: str | None = None
    timings: dict[str, float] = field(default_factory=dict)
    artifacts: dict[str, str] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)
    stages: dict[str, float] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "vector": self.vector, "pipeline": self.pipeline, "seed": self.seed,
            "status": self.status, "error": self.error,
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
            "artifacts": dict(self.artifacts), "checks": [c.to_dict() for c in self.checks],
            "stages": dict(self.stages), "config": self.config,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "CaseResult":
        return cls(id=d["id"], vector=d["vector"], pipeline=d["pipeline"], seed=d.get("seed"),
                   status=d["status"], error=d.get("error"), timings=dict(d.get("timings", {})),
                   artifacts=dict(d.get("artifacts", {})), checks=[Check.from_dict(c) for c in d.get("checks", [])],
                   stages=dict(d.get("stages", {})), config=dict(d.get("config", {})))


@dataclass
class Report:
    run_id: str
    suite: str
    created: str
    environment: dict[str, Any]
    cases: list[CaseResult] = field(default_factory=list)
    complete: bool = False
    notes: list[str] = field(default_factory=list)
    planned: list[str] | None = None  # the case ids the run set out to record (None: not known)

    @property
    def summary(self) -> dict[str, int]:
        count = {s: sum(c.status == s for c in self.cases) for s in CASE_STATUSES}
        return {"passed": count["pass"], "failed": count["fail"], "errors": count["error"], "skipped": count["skip"]}

    @property
    def status(self) -> str:
        """The worst case status; an incomplete report is ``error`` whatever its cases say: never a pass."""
        top = worst(c.status for c in self.cases)
        return top if self.complete else "error"

    @property
    def exit_code(self) -> int:
        return exit_code(self.status)

    @property
    def missing(self) -> list[str]:
        """Planned case ids without a result."""
        have = {c.id for c in self.cases}
        return [cid for cid in self.planned or () if cid not in have]

    def incomplete_reason(self) -> str:
        """One line on why this report is no verdict (empty when it is complete)."""
        if self.complete:
            return ""
        n = len(self.cases)
        if self.planned is not None:
            return f"{n} of {len(self.planned)} planned cases have results ({len(self.missing)} missing)"
        return f"{n} case{'' if n == 1 else 's'} recorded; the run did not finish"

    def to_dict(self) -> dict[str, Any]:
        d = {
            "schema_version": SCHEMA_VERSION, "run_id": self.run_id, "suite": self.suite, "created": self.created,
            "environment": self.environment, "summary": self.summary, "complete": self.complete,
            "notes": list(self.notes), "cases": [c.to_dict() for c in self.cases],
        }
        if self.planned is not None:
            d["planned"] = list(self.planned)
        return d

    def write(self, out_dir: Path) -> Path:
        p = Path(out_dir) / "report.json"
        atomic_write_text(p, json.dumps(self.to_dict(), indent=1, allow_nan=False) + "\n")
        return p

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Report":
        planned = d.get("planned")
        return cls(run_id=d["run_id"], suite=d["suite"], created=d["created"], environment=d.get("environment", {}),
                   cases=[CaseResult.from_dict(c) for c in d.get("cases", [])], complete=bool(d.get("complete", True)),
                   notes=list(d.get("notes", [])), planned=list(planned) if planned is not None else None)


def read_case_records(run_dir: str | Path) -> dict[str, tuple[CaseResult, dict[str, Any] | None]]:
    """The ``cases/<slug>.json`` records of a run folder: ``{id: (case, measurement)}``.

    A record that cannot be read (a foreign file, a ``.tmp`` left by a crash) is skipped: the
    case counts as missing."""
    out: dict[str, tuple[CaseResult, dict[str, Any] | None]] = {}
    cdir = Path(run_dir) / "cases"
    try:
        names = sorted(os.listdir(cdir))
    except (FileNotFoundError, NotADirectoryError):
        return out
    for name in names:
        if not name.endswith(".json") or name.startswith("."):
            continue
        try:
            doc = json.loads((cdir / name).read_text(encoding="utf-8"))
            case = CaseResult.from_dict(doc["case"])
        except (OSError, ValueError, KeyError, TypeError, UnicodeDecodeError):
            continue
        out[case.id] = (case, doc.get("measurement"))
    return out


def run_in_progress(run_dir: str | Path) -> bool:
    """True while a process is writing the run folder (it holds an flock on ``DIR/.lock``: exclusive
    for ``harness run``, shared by the processes of a pytest session; so the probe asks for an
    exclusive one)."""
    import fcntl

    try:
        fd = os.open(Path(run_dir) / ".lock", os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)  # closing drops the probe's own lock
    return False


def _ordered(cases: dict[str, CaseResult], planned: list[str] | None, first: list[str]) -> list[CaseResult]:
    order = [cid for cid in (planned or []) + first if cid in cases]
    seen = set(order)
    order += sorted(cid for cid in cases if cid not in seen)
    return [cases[cid] for cid in dict.fromkeys(order)]


def _from_records(run_dir: Path, report: Report | None) -> Report | None:
    """An incomplete report assembled from the case records (None: no records and no report)."""
    records = read_case_records(run_dir)
    if report is None:
        if not records:
            return None
        cases = {cid: c for cid, (c, _) in records.items()}
        return Report(run_dir.name, "unknown", "", {}, _ordered(cases, None, []), complete=False,
                      notes=[f"{run_dir / 'report.json'} is missing: this report was assembled from the "
                             f"{len(cases)} records in {run_dir / 'cases'}"])
    cases = {c.id: c for c in report.cases}
    cases.update({cid: c for cid, (c, _) in records.items()})
    report.cases = _ordered(cases, report.planned, [c.id for c in report.cases])
    state = "is still running" if run_in_progress(run_dir) else "did not finish"
    note = f"incomplete: the run {state}; {report.incomplete_reason()}"
    if note not in report.notes:
        report.notes.insert(0, note)
    return report


def load_report(path: str | Path) -> Report:
    """Read ``DIR/report.json`` (or the file itself); a clear error names what is wrong.

    A run that did not finish (``complete: false``: interrupted, killed or still running) is read
    with every case record its ``cases/`` folder holds; a run folder whose report.json is missing
    but whose ``cases/`` holds records gives an incomplete report assembled from them."""
    p = Path(path)
    if p.is_dir():
        p = p / "report.json"
    run_dir = p.parent if p.name == "report.json" else None
    if not p.exists():
        if run_dir is not None and run_dir.is_dir():
            found = _from_records(run_dir, None)
            if found is not None:
                return found
        raise InputError(f"{p}: no report.json here")
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"{p}: not valid JSON ({exc})") from None
    except OSError as exc:
        raise InputError(f"{p}: cannot read ({exc.strerror})") from None
    if not isinstance(doc, dict) or doc.get("schema_version") != SCHEMA_VERSION:
        got = doc.get("schema_version") if isinstance(doc, dict) else None
        raise InputError(f"{p}: schema_version {got!r} is not supported (expected 1)")
    try:
        report = Report.from_dict(doc)
    except (KeyError, TypeError) as exc:
        raise InputError(f"{p}: malformed report ({exc})") from None
    if not report.complete and run_dir is not None:
        report = _from_records(run_dir, report) or report
    return report


CSV_COLUMNS = ("case", "vector", "pipeline", "seed", "metric", "slice", "value", "baseline", "delta", "tolerance",
               "status")


def checks_csv_rows(case: CaseResult) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    for c in case.checks:
        w.writerow([case.id, case.vector, case.pipeline, case.seed, c.metric, c.slice, c.value, c.baseline, c.delta,
                    c.tolerance, c.status])
    return buf.getvalue()


def write_checks_csv(report: Report, out_dir: Path) -> Path:
    p = Path(out_dir) / "checks.csv"
    atomic_write_text(p, ",".join(CSV_COLUMNS) + "\n" + "".join(checks_csv_rows(c) for c in report.cases))
    return p
