"""Views derived from report.json: summary.md and index.html (with charts).

All are re-derivable at any time with ``harness report DIR``; report.json is never edited.
checks.parquet is no view but the run's data (:mod:`harness.report.checks_table`, written as the
run goes); for a version-1 run folder, whose checks are all in report.json, ``harness report``
derives it (the same columns) so that tools reading checks.parquet read old runs too.
"""

from __future__ import annotations

from pathlib import Path

from harness.fsio import atomic_write_text
from harness.report.html import index_html
from harness.report.markdown import summary_markdown
from harness.report.schema import Report, load_report

__all__ = ["render_report", "summary_markdown", "index_html", "v1_checks_parquet"]


def v1_checks_parquet(report: Report, run_dir: Path) -> Path | None:
    """checks.parquet of a version-1 run (every check is in its report.json); None for version 2."""
    if report.schema_version != 1:
        return None
    from harness.fsio import atomic_write_bytes
    from harness.report.checks_table import parquet_bytes, report_table

    p = Path(run_dir) / "checks.parquet"
    atomic_write_bytes(p, parquet_bytes(report_table(report)))
    return p


def render_report(run_dir: str | Path, report: Report | None = None) -> list[Path]:
    """Write summary.md and index.html (+ charts) (``report``: the run folder's report already
    loaded with :func:`load_report`, not read and validated again)."""
    run_dir = Path(run_dir)
    if report is None:
        report = load_report(run_dir)
    md = run_dir / "summary.md"
    atomic_write_text(md, summary_markdown(report, run_dir))
    page = run_dir / "index.html"
    atomic_write_text(page, index_html(report, run_dir))
    out = [md, page]
    table = v1_checks_parquet(report, run_dir)
    return out + ([table] if table else [])
