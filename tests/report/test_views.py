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
    assert '<div class="c" data-st="missing" data-q="v/p/s2"><div class="cr"><span class="b missing">missing</span>' in page
    assert "INCOMPLETE" not in index_html(report(True), tmp_path)


def changed_report() -> Report:
    fail = Check("contrast", "tile=r12c4 ch=Y", 19.9, 4.8, 15.1, 1.0, "fail")
    change = [{"stage": "mask", "param": "dilate_px", "baseline": 2, "run": 6}]
    cases = [CaseResult(f"v/p/s{s}", "v", "p", s, "fail", checks=[fail], changed=change) for s in (1, 2)]
    cases.append(CaseResult("w/q/s1", "w", "q", 1, "pass", changed=[{"stage": "denoise", "param": "<b>",
                                                                      "baseline": None, "run": "x"}]))
    return Report("run1", "smoke", "2026-01-01", {}, cases, complete=True)


def test_what_changed_leads_summary_and_index(tmp_path):
    md = summary_markdown(changed_report())
    assert ("**What changed since the baselines:** `mask.dilate_px 2 → 6` in 2 cases (fail); "
            "`denoise.<b> None → x` in 1 case (pass)") in md
    page = index_html(changed_report(), tmp_path)
    assert "<li><b>mask.dilate_px 2 → 6</b> in 2 cases (fail)</li>" in page
    assert page.count("changed since the baseline: mask.dilate_px 2 → 6") == 2
    assert "denoise.&lt;b&gt; None → x" in page and "denoise.<b>" not in page
