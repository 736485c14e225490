"""report.json (contract, ``schema_version`` 1) as data classes, with atomic writes.

``{"schema_version", "run_id", "suite", "created", "environment", "summary":
{"passed", "failed", "errors", "skipped"}, "cases": [{"id", "vector",
"pipeline", "seed", "status", "error", "timings", "artifacts", "checks"}]}``

Extra keys (``complete``, ``planned``, ``notes``, a case's ``stages`` numbers and ``config``)
are additions that readers of the contract may ignore.

A run folder (see :mod:`harness.run.rundir`) holds ``cases/<slug>.json`` records written
as cases finish and a ``report.json`` written twice: at the start (``complete: false``, no
cases, ``planned``: the ids the run will record) and once at the end or on an interrupt.
:func:`load_report` therefore reads an interrupted run, or one still in progress, from its case
records: an incomplete :class:`Report` that every consumer fails, never a crash and never a pass.

**Validated on load and on write** against the schema of its version
(:mod:`harness.report.formats`): a malformed report.json or case record is an
:class:`~harness.errors.InputError` naming the file and the field's JSON path (exit 2).  What a
valid file says is then read so that nothing passes that should not:

* a case's status is derived from its checks (:func:`derived_status`): every check gates (a
  case is the worst of its checks in every writer: baseline comparisons, the absolute
  ``expect`` and ``stage_effect`` checks, distribution and cross-model checks), so a ``pass``
  case holding a ``fail`` check reads as ``fail``;
* a report whose ``planned`` cases are not all recorded is incomplete, whatever its
  ``complete`` key says or whether it has one.
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
from harness.fsio import atomic_write_text
from harness.naming import case_slug
from harness.report import formats
from harness.status import GATING, STATUSES, exit_code, worst

__all__ = ["SCHEMA_VERSION", "CaseResult", "Report", "load_report", "write_checks_csv", "read_case_records",
           "read_case_record", "case_record_text", "derived_status", "run_in_progress"]

SCHEMA_VERSION = formats.CURRENT  # what this harness writes; readers accept formats.VERSIONS
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
        """A case as read: its status derived from its checks (:func:`derived_status`), never trusted
        to be better than they say; a contradiction is named in ``error``."""
        checks = [Check.from_dict(c) for c in d.get("checks", [])]
        status, error = d["status"], d.get("error")
        derived = derived_status(status, checks)
        if derived != status:
            n = sum(c.status == derived for c in checks)
            why = (f"recorded as {status!r} but {n} of its checks {'says' if n == 1 else 'say'} {derived!r}: "
                   f"read as {derived!r}")
            error = f"{why}; {error}" if error else why
        return cls(id=d["id"], vector=d["vector"], pipeline=d["pipeline"], seed=d.get("seed"),
                   status=derived, error=error, timings=dict(d.get("timings", {})),
                   artifacts=dict(d.get("artifacts", {})), checks=checks,
                   stages=dict(d.get("stages", {})), config=dict(d.get("config", {})))


def derived_status(recorded: str, checks: list[Check]) -> str:
    """A case's status as read: ``recorded`` made worse by any gating check, never better.

    Every check gates (a writer makes a case the worst of its checks), so a ``fail`` or
    ``error`` check makes a ``pass`` (or ``skip``) case ``fail`` (``error``); the recorded status
    may be worse than its checks (an errored stage, a missing baseline) and is then kept."""
    gating = [c.status for c in checks if c.status in GATING]
    return worst([recorded, *gating]) if gating else recorded


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
        """report.json, atomically, after validating it against the schema (a violation is a bug)."""
        p = Path(out_dir) / "report.json"
        doc = self.to_dict()
        _writable(doc, "report", p)
        atomic_write_text(p, json.dumps(doc, indent=1, allow_nan=False) + "\n")
        return p

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Report":
        """A report as read: incomplete when planned cases have no result, whatever ``complete`` says."""
        planned = d.get("planned")
        report = cls(run_id=d["run_id"], suite=d["suite"], created=d["created"], environment=d.get("environment", {}),
                     cases=[CaseResult.from_dict(c) for c in d.get("cases", [])],
                     complete=bool(d.get("complete", True)), notes=list(d.get("notes", [])),
                     planned=list(planned) if planned is not None else None)
        if report.complete and report.missing:
            said = "says it is complete" if "complete" in d else "has no 'complete' key"
            report.complete = False
            report.notes.insert(0, f"report.json {said} but {len(report.missing)} of its {len(report.planned or ())} "
                                   f"planned cases have no result: read as incomplete")
        return report


def _writable(doc: dict[str, Any], kind: str, path: Path) -> None:
    """Refuse to write a document that its own reader would refuse: that is a bug in harness."""
    found = formats.problem(doc, kind)
    if found:
        raise RuntimeError(f"{path}: refusing to write a {kind} that breaks schema v{formats.CURRENT} ({found})")


def case_record_text(case: CaseResult, measurement: dict[str, Any] | None, path: Path | str = "case record") -> str:
    """``cases/<slug>.json``'s text ``{"case", "measurement"}``, validated like report.json."""
    doc = {"case": case.to_dict(), "measurement": measurement}
    _writable(doc, "case-record", Path(path))
    return json.dumps(doc, allow_nan=False)


def read_case_record(path: str | Path) -> tuple[CaseResult, dict[str, Any] | None]:
    """One ``cases/<slug>.json`` record ``(case, measurement)``, validated against the case-record
    schema and named for its own case id; anything else is an InputError naming the file."""
    p = Path(path)
    return _record(p, _read_json(p))


def _read_json(p: Path) -> Any:
    """The JSON document in ``p``; not JSON or unreadable is an InputError naming the file."""
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"{p}: not valid JSON ({exc})") from None
    except OSError as exc:
        raise InputError(f"{p}: cannot read ({exc.strerror})") from None


def _record(p: Path, doc: Any) -> tuple[CaseResult, dict[str, Any] | None]:
    found = formats.problem(doc, "case-record")
    if found:
        raise InputError(f"{p}: malformed case record: {found}")
    if p.name != f"{case_slug(doc['case']['id'])}.json":
        raise InputError(f"{p}: case.id: {doc['case']['id']!r} belongs in {case_slug(doc['case']['id'])}.json")
    return CaseResult.from_dict(doc["case"]), doc["measurement"]


def read_case_records(run_dir: str | Path) -> dict[str, tuple[CaseResult, dict[str, Any] | None]]:
    """The ``cases/<slug>.json`` records of a run folder: ``{id: (case, measurement)}``.

    A file that is not JSON (a foreign file; a ``.tmp`` left by a crash is not even listed) is
    skipped: its case counts as missing, so the run reads as incomplete.  A JSON record that
    breaks the case-record schema is no crash debris (records are written atomically) but a
    damaged or forged run folder: an InputError naming the file and the field."""
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
        except (OSError, ValueError, UnicodeDecodeError):
            continue
        case, measurement = _record(cdir / name, doc)
        out[case.id] = (case, measurement)
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
    """Read ``DIR/report.json`` (or the file itself), validated; a clear error names what is wrong.

    A run that did not finish (``complete: false``: interrupted, killed or still running; or
    planned cases without a result) is read with every case record its ``cases/`` folder holds;
    a run folder whose report.json is missing but whose ``cases/`` holds records gives an
    incomplete report assembled from them."""
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
    report = Report.from_dict(_validated(p, _read_json(p)))
    if not report.complete and run_dir is not None:
        report = _from_records(run_dir, report) or report
    return report


def _validated(p: Path, doc: Any) -> dict[str, Any]:
    """``doc`` when it is a report.json of a version this harness reads, else an InputError
    ``<file>: <json path>: <problem>``."""
    version = formats.version_of(doc)
    if version is None:
        got = doc.get("schema_version") if isinstance(doc, dict) else None
        supported = ", ".join(map(str, formats.VERSIONS))
        raise InputError(f"{p}: schema_version: {got!r} is not supported (expected {supported})")
    found = formats.problem(doc, "report", version)
    if found:
        raise InputError(f"{p}: malformed report: {found}")
    return doc


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
