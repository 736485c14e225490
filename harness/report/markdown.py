"""summary.md: the run's verdict, what changed and its failing cases, worst first (re-derivable
from report.json).

Written to be a GitHub Actions step summary (``cat summary.md >> $GITHUB_STEP_SUMMARY``), whose
limit is 1 MiB: every list is capped (and says how many more there are: index.html, report.json and
checks.parquet hold them all), long texts are cut, and the whole is cut at :data:`MAX_BYTES` as a
last resort, so a run of any size gives a summary GitHub accepts.  Links are relative to the run
folder (index.html, each failing case's record and stage images), so they work in the run folder,
its ``--bundle`` copy and an uploaded artifact.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any
from urllib.parse import quote

from harness.report.whatchanged import change_text, diverged_text, run_changes, stage_label
from harness.report.schema import CaseResult, Report
from harness.report.text import format_check, worst_checks
from harness.status import GATING

__all__ = ["summary_markdown", "verdict", "cross_entries", "cross_cells", "cross_markdown", "MAX_BYTES"]

#: summary.md's size bound in bytes: under GitHub's 1 MiB step-summary limit, with room to spare.
MAX_BYTES = 1_000_000
_CHANGES = 20  # configuration differences listed in the run's "what changed"
_DETAILED = 25  # failing cases with their own section (what changed, diverged, worst checks, images)
_WORST = 3  # worst checks per detailed case
_ROWS = 300  # rows of the case table
_CROSS = 100  # rows of the cross-model table
_NOTES = 50  # run notes listed
_TEXT = 1_000  # characters of one free text (an error, a note, a check line)


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
    for case, hue, hf in rows[:_CROSS]:
        h, e = cross_cells(hue, hf)
        note = "" if case.status == "fail" else (case.error or "")  # a failure's numbers are in the cells
        out.append(f"| `{case.id}` | {case.status} | {h} | {e} | {_cell(note)} |")
    if len(rows) > _CROSS:
        out.append(f"| … {len(rows) - _CROSS} more entries | | | | see index.html |")
    return out


def verdict(report: Report) -> str:
    """The run's one-word verdict: ``PASS``, ``FAIL``, ``ERROR`` or ``INCOMPLETE`` (never a pass)."""
    return report.status.upper() if report.complete else "INCOMPLETE"


def _clip(text: Any, n: int = _TEXT) -> str:
    """``text`` on one line, cut to ``n`` characters (with ``…``)."""
    t = " ".join(str(text).split())
    return t if len(t) <= n else t[: n - 1] + "…"


def _cell(text: Any) -> str:
    """Text for a table cell: one line, no column bar."""
    return _clip(text).replace("|", "/")


def _code(text: Any) -> str:
    """Inline code: backticks inside would end it early."""
    return "`" + _clip(text).replace("`", "'") + "`"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _worst_first(cases: list[CaseResult]) -> list[CaseResult]:
    """Failing cases, errors first, then by their worst check's ``|delta| / tolerance``."""
    def key(c: CaseResult) -> tuple[int, float, str]:
        w = worst_checks(c.checks, 1)
        sev = w[0].severity if w else 0.0
        return (c.status != "error", -(sev if math.isfinite(sev) else 1e300), c.id)

    return sorted((c for c in cases if c.status in GATING), key=key)


def _image_links(case: CaseResult, run_dir: Path | None, store_root: Any) -> str:
    """``[stage](relative href)`` of each stage image that resolves (the diverging one in bold)."""
    if run_dir is None:
        return ""
    from harness.run.store import resolve_artifact

    root = Path(run_dir).resolve()
    d = case.diverged or {}
    stage = d.get("stage")
    pairs = list(case.artifacts.items())
    if stage and isinstance(d.get("reference"), str):  # the baseline's image of the diverging stage, beside it
        at = next((i + 1 for i, (name, _) in enumerate(pairs) if name == stage), len(pairs))
        pairs.insert(at, (f"reference {stage}", d["reference"]))
    links = []
    for name, value in pairs:
        p = resolve_artifact(value, root, store_root)
        if p is None:
            continue
        label = stage_label(name) if not name.startswith("reference ") else f"reference {stage_label(str(stage))}"
        link = f"[{label}]({quote(Path(os.path.relpath(p, root)).as_posix(), safe='/')})"
        links.append(f"**{link}**" if name in (stage, f"reference {stage}") else link)
    return " · ".join(links)


def _case_section(case: CaseResult, run_dir: Path | None, store_root: Any) -> list[str]:
    """One failing case: what changed, where it diverged, its worst checks with boxes, its images."""
    from harness.naming import case_slug

    lines = ["", f"### {_code(case.id)} — {case.status}, {case.failed_count} of "
                 f"{_plural(case.check_count, 'check')} failed"]
    if case.error:
        lines.append(f"- **error:** {_code(case.error)}")
    if case.changed:
        lines.append("- **changed:** " + "; ".join(_code(change_text(ch)) for ch in case.changed[:_CHANGES])
                     + (f"; … {len(case.changed) - _CHANGES} more" if len(case.changed) > _CHANGES else ""))
    if case.diverged:
        lines.append(f"- **diverged:** {_clip(diverged_text(case.diverged))}")
    worst = worst_checks(case.checks, _WORST)
    if worst:
        lines.append("- **worst checks:**")
        for c in worst:
            sev = f" — {c.severity:.1f}× tolerance" if math.isfinite(c.severity) and c.severity >= 0 else ""
            lines.append(f"  - {_code(format_check(c))}{sev}")
    more = case.failed_count - len(worst)
    record = f"cases/{case_slug(case.id)}.json"  # every check of the case (version-2 runs)
    where = f"[{record}]({quote(record)})" if run_dir is not None and (Path(run_dir) / record).is_file() \
        else "[index.html](index.html)"
    if more > 0:
        lines.append(f"  - … {_plural(more, 'more failing check')}: {where}")
    images = _image_links(case, run_dir, store_root)
    if images:
        lines.append(f"- **images:** {images}")
    return lines


def _failing_sections(report: Report, run_dir: Path | None) -> list[str]:
    """The worst :data:`_DETAILED` failing cases, each its own section; a line for the rest."""
    failing = _worst_first(report.cases)
    if not failing:
        return []
    from harness.run.store import store_root_of

    store_root = store_root_of(report.environment)
    lines = ["", f"## Failing cases ({len(failing)}, worst first)"]
    for case in failing[:_DETAILED]:
        lines += _case_section(case, run_dir, store_root)
    if len(failing) > _DETAILED:
        lines += ["", f"… and {_plural(len(failing) - _DETAILED, 'more failing case')}: "
                      "[index.html](index.html) and report.json list them all."]
    return lines


def _case_table(report: Report) -> list[str]:
    """Every case (failing first, worst first) and every missing one, capped at :data:`_ROWS` rows."""
    failing = _worst_first(report.cases)
    ordered = failing + sorted((c for c in report.cases if c.status not in GATING), key=lambda c: (c.status, c.id))
    rows = []
    for c in ordered[:_ROWS]:
        w = worst_checks(c.checks, 1)
        worst = f"{w[0].metric} `{w[0].slice}` ({w[0].severity:.1f}× tol)" if w and math.isfinite(w[0].severity) \
            else (c.error or "")
        rows.append(f"| `{c.id}` | {c.status} | {c.failed_count} | {_cell(worst)} |")
    missing = report.missing
    rows += [f"| `{cid}` | missing | | no result: the run stopped before this case finished |"
             for cid in missing[:max(0, _ROWS - len(rows))]]
    left = len(ordered) + len(missing) - len(rows)
    if left > 0:
        rows.append(f"| … {_plural(left, 'more case')} | | | see [index.html](index.html) or report.json |")
    return ["", "## Cases", "", "| case | status | failed checks | worst check |", "|---|---|---|---|", *rows]


def _changes_line(report: Report) -> list[str]:
    changes = run_changes(report)
    if not changes:
        return []
    shown = "; ".join(f"{_code(t)} in {_plural(n, 'case')} ({', '.join(st)})" for t, n, st in changes[:_CHANGES])
    more = f"; … {len(changes) - _CHANGES} more" if len(changes) > _CHANGES else ""
    return ["**What changed since the baselines:** " + shown + more, ""]


def _fit(lines: list[str], limit: int) -> str:
    """The lines joined, cut (at a line) to ``limit`` UTF-8 bytes with a last line saying so."""
    text = "\n".join(lines) + "\n"
    if len(text.encode()) <= limit:
        return text
    tail = "\n\n… summary.md cut at {} of {} lines to stay under {} bytes: see index.html and report.json\n"
    kept, size = [], len(tail.encode()) + 40
    for line in lines:
        size += len(line.encode()) + 1
        if size > limit:
            break
        kept.append(line)
    return "\n".join(kept) + tail.format(len(kept), len(lines), limit)


def summary_markdown(report: Report, run_dir: str | Path | None = None, *, max_bytes: int = MAX_BYTES) -> str:
    """summary.md of ``report``: at most ``max_bytes`` UTF-8 bytes (see the module docstring).
    ``run_dir``: the run folder, for links to the failing cases' images (none without it)."""
    s = report.summary
    lines = [f"# harness run `{report.run_id}` — suite `{report.suite}`", ""]
    if not report.complete:
        lines += [f"> **INCOMPLETE RUN — NOT A PASS.** {report.incomplete_reason()}; the cases below are what "
                  "was recorded before the run stopped. Finish it with `harness run --resume <this folder>`.", ""]
    lines += [f"**{verdict(report)}** — {s['passed']} passed, {s['failed']} failed, {s['errors']} errors, "
              f"{s['skipped']} skipped ({len(report.cases)} cases"
              f"{'' if report.complete or report.planned is None else f' of {len(report.planned)} planned'})",
              "", f"created {report.created}; threads {report.environment.get('threads')}; "
                  f"git {report.environment.get('git_sha') or 'n/a'} · [index.html](index.html) · "
                  "[report.json](report.json)", ""]
    lines += _changes_line(report)
    lines += _failing_sections(report, Path(run_dir) if run_dir is not None else None)
    lines += _case_table(report)
    lines += cross_markdown(report)
    for note in report.notes[:_NOTES]:
        lines += ["", f"- {_clip(note)}"]
    if len(report.notes) > _NOTES:
        lines += ["", f"- … {_plural(len(report.notes) - _NOTES, 'more note')} in report.json"]
    return _fit(lines, max_bytes)
