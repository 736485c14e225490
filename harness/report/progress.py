"""``harness run``'s terminal output: what each case did and, for a failing one, why.

Two observers of a run's events (:class:`harness.run.observer.RunObserver`), picked by
:func:`make_progress`:

* :class:`TextProgress`: plain lines, one per case, no control codes (not a terminal, ``CI`` set,
  ``TERM=dumb``, or ``HARNESS_PROGRESS=plain``);
* :class:`BarProgress`: a rich progress bar (done/total, elapsed, ETA, the cases running now and
  for how long), with the failing cases (``-v``: every case) printed above it as they land
  (``HARNESS_PROGRESS=bar`` forces it).

Both print under a failing or errored case its worst three checks (metric, slice, pixel box,
value vs baseline, × tolerance) and what changed (the case's ``changed`` pipeline parameters,
its first diverging stage), and end with the run's configuration differences and the summary.
Verbosity: ``-1`` (``-q``) the failing cases' one-liners and the summary; ``0`` every case, details
under failing ones; ``1`` (``-v``) every case with all its deciding checks.
"""

from __future__ import annotations

import os
import sys
import time
from typing import IO, Any, Callable, Mapping

from harness.report.schema import CaseResult, Report
from harness.report.text import severity_line, worst_checks
from harness.report.whatchanged import change_text, diverged_text, run_changes
from harness.run.observer import RunEnd, case_line, summary_lines
from harness.status import GATING

__all__ = ["case_details", "changes_block", "use_bar", "make_progress", "TextProgress", "BarProgress"]

WORST = 3  # checks shown under a failing case (all deciding ones with -v)
_INDENT = "    "


def case_details(case: CaseResult, verbosity: int = 0) -> list[str]:
    """The lines under a case: its worst :data:`WORST` failing checks (``verbosity >= 1``: all its
    deciding checks, worst first), a pointer to the rest, what changed and its first diverging stage."""
    if verbosity >= 1:
        shown = worst_checks(case.checks, gating_only=False)
    else:
        shown = worst_checks(case.checks, WORST)
    lines = [_INDENT + severity_line(c) for c in shown]
    more = case.failed_count - sum(c.status in GATING for c in shown)
    if more > 0:
        lines.append(f"{_INDENT}... {more} more failing checks (all in checks.parquet)")
    if case.changed:
        lines.append(f"{_INDENT}changed: " + "; ".join(change_text(ch) for ch in case.changed))
    diverged = diverged_text(case.diverged)
    if diverged:
        lines.append(_INDENT + diverged)
    return lines


def changes_block(report: Report) -> list[str]:
    """The run's configuration differences from its baselines, most cases first (none: no lines)."""
    changes = run_changes(report)
    if not changes:
        return []
    return ["what changed (pipeline config vs baselines):"] + [
        f"  {text}: {n} case{'' if n == 1 else 's'} ({', '.join(statuses)})" for text, n, statuses in changes]


def _shows(case: CaseResult, verbosity: int, every_case: bool) -> tuple[bool, bool]:
    """(its line, its details) at ``verbosity``; ``every_case``: a passing case's line too."""
    bad = case.status in GATING
    return every_case or bad, verbosity >= 1 or (verbosity == 0 and bad)


class TextProgress:
    """Plain lines through ``say`` (no control codes): a line per case, details under failing ones."""

    def __init__(self, say: Callable[[str], None], verbosity: int = 0) -> None:
        self.say = say
        self.verbosity = verbosity
        self.every_case = verbosity >= 0  # a line for a passing case too

    def begin(self, total: int, done: int) -> None:
        pass

    def started(self, case_id: str) -> None:
        pass

    def recorded(self, case: CaseResult, done: int, total: int, judged: bool) -> None:
        line, details = _shows(case, self.verbosity, self.every_case)
        head = case_line(case, done, total, judged) if line else ""
        self._case_block(head, case_details(case, self.verbosity) if details else [], case.status in GATING)

    def _case_block(self, head: str, details: list[str], bad: bool) -> None:
        for ln in ([head] if head else []) + details:
            self.say(ln)

    def note(self, text: str) -> None:
        if self.verbosity >= 0:
            self.say(text)

    def finished(self, end: RunEnd) -> None:
        for line in changes_block(end.report) + summary_lines(end):
            self.say(line)

    def close(self) -> None:
        pass

    def __enter__(self) -> TextProgress:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class BarProgress(TextProgress):
    """A rich progress bar on ``stream`` (a terminal): done/total, elapsed, ETA and the running cases;
    the failing cases' lines (``-v``: every case's) go above the bar as they land, as
    :class:`TextProgress` prints them."""

    def __init__(self, stream: IO[str], verbosity: int = 0, *, clock: Callable[[], float] = time.monotonic) -> None:
        from rich.console import Console

        self.console = Console(file=stream, force_terminal=True, highlight=False, markup=False, emoji=False)
        super().__init__(self._print, verbosity)
        self.every_case = verbosity >= 1  # the bar counts the passing cases; -v lists them too
        self.clock = clock
        self.running: dict[str, float] = {}  # case id -> when it started
        self.t0 = clock()
        self.ran = 0
        self.total = self.done = 0
        self.progress: Any = None
        self.task: Any = None

    def _print(self, line: str, style: str = "", rest: list[str] | None = None) -> None:
        """``line`` (in ``style``) and the ``rest`` under it, printed above the bar in one go."""
        from rich.text import Text

        text = Text(line, style=style)
        for ln in rest or ():
            text.append("\n" + ln)
        console = self.progress.console if self.progress is not None else self.console
        # soft_wrap: a long check line is wrapped by the terminal, not broken in two by rich
        console.print(text, soft_wrap=True)

    def _case_block(self, head: str, details: list[str], bad: bool) -> None:
        if head:
            self._print(head, "bold red" if bad else "", details)
        elif details:
            self._print(details[0], "", details[1:])

    def begin(self, total: int, done: int) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

        self.t0, self.total, self.done = self.clock(), total, done
        eta, running = _live_columns(self)
        self.progress = Progress(BarColumn(bar_width=30), MofNCompleteColumn(), TimeElapsedColumn(), eta, running,
                                 console=self.console, transient=True)
        self.task = self.progress.add_task("cases", total=total, completed=done)
        self.progress.start()

    def started(self, case_id: str) -> None:
        self.running[case_id] = self.clock()

    def recorded(self, case: CaseResult, done: int, total: int, judged: bool) -> None:
        self.running.pop(case.id, None)
        self.ran, self.done = self.ran + 1, done
        if self.progress is not None:
            self.progress.update(self.task, completed=done)
        super().recorded(case, done, total, judged)

    def finished(self, end: RunEnd) -> None:
        self.close()
        super().finished(end)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None

    # -- what the live columns show (plain strings: testable without a terminal)
    def eta_text(self) -> str:
        """``ETA 0:02:10`` from this invocation's pace (cases landed per second, all workers together)."""
        if not self.ran or self.done >= self.total:
            return "ETA -:--:--"
        left = (self.clock() - self.t0) / self.ran * (self.total - self.done)
        return f"ETA {_hms(left)}"

    def running_text(self, shown: int = 2) -> str:
        """``running: caption_portrait/p/s1 12s, … +3``, the longest-running first."""
        if not self.running:
            return ""
        now = self.clock()
        ids = sorted(self.running, key=self.running.get)
        parts = [f"{cid} {now - self.running[cid]:.0f}s" for cid in ids[:shown]]
        more = f" +{len(ids) - shown}" if len(ids) > shown else ""
        return "running: " + ", ".join(parts) + more


def _hms(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


def _live_columns(bar: BarProgress) -> tuple[Any, Any]:
    """The ETA and running-cases columns (rich calls ``render`` at each refresh, so the seconds tick)."""
    from rich.progress import ProgressColumn
    from rich.text import Text

    class _Eta(ProgressColumn):
        def render(self, task: Any) -> Text:
            return Text(bar.eta_text(), style="progress.remaining")

    class _Running(ProgressColumn):
        def render(self, task: Any) -> Text:
            return Text(bar.running_text(), no_wrap=True, overflow="ellipsis", style="cyan")

    return _Eta(), _Running()


def use_bar(stream: IO[str], env: Mapping[str, str] | None = None) -> bool:
    """Whether ``stream`` gets a progress bar: ``HARNESS_PROGRESS=bar|plain`` decides when set; else a
    terminal that is not CI (``CI`` set to anything but ``""``/``0``/``false``) nor ``TERM=dumb``."""
    env = os.environ if env is None else env
    forced = env.get("HARNESS_PROGRESS", "").strip().lower()
    if forced in ("bar", "plain"):
        return forced == "bar"
    if env.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
        return False
    if env.get("TERM", "") == "dumb":
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or unusual stream
        return False


def make_progress(verbosity: int = 0, stream: IO[str] | None = None, env: Mapping[str, str] | None = None,
                  bar: bool | None = None) -> TextProgress:
    """The observer for ``harness run``: a :class:`BarProgress` when ``bar`` (default :func:`use_bar`)
    and not quiet, else :class:`TextProgress` lines on ``stream`` (default stderr)."""
    stream = stream or sys.stderr
    if verbosity >= 0 and (use_bar(stream, env) if bar is None else bar):
        return BarProgress(stream, verbosity)

    def say(line: str) -> None:
        print(line, file=stream, flush=True)

    return TextProgress(say, verbosity)
