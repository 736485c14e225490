"""summary.md: the run's verdict and its failing cases, worst check first (re-derivable from report.json)."""

from __future__ import annotations

import math

from harness.report.whatchanged import run_changes
from harness.report.schema import Report
from harness.report.text import worst_checks

__all__ = ["summary_markdown", "verdict", "cross_entries", "cross_cells", "cross_markdown"]


def _worst(case, n: int):
    return worst_checks(case.checks, n)


def cross_entries(report: Report) -> list[tuple]:
    """The cross-model entries (``vector/a+b/sSEED``, :mod:`harness.checks.cross`) as
    ``(case, hue check or None, hf check or None)``."""
    from harness.naming import is_cross

    def first(case, metric):
        return next((c for c in case.checks if c.metric == metric), None)

    return [(c, first(c, "cross_hue"), first(c, "cross_hf_energy")) for c in report.cases if is_cross(c.pipeline)]


def cross_cells(hue, hf) -> tuple[str, str]:
    """``+29.99° (max 10)`` and ``-10.4% (max 25%)``; ``undefined`` where a check was skipped."""
    def cell(c, fmt):
        if c is None:
            return ""
        if c.delta is None:
            return "undefined" if c.status == "skip" else c.status
        return fmt(c)

    return (cell(hue, lambda c: f"{c.delta:+.2f}° (max {c.tolerance:g})"),
            cell(hf, lambda c: f"{100 * c.delta:+.1f}% (max {100 * c.tolerance:g}%)"))


def cross_markdown(report: Report) -> list[str]:
    """The "Cross-model" section of summary.md (nothing when the run has no cross entry)."""
    rows = cross_entries(report)
    if not rows:
        return []
    out = ["", "## Cross-model", "", "Same vector and seed through pipelines a and b: hue offset and "
           "high-frequency (luma high+top band) energy change of b relative to a.", "",
           "| entry | status | hue offset | HF energy change | note |", "|---|---|---|---|---|"]
    for case, hue, hf in rows:
        h, e = cross_cells(hue, hf)
        note = "" if case.status == "fail" else (case.error or "")  # a failure's numbers are in the cells
        out.append(f"| `{case.id}` | {case.status} | {h} | {e} | {note.replace('|', '/')} |")
    return out


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
                  f"git {report.environment.get('git_sha') or 'n/a'}", ""]
    changes = run_changes(report)
    if changes:
        lines += ["**What changed since the baselines:** " + "; ".join(
            f"`{t}` in {n} case{'' if n == 1 else 's'} ({', '.join(st)})" for t, n, st in changes), ""]
    lines += ["| case | status | failed checks | worst check |", "|---|---|---|---|"]
    for c in sorted(report.cases, key=lambda c: (c.status == "pass", c.id)):
        w = _worst(c, 1)
        worst = f"{w[0].metric} `{w[0].slice}` ({w[0].severity:.1f}× tol)" if w and math.isfinite(w[0].severity) \
            else (c.error or "")
        lines.append(f"| `{c.id}` | {c.status} | {c.failed_count} | "
                     f"{worst.replace('|', '/')} |")
    for cid in report.missing:
        lines.append(f"| `{cid}` | missing | | no result: the run stopped before this case finished |")
    lines += cross_markdown(report)
    for note in report.notes:
        lines += ["", f"- {note}"]
    return "\n".join(lines) + "\n"
