"""report.json (contract, ``schema_version`` 2; version 1 still read) as data classes, with atomic writes.

``{"schema_version", "run_id", "suite", "created", "complete", "planned", "notes", "environment",
"summary": {"passed", "failed", "errors", "skipped"}, "checks_file": "checks.parquet", "cases":
[{"id", "vector", "pipeline", "seed", "status", "error", "timings", "artifacts", "changed",
"n_checks", "n_failed", "checks"}]}`` (:mod:`harness.report.format_v2`): a case's ``checks`` are
the ones that decide it (:func:`deciding_checks`), every check of the run is in
``checks.parquet`` (:mod:`harness.report.checks_table`).  Extra keys (a case's ``stages``
numbers and ``config``) are additions that readers of the contract may ignore.  Version 1 held
every check in report.json; it is read as it was (:attr:`Report.schema_version` says which).

A run folder (see :mod:`harness.run.rundir`) holds ``cases/<slug>.json`` records (and each
case's checks in ``checks/<slug>.parquet``, its measurement in ``cases/<slug>.measure.npz``) written
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
  ``complete`` key says or whether it has one;
* (version 2) a case ``pass`` whose ``n_failed`` counts failing checks reads as ``fail``;
* (version 2) in a run that did not finish, a recorded case whose checks the folder does not
  hold (``n_checks`` rows in ``checks.parquet`` or its part file: missing, truncated) is read
  as not recorded, so the run stays incomplete (and a resume runs it again), never a crash.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from harness.errors import InputError
from harness.naming import case_slug
from harness.report import formats
from harness.report.model import (NEAR_MISSES, SCHEMA_VERSION, CaseResult, Report, changed_params, deciding_checks,
                                  derived_status, writable)

__all__ = ["SCHEMA_VERSION", "NEAR_MISSES", "CaseResult", "Report", "load_report", "read_case_records",
           "read_case_record", "case_record_text", "derived_status", "deciding_checks", "changed_params",
           "run_in_progress"]


#: ``{case id: (case, measurement)}``: a run folder's case records as read.
Records = dict[str, tuple[CaseResult, "dict[str, Any] | None"]]


def case_record_text(case: CaseResult, measurement: dict[str, str] | None, path: Path | str = "case record") -> str:
    """``cases/<slug>.json``'s text ``{"schema_version": 2, "case", "measurement"}``, validated like
    report.json; ``measurement``: ``{"file", "sha256"}`` of its ``.measure.npz`` (None: none)."""
    doc = {"schema_version": SCHEMA_VERSION, "case": case.to_dict(), "measurement": measurement}
    writable(doc, "case-record", Path(path))
    return json.dumps(doc, allow_nan=False)


def read_case_record(path: str | Path, *, measurement: bool = True) -> tuple[CaseResult, dict[str, Any] | None]:
    """One ``cases/<slug>.json`` record ``(case, measurement)`` (version 2, or 1 with the
    measurement inline), validated against the case-record schema and named for its own case id;
    anything else, or a measurement file that is not the one recorded, is an InputError naming
    the file.  ``measurement=False``: the measurement is not read (None)."""
    p = Path(path)
    return _record(p, _read_json(p), measurement)


def _read_json(p: Path) -> Any:
    """The JSON document in ``p``; not JSON or unreadable is an InputError naming the file."""
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"{p}: not valid JSON ({exc})") from None
    except OSError as exc:
        raise InputError(f"{p}: cannot read ({exc.strerror})") from None


def _record(p: Path, doc: Any, measurement: bool) -> tuple[CaseResult, dict[str, Any] | None]:
    version = 2 if isinstance(doc, dict) and "schema_version" in doc else 1  # version-1 records had no key
    found = formats.problem(doc, "case-record", version)
    if found:
        raise InputError(f"{p}: malformed case record: {found}")
    slug = case_slug(doc["case"]["id"])
    if p.name != f"{slug}.json":
        raise InputError(f"{p}: case.id: {doc['case']['id']!r} belongs in {slug}.json")
    ref = doc["measurement"]
    if version == 1 or ref is None or not measurement:
        return CaseResult.from_dict(doc["case"], version), ref if version == 1 and measurement else None
    from harness.report.measure_file import SUFFIX, read_measure

    if ref["file"] != slug + SUFFIX:
        raise InputError(f"{p}: measurement.file: {ref['file']!r}, expected {slug + SUFFIX!r}")
    return CaseResult.from_dict(doc["case"], version), read_measure(p.parent / ref["file"], ref["sha256"])


def read_case_records(run_dir: str | Path, *, measurements: bool = True,
                      dropped: list[str] | None = None) -> Records:
    """The ``cases/<slug>.json`` records of a run folder: ``{id: (case, measurement)}``
    (``measurements=False``: measurements not read, None).

    A file that is not JSON (a foreign file; a ``.tmp`` left by a crash is not even listed) is
    skipped: its case counts as missing, so the run reads as incomplete.  So is a version-2 case
    whose checks the folder does not hold in full (its part file missing or truncated, and not
    compacted): its id is appended to ``dropped``.  A JSON record that breaks the case-record
    schema is no crash debris (records are written atomically) but a damaged or forged run
    folder: an InputError naming the file and the field."""
    out: Records = {}
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
        case, measurement = _record(cdir / name, doc, measurements)
        out[case.id] = (case, measurement)
    lost = _checks_lost(Path(run_dir), [c for c, _ in out.values() if c.n_checks is not None])
    for cid in lost:
        del out[cid]
    if dropped is not None:
        dropped += lost
    return out


def _checks_lost(run_dir: Path, cases: list[CaseResult]) -> list[str]:
    """The ids of version-2 ``cases`` whose ``n_checks`` rows the run folder does not hold."""
    from harness.report.check_parts import short_cases, stored_rows

    want = [c for c in cases if c.check_count]
    if not want:
        return []
    return [cid for cid, _, _ in short_cases(want, stored_rows(run_dir, [c.id for c in want]))]


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


def _lost_note(run_dir: Path, lost: list[str]) -> str:
    return (f"{len(lost)} recorded case(s) whose checks are missing or unreadable in {run_dir} (read as not "
            f"recorded): {', '.join(lost[:5])}{' ...' if len(lost) > 5 else ''}")


def _from_records(run_dir: Path, report: Report | None) -> Report | None:
    """An incomplete report assembled from the case records (None: no records and no report)."""
    lost: list[str] = []
    records = read_case_records(run_dir, measurements=False, dropped=lost)
    if report is None:
        if not records:
            return None
        cases = {cid: c for cid, (c, _) in records.items()}
        version = 2 if any(c.n_checks is not None for c in cases.values()) else 1
        return Report(run_dir.name, "unknown", "", {}, _ordered(cases, None, []), complete=False,
                      notes=[f"{run_dir / 'report.json'} is missing: this report was assembled from the "
                             f"{len(cases)} records in {run_dir / 'cases'}"]
                      + ([_lost_note(run_dir, lost)] if lost else []), schema_version=version)
    cases = {c.id: c for c in report.cases if c.id not in lost}
    cases.update({cid: c for cid, (c, _) in records.items()})
    report.cases = _ordered(cases, report.planned, [c.id for c in report.cases])
    state = "is still running" if run_in_progress(run_dir) else "did not finish"
    note = f"incomplete: the run {state}; {report.incomplete_reason()}"
    if note not in report.notes:
        report.notes.insert(0, note)
    if lost:
        report.notes.insert(1, _lost_note(run_dir, lost))
    return report


def load_report(path: str | Path) -> Report:
    """Read ``DIR/report.json`` (or the file itself), validated; a clear error names what is wrong.

    A run that did not finish (``complete: false``: interrupted, killed or still running; or
    planned cases without a result) is read with every case record its ``cases/`` folder holds;
    a run folder whose report.json is missing but whose ``cases/`` holds records gives an
    incomplete report assembled from them.  A complete report's verdict is report.json's own
    (every failing check is in it); :func:`harness.report.checks_table.read_checks` refuses a
    folder that lacks a case's checks when all of them are asked for."""
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
