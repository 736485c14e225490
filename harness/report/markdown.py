"""summary.md: the run's verdict and its failing cases, worst check first (re-derivable from report.json)."""

from __future__ import annotations

import math

from harness.report.schema import Report
from harness.report.text import worst_checks

__all__ = ["summary_markdown", "verdict"]


def _worst(case, n: int):
    return worst_checks(case.checks, n)


def verdict(report: Report) -> str:
    """The run's one-word verdict: ``PASS``, ``FAIL``, ``ERROR`` or ``INCOMPLETE`` (never a pass)."""
    return report.status.upper() if report.complete else "INCOMPLETE"


def summary_markdown(report: Report) -> str:
    s = report.summary
    lines = [f"# harness run `{report.run_id}` — suite `{report.suite}`", ""]
    if not report.complete:
        lines += [f"> **INCOMPLETE RUN — NOT A PASS.** {report.incomplete_reason()}; the cases below are what "
                  "was recorded before the run stopped. Finish it with `harness run --resume <this folder>`.", ""]
    lines += [f"**{verdict(report)}** — {s['passed']} passed, {s['failed']} failed, {s['errors']} errors, "
              f"{s['skipped']} skipped ({len(report.cases)} cases"
              f"{'' if report.complete or report.planned is None else f' of {len(report.planned)} planned'})",
              "", f"created {report.created}; threads {report.environment.get('threads')}; "
                  f"git {report.environment.get('git_sha') or 'n/a'}", "",
              "| case | status | failed checks | worst check |", "|---|---|---|---|"]
    for c in sorted(report.cases, key=lambda c: (c.status == "pass", c.id)):
        w = _worst(c, 1)
        worst = f"{w[0].metric} `{w[0].slice}` ({w[0].severity:.1f}× tol)" if w and math.isfinite(w[0].severity) \
            else (c.error or "")
        lines.append(f"| `{c.id}` | {c.status} | {sum(x.status == 'fail' for x in c.checks)} | "
                     f"{worst.replace('|', '/')} |")
    for cid in report.missing:
        lines.append(f"| `{cid}` | missing | | no result: the run stopped before this case finished |")
    for note in report.notes:
        lines += ["", f"- {note}"]
    return "\n".join(lines) + "\n"
