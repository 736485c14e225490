"""What a run tells whoever watches it, as structured events rather than lines of text.

The runner (:mod:`harness.run.runner`) calls a :class:`RunObserver`'s methods; it never formats a
line itself.  :class:`LineObserver` turns the events into the one-line-per-case text that a
``progress: Callable[[str], None]`` callback has always received (``harness bake``, the API,
tests); ``harness run`` passes a richer observer (:mod:`harness.report.progress`: the worst checks
under each failing case, a progress bar on a terminal).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol

from harness.errors import ConfigError
from harness.naming import is_cross
from harness.status import GATING
from harness.report.schema import CaseResult, Report

__all__ = ["RunObserver", "RunEnd", "LineObserver", "FailLimit", "case_line", "summary_lines"]


@dataclass
class RunEnd:
    """How a run ended: its report (``complete`` or not), folder, the cases run by this invocation,
    its wall time in seconds and whether it judged (``harness bake`` measures only)."""

    report: Report
    run_dir: Path
    ran: int
    seconds: float
    judged: bool


class RunObserver(Protocol):
    """The events of one run, in order: ``begin`` once, then ``started``/``recorded`` per case (a
    case may start again after its worker crashed) and ``note`` at any time, then ``finished``."""

    def begin(self, total: int, done: int) -> None:
        """``total`` cases planned (group and cross entries not counted), ``done`` recorded before (a resume)."""

    def started(self, case_id: str) -> None:
        """A case was handed to a worker."""

    def recorded(self, case: CaseResult, done: int, total: int, judged: bool) -> None:
        """A case was judged and recorded (its checks are the deciding ones); ``done`` of ``total``."""

    def note(self, text: str) -> None:
        """Anything else worth a line: a retried case, a replaced worker, a group or cross entry."""

    def finished(self, end: RunEnd) -> None:
        """The run ended normally (complete, or stopped by ``maxfail``): its summary."""


def case_line(case: CaseResult, done: int, total: int, judged: bool) -> str:
    """``[7/30] fail  microprint_dilation/classic/s1 (0.4s)  30 failed checks``."""
    n_fail = sum(c.status == "fail" for c in case.checks)  # the deciding checks keep every failing one
    extra = f"  {n_fail} failed checks" if n_fail else ""
    extra += f"  {case.error}" if case.error else ""
    shown = case.status if judged or case.status == "error" else "measured"
    return f"[{done}/{total}] {shown:5} {case.id} ({sum(case.timings.values()):.1f}s){extra}"


def summary_lines(end: RunEnd) -> list[str]:
    """``FAIL: 30 cases in 41.2s: 6 passed, 24 failed, 0 errors -> reports/…/report.json`` and the notes
    (``INCOMPLETE`` with how many cases have results for a run that did not finish)."""
    report = end.report
    took = f"{end.ran} cases in {end.seconds:.1f}s"
    extra = sum(c.id.endswith("/seeds") or is_cross(c.pipeline) for c in report.cases)
    if end.judged and extra:  # distribution groups and cross-model entries are judged entries too
        took += f" + {extra} group/cross entries"
    where = end.run_dir / "report.json"
    s = report.summary
    if not report.complete:
        head = f"INCOMPLETE ({report.incomplete_reason()})"
    else:
        head = report.status.upper() if end.judged else "MEASURED"
    counts = (f"{s['passed']} passed, {s['failed']} failed, {s['errors']} errors" if end.judged
              else f"{s['errors']} errors")
    return [f"{head}: {took}: {counts} -> {where}"] + [f"note: {n}" for n in report.notes]


class LineObserver:
    """The plain lines of a run through ``say``: one per case, the notes, the summary."""

    def __init__(self, say: Callable[[str], None]) -> None:
        self.say = say
        self.t_start = time.perf_counter()

    def begin(self, total: int, done: int) -> None:
        self.t_start = time.perf_counter()

    def started(self, case_id: str) -> None:
        pass

    def recorded(self, case: CaseResult, done: int, total: int, judged: bool) -> None:
        self.say(case_line(case, done, total, judged))

    def note(self, text: str) -> None:
        self.say(text)

    def finished(self, end: RunEnd) -> None:
        for line in summary_lines(end):
            self.say(line)


class FailLimit:
    """``--maxfail N``: no case starts after ``N`` failed or errored cases of this invocation
    (None: no limit).  The run is then incomplete (``complete: false``, exit 1), never a pass."""

    def __init__(self, maxfail: int | None) -> None:
        if maxfail is not None and maxfail < 1:
            raise ConfigError(f"--maxfail must be >= 1, got {maxfail}")
        self.maxfail = maxfail
        self.failing = 0

    def reached(self, status: str, more: bool, progress: str, run_dir: Path) -> str:
        """After a case with ``status`` landed (``more``: cases are still to come): the run's note
        when the limit is reached ("stopped after 3 failing cases (--maxfail 3): …"), else ""."""
        self.failing += status in GATING
        if self.maxfail is None or self.failing < self.maxfail or not more:
            return ""
        return (f"stopped after {self.failing} failing cases (--maxfail {self.maxfail}): {progress}; "
                f"finish it with `harness run --resume {run_dir}`")
