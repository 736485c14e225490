"""summary.md and index.html: an incomplete run says so first, and never says PASS."""

from __future__ import annotations

from harness.comparing.engine import Check
from harness.report.html import index_html
from harness.report.markdown import summary_markdown, verdict
from harness.report.schema import CaseResult, Report


def report(complete: bool) -> Report:
    c = CaseResult("v/p/s1", "v", "p", 1, "pass", None, {}, {}, [Check("m", "all", 1.0, 1.0, 0.0, 1.0, "pass")])
    return Report("run1", "smoke", "2026-01-01", {}, [c], complete=complete, planned=["v/p/s1", "v/p/s2"],
                  notes=["interrupted by SIGINT: 1 of 2 cases recorded"])


def test_summary_of_an_incomplete_run(tmp_path):
    md = summary_markdown(report(False))
    lines = md.splitlines()
    assert lines[2].startswith("> **INCOMPLETE RUN — NOT A PASS.** 1 of 2 planned cases have results (1 missing)")
    assert lines[4].startswith("**INCOMPLETE** — 1 passed") and "PASS**" not in md
    assert "| `v/p/s2` | missing |" in md and "interrupted by SIGINT" in md
    assert verdict(report(False)) == "INCOMPLETE"


def test_summary_of_a_complete_run():
    md = summary_markdown(report(True))
    assert "INCOMPLETE" not in md and "**PASS** — 1 passed" in md and verdict(report(True)) == "PASS"


def test_index_of_an_incomplete_run(tmp_path):
    page = index_html(report(False), tmp_path)
    assert "<p class='incomplete'><b>INCOMPLETE RUN &mdash; NOT A PASS.</b>" in page
    assert "<b>INCOMPLETE</b>:" in page and "<b>PASS</b>" not in page
    assert "<tr class='missing'><td><b>v/p/s2</b>" in page
    assert "INCOMPLETE" not in index_html(report(True), tmp_path)
