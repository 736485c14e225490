"""Views derived from report.json: summary.md, index.html (with charts), checks.parquet.

All are re-derivable at any time with ``harness report DIR``; report.json is never edited.
"""

from __future__ import annotations

from pathlib import Path

from harness.fsio import atomic_write_text
from harness.report.html import index_html
from harness.report.markdown import summary_markdown
from harness.report.schema import Report, load_report

__all__ = ["render_report", "summary_markdown", "index_html", "checks_parquet"]


def checks_parquet(report: Report, path: Path) -> bool:
    """All checks as one Parquet table (needs pyarrow; returns False without it)."""
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return False
    import io

    import pandas as pd

    from harness.fsio import atomic_write_bytes

    rows = [{"case": c.id, "vector": c.vector, "pipeline": c.pipeline, "seed": c.seed, "case_status": c.status,
             **ch.to_dict()} for c in report.cases for ch in c.checks]
    buf = io.BytesIO()
    pd.DataFrame.from_records(rows, columns=["case", "vector", "pipeline", "seed", "case_status", "metric", "slice",
                                             "value", "baseline", "delta", "tolerance", "status"]).to_parquet(buf)
    atomic_write_bytes(path, buf.getvalue())
    return True


def render_report(run_dir: str | Path, report: Report | None = None) -> list[Path]:
    """Write summary.md, index.html (+ charts) and checks.parquet from report.json (``report``:
    the run folder's report already loaded with :func:`load_report`, not read and validated again)."""
    run_dir = Path(run_dir)
    if report is None:
        report = load_report(run_dir)
    md = run_dir / "summary.md"
    atomic_write_text(md, summary_markdown(report))
    page = run_dir / "index.html"
    atomic_write_text(page, index_html(report, run_dir))
    out = [md, page]
    if checks_parquet(report, run_dir / "checks.parquet"):
        out.append(run_dir / "checks.parquet")
    return out
