"""report.json (contract, ``schema_version`` 1) as data classes, with atomic writes.

``{"schema_version", "run_id", "suite", "created", "environment", "summary":
{"passed", "failed", "errors", "skipped"}, "cases": [{"id", "vector",
"pipeline", "seed", "status", "error", "timings", "artifacts", "checks"}]}``

Extra keys (``complete``, a case's ``stages`` numbers and ``config``) are
additions that readers of the contract may ignore.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.comparing.engine import Check
from harness.errors import InputError
from harness.status import STATUSES, exit_code, worst
from harness.fsio import atomic_write_text

__all__ = ["SCHEMA_VERSION", "CaseResult", "Report", "load_report", "write_checks_csv"]

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

    @property
    def summary(self) -> dict[str, int]:
        count = {s: sum(c.status == s for c in self.cases) for s in CASE_STATUSES}
        return {"passed": count["pass"], "failed": count["fail"], "errors": count["error"], "skipped": count["skip"]}

    @property
    def status(self) -> str:
        return worst(c.status for c in self.cases)

    @property
    def exit_code(self) -> int:
        return exit_code(self.status)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION, "run_id": self.run_id, "suite": self.suite, "created": self.created,
            "environment": self.environment, "summary": self.summary, "complete": self.complete,
            "notes": list(self.notes), "cases": [c.to_dict() for c in self.cases],
        }

    def write(self, out_dir: Path) -> Path:
        p = Path(out_dir) / "report.json"
        atomic_write_text(p, json.dumps(self.to_dict(), indent=1, allow_nan=False) + "\n")
        return p

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Report":
        return cls(run_id=d["run_id"], suite=d["suite"], created=d["created"], environment=d.get("environment", {}),
                   cases=[CaseResult.from_dict(c) for c in d.get("cases", [])], complete=bool(d.get("complete", True)),
                   notes=list(d.get("notes", [])))


def load_report(path: str | Path) -> Report:
    """Read ``DIR/report.json`` (or the file itself); a clear error names what is wrong."""
    p = Path(path)
    if p.is_dir():
        p = p / "report.json"
    if not p.exists():
        raise InputError(f"{p}: no report.json here")
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"{p}: not valid JSON ({exc})") from None
    if doc.get("schema_version") != SCHEMA_VERSION:
        raise InputError(f"{p}: schema_version {doc.get('schema_version')!r} is not supported (expected 1)")
    try:
        return Report.from_dict(doc)
    except (KeyError, TypeError) as exc:
        raise InputError(f"{p}: malformed report ({exc})") from None


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
