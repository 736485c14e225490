"""Run folders written before report.json version 2 (every check in report.json, the measurement
inline in each case record, no checks.parquet) still load, render, diff and gate."""

from __future__ import annotations

import json

import pytest

from harness.cli import main
from harness.comparing.checks import Check
from harness.report.checks_table import compact, read_checks, write_part
from harness.report.diff import diff_reports
from harness.report.schema import CaseResult, Report, load_report, read_case_record

pytest_plugins = ["pytester"]


def full_checks(shift: float = 0.0, failing: bool = False) -> list[Check]:
    return [Check("band_power", f"band=high tile=r0c{i} ch=Y", 1.0 + shift * (i == 6), 1.0, shift * (i == 6),
                  1.0 + i, "fail" if failing and i == 6 else "pass") for i in range(8)]


def v1_run(path, *, failing: bool = False):
    """A version-1 run folder as harness wrote it until issue 14 (eight checks, all in report.json)."""
    c = CaseResult("v/p/s1", "v", "p", 1, "fail" if failing else "pass", None, {}, {}, full_checks(2.0, failing))
    doc = Report(path.name, "smoke", "t", {}, [c], complete=True, planned=[c.id]).to_dict()
    doc["schema_version"] = 1
    del doc["checks_file"]
    for k in ("changed", "n_checks", "n_failed"):
        del doc["cases"][0][k]
    doc["cases"][0]["checks"] = [x.to_dict() for x in c.checks]  # version 1: every check
    (path / "cases").mkdir(parents=True)
    (path / "report.json").write_text(json.dumps(doc))
    (path / "cases" / "v__p__s1.json").write_text(json.dumps({"case": doc["cases"][0], "measurement": {"m": 1}}))
    return path


def v2_run(path):
    c = CaseResult("v/p/s1", "v", "p", 1, "pass", None, {}, {}, full_checks())
    write_part(path, c)
    compact(path, [c.id])
    Report(path.name, "smoke", "t", {}, [c], complete=True, planned=[c.id]).write(path)
    return path


def test_a_version_1_report_loads_with_every_check(tmp_path):
    run = v1_run(tmp_path / "old")
    rep = load_report(run)
    assert rep.schema_version == 1 and rep.complete and len(rep.cases[0].checks) == 8
    assert (rep.cases[0].check_count, rep.cases[0].failed_count, rep.cases[0].changed) == (8, 0, [])
    assert read_checks(run, ["tile"], [("tile", "=", "r0c6")]).to_pylist() == [{"tile": "r0c6"}]
    assert read_case_record(run / "cases" / "v__p__s1.json")[1] == {"m": 1}


def test_diff_between_a_version_1_and_a_version_2_run(tmp_path):
    res = diff_reports(v2_run(tmp_path / "new"), v1_run(tmp_path / "old"))
    assert [(r.slice, r.seeds[0].value_a, r.seeds[0].value_b) for r in res.rows] == [("band=high tile=r0c6 ch=Y", 1.0, 3.0)]
    assert not res.failed


def test_harness_report_renders_a_version_1_run_and_derives_its_checks_parquet(tmp_path, capsys):
    run = v1_run(tmp_path / "old", failing=True)
    assert main(["report", str(run)]) == 0
    assert "| `v/p/s1` | fail | 1 |" in (run / "summary.md").read_text()
    assert read_checks(run, ["case"]).num_rows == 8
    import pyarrow.parquet as pq

    assert pq.read_table(run / "checks.parquet", columns=["tile"]).column("tile").to_pylist()[6] == "r0c6"
    assert json.loads((run / "report.json").read_text())["schema_version"] == 1  # never rewritten


def test_pytest_gates_on_a_version_1_report(pytester, tmp_path):
    run = v1_run(tmp_path / "old", failing=True)
    result = pytester.runpytest("--harness-report", str(run))
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["  fail band_power [[]band=high tile=r0c6 ch=Y[]]: 3 vs baseline 1 *"])
