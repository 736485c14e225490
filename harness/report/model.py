"""The data of report.json as classes: :class:`CaseResult`, :class:`Report`, and the rules that
decide what a version-2 report keeps per case (:func:`deciding_checks`, :func:`changed_params`).

Reading and validating a run folder is :mod:`harness.report.schema`'s (which re-exports these).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.comparing.engine import Check
from harness.fsio import atomic_write_text
from harness.report import formats
from harness.report.check_parts import CHECKS_FILE
from harness.status import GATING, STATUSES, exit_code, worst

__all__ = ["SCHEMA_VERSION", "NEAR_MISSES", "CaseResult", "Report", "derived_status", "deciding_checks",
           "changed_params", "writable"]

SCHEMA_VERSION = formats.CURRENT  # what this harness writes; readers accept formats.VERSIONS
CASE_STATUSES = STATUSES
#: Passing (or skipped) checks kept per case beside its failing ones: the nearest misses.
NEAR_MISSES = 5


def deciding_checks(checks: list[Check], near_misses: int = NEAR_MISSES) -> list[Check]:
    """The checks that decide a case, in their recorded order: every ``fail`` and ``error`` check,
    and the ``near_misses`` others with the largest severity ``|delta| / tolerance``
    (:attr:`Check.severity`: a skip is -1, so it comes last; ties keep the earlier check)."""
    rest = [i for i, c in enumerate(checks) if c.status not in GATING]
    keep = set(sorted(rest, key=lambda i: -checks[i].severity)[:near_misses])
    return [c for i, c in enumerate(checks) if c.status in GATING or i in keep]


#: harness.run.stage_record.IDENTITY_KEYS (the run layer, above these records; a test keeps them equal)
IDENTITY_KEYS = ("code", "weights")


def changed_params(baseline: dict[str, Any] | None, run: dict[str, Any] | None) -> list[dict[str, Any]]:
    """``[{"stage", "param", "baseline", "run"}]``: each stage parameter whose value differs between
    the pipeline config a baseline was baked with and this run's (``{stage: {param: value}}``;
    a parameter set on one side only has null on the other); [] when the baseline records none.
    The code and weights digests (``code``, ``weights``: harness.run.stage_record) count only when
    both sides record them: a baseline baked before they were recorded is not "changed" by them."""
    if not baseline or not isinstance(run, dict):
        return []
    out = []
    for stage in sorted(set(baseline) | set(run)):
        b, r = baseline.get(stage) or {}, run.get(stage) or {}
        if not isinstance(b, dict) or not isinstance(r, dict):
            b, r = {"(stage)": b}, {"(stage)": r}
        out += [{"stage": stage, "param": k, "baseline": b.get(k), "run": r.get(k)}
                for k in sorted(set(b) | set(r)) if b.get(k) != r.get(k)
                and not (k in IDENTITY_KEYS and (k not in b or k not in r))]
    return out


@dataclass
class CaseResult:
    """One recorded case.  ``checks``: all its checks until it is recorded, then (and as read from
    a version-2 report) the deciding ones only; ``n_checks``/``n_failed`` count all of them
    (None: count ``checks``)."""

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
    changed: list[dict[str, Any]] = field(default_factory=list)
    n_checks: int | None = None
    n_failed: int | None = None
    # the first stage whose image differs from the baseline's reference (format_v2.Diverged); None: not looked for
    diverged: dict[str, Any] | None = None

    @property
    def check_count(self) -> int:
        return len(self.checks) if self.n_checks is None else self.n_checks

    @property
    def failed_count(self) -> int:
        return sum(c.status in GATING for c in self.checks) if self.n_failed is None else self.n_failed

    def keep_deciding(self) -> None:
        """Drop all but the deciding checks (after they are stored in full), keeping the counts."""
        self.n_checks, self.n_failed = self.check_count, self.failed_count
        self.checks = deciding_checks(self.checks)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "vector": self.vector, "pipeline": self.pipeline, "seed": self.seed,
            "status": self.status, "error": self.error,
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
            "artifacts": dict(self.artifacts), "changed": [dict(c) for c in self.changed],
            "n_checks": self.check_count, "n_failed": self.failed_count,
            "checks": [c.to_dict() for c in deciding_checks(self.checks)],
            "stages": dict(self.stages), "config": self.config,
            **({"diverged": dict(self.diverged)} if self.diverged is not None else {}),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], version: int = SCHEMA_VERSION) -> "CaseResult":
        """A case as read (of report.json ``version``): its status derived from its checks
        (:func:`derived_status`; in version 2 also from ``n_failed``), never trusted to be better
        than they say; a contradiction is named in ``error``."""
        checks = [Check.from_dict(c) for c in d.get("checks", [])]
        counts = version >= 2 and "n_checks" in d
        status, error = d["status"], d.get("error")
        derived = derived_status(status, checks, d["n_failed"] if counts else None)
        if derived != status:
            n = max(sum(c.status == derived for c in checks), d["n_failed"] if counts else 0)
            why = (f"recorded as {status!r} but {n} of its checks {'says' if n == 1 else 'say'} {derived!r}: "
                   f"read as {derived!r}")
            error = f"{why}; {error}" if error else why
        return cls(id=d["id"], vector=d["vector"], pipeline=d["pipeline"], seed=d.get("seed"),
                   status=derived, error=error, timings=dict(d.get("timings", {})),
                   artifacts=dict(d.get("artifacts", {})), checks=checks,
                   stages=dict(d.get("stages", {})), config=dict(d.get("config", {})),
                   changed=[dict(c) for c in d.get("changed", [])] if version >= 2 else [],
                   n_checks=d["n_checks"] if counts else None, n_failed=d["n_failed"] if counts else None,
                   diverged=dict(d["diverged"]) if version >= 2 and d.get("diverged") else None)


def derived_status(recorded: str, checks: list[Check], n_failed: int | None = None) -> str:
    """A case's status as read: ``recorded`` made worse by any gating check, never better.

    Every check gates (a writer makes a case the worst of its checks), so a ``fail`` or
    ``error`` check makes a ``pass`` (or ``skip``) case ``fail`` (``error``), and so does a count
    of ``n_failed`` failing checks beyond those listed; the recorded status may be worse than its
    checks (an errored stage, a missing baseline) and is then kept."""
    gating = [c.status for c in checks if c.status in GATING]
    if n_failed and n_failed > len(gating):
        gating.append("fail")
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
    schema_version: int = SCHEMA_VERSION  # as read (1: every check is in cases; 2: the deciding ones)

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
        if self.planned is not None and (self.missing or not self.planned):
            return f"{n} of {len(self.planned)} planned cases have results ({len(self.missing)} missing)"
        if self.planned is not None:  # the case records are all there, report.json is not: never a verdict
            return (f"all {len(self.planned)} planned cases have case records, but report.json does not hold "
                    f"them all: the run did not finish writing it")
        return f"{n} case{'' if n == 1 else 's'} recorded; the run did not finish"

    def to_dict(self) -> dict[str, Any]:
        d = {
            "schema_version": SCHEMA_VERSION, "run_id": self.run_id, "suite": self.suite, "created": self.created,
            "environment": self.environment, "summary": self.summary, "complete": self.complete,
            "notes": list(self.notes), "checks_file": CHECKS_FILE, "cases": [c.to_dict() for c in self.cases],
        }
        if self.planned is not None:
            d["planned"] = list(self.planned)
        return d

    def write(self, out_dir: Path) -> Path:
        """report.json, atomically, after validating it against the schema (a violation is a bug)."""
        p = Path(out_dir) / "report.json"
        doc = self.to_dict()
        writable(doc, "report", p)
        atomic_write_text(p, json.dumps(doc, indent=1, allow_nan=False) + "\n")
        return p

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Report":
        """A report as read: incomplete when planned cases have no result, whatever ``complete`` says."""
        planned = d.get("planned")
        report = cls(run_id=d["run_id"], suite=d["suite"], created=d["created"], environment=d.get("environment", {}),
                     cases=[CaseResult.from_dict(c, d["schema_version"]) for c in d.get("cases", [])],
                     complete=bool(d.get("complete", True)), notes=list(d.get("notes", [])),
                     planned=list(planned) if planned is not None else None,
                     schema_version=d["schema_version"])
        if report.complete and report.missing:
            said = "says it is complete" if "complete" in d else "has no 'complete' key"
            report.complete = False
            report.notes.insert(0, f"report.json {said} but {len(report.missing)} of its {len(report.planned or ())} "
                                   f"planned cases have no result: read as incomplete")
        return report


def writable(doc: dict[str, Any], kind: str, path: Path) -> None:
    """Refuse to write a document that its own reader would refuse: that is a bug in harness."""
    found = formats.problem(doc, kind)
    if found:
        raise RuntimeError(f"{path}: refusing to write a {kind} that breaks schema v{formats.CURRENT} ({found})")
