"""`harness report` and `harness diff` on a malformed report: exit 2 and one line naming the field
(not exit 3, "a bug in harness"); on a report that only reads as failing: its verdict says so."""

from __future__ import annotations

import json

import pytest

from harness.cli import main
from harness.comparing.engine import Check
from harness.report.checks_table import compact, write_part
from harness.report.schema import CaseResult, Report


def run_dir(path, *, status="pass", check_status="pass", drop_complete=False, planned=None):
    c = CaseResult("v/p/s1", "v", "p", 1, "pass", None, {}, {}, [Check("m", "all", 1.0, 1.0, 0.0, 1.0, "pass")])
    doc = Report(path.name, "smoke", "t", {}, [c], complete=True, planned=planned).to_dict()
    doc["cases"][0]["status"] = status
    doc["cases"][0]["checks"][0]["status"] = check_status
    if drop_complete:
        doc.pop("complete")
    path.mkdir(parents=True)
    write_part(path, c)  # as a run writes its checks: a part per case, compacted at the end
    compact(path, [c.id])
    (path / "report.json").write_text(json.dumps(doc))
    return path


@pytest.mark.parametrize("command", ["report", "diff"])
def test_a_malformed_report_is_exit_2_with_one_line_naming_the_field(tmp_path, capsys, command):
    bad = run_dir(tmp_path / "bad", status="FAILED")
    argv = ["report", str(bad)] if command == "report" else ["diff", str(run_dir(tmp_path / "good")), str(bad)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err == (f"harness: error: {bad / 'report.json'}: malformed report: cases[0].status: 'FAILED' is not one "
                   "of pass, fail, error, skip\n")
    assert not (bad / "index.html").exists()


def test_diff_sees_a_pass_case_with_a_failing_check_as_a_regression(tmp_path, capsys):
    good, forged = run_dir(tmp_path / "a"), run_dir(tmp_path / "b", check_status="fail")
    assert main(["diff", str(good), str(forged)]) == 1
    assert "! v/p  pass → fail in 1/1 seeds" in capsys.readouterr().out


def test_report_renders_planned_but_missing_cases_as_incomplete(tmp_path, capsys):
    d = run_dir(tmp_path / "r", drop_complete=True, planned=["v/p/s1", "v/p/s2"])
    assert main(["report", str(d)]) == 0  # the views are written, and say it
    assert "is an INCOMPLETE run (1 of 2 planned cases have results (1 missing))" in capsys.readouterr().err
    assert "**INCOMPLETE** — 1 passed" in (d / "summary.md").read_text()
    assert main(["diff", str(d), str(d)]) == 1
