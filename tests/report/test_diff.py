"""harness diff: an incomplete report on either side fails the diff, saying which."""

from __future__ import annotations

import json

import pytest

from harness.comparing.engine import Check
from harness.errors import InputError
from harness.report.checks_table import compact, write_part
from harness.report.diff import diff_reports, format_diff, write_diff
from harness.report.schema import CaseResult, Report


def write(path, *, complete: bool, value: float = 1.0):
    c = CaseResult("v/p/s1", "v", "p", 1, "pass", None, {}, {}, [Check("m", "all", value, 1.0, value - 1, 1.0, "pass")])
    planned = ["v/p/s1"] if complete else ["v/p/s1", "v/p/s2"]  # a complete run recorded all it planned
    write_part(path, c)  # as RunFolder.add and .finish do: the checks, compacted, then report.json
    compact(path, [c.id])
    Report(path.name, "smoke", "t", {}, [c], complete=complete, planned=planned).write(path)
    return path


@pytest.mark.parametrize("a_done,b_done,which", [(True, False, ["REPORT_B"]), (False, True, ["REPORT_A"]),
                                                  (False, False, ["REPORT_A", "REPORT_B"]), (True, True, [])])
def test_an_incomplete_side_fails_the_diff(tmp_path, a_done, b_done, which):
    a = write(tmp_path / "a", complete=a_done)
    b = write(tmp_path / "b", complete=b_done)
    res = diff_reports(a, b)
    assert [line.split()[0] for line in res.incomplete] == which
    assert res.failed is bool(which) and not res.regressions
    text = format_diff(res)
    for label in which:
        assert f"! {label} " in text and "is INCOMPLETE: 1 of 2 planned cases have results" in text


def test_diff_json_names_the_incomplete_report(tmp_path):
    import json

    res = diff_reports(write(tmp_path / "a", complete=True), write(tmp_path / "b", complete=False, value=1.5))
    write_diff(res, tmp_path / "d")
    doc = json.loads((tmp_path / "d" / "diff.json").read_text())
    assert doc["incomplete"][0].startswith(f"REPORT_B {tmp_path / 'b'} (run b) is INCOMPLETE")
    assert doc["rows"][0]["value_b"] == 1.5  # what changed among the recorded cases is still listed


def test_diff_reads_every_check_from_checks_parquet_not_only_the_deciding_ones(tmp_path):
    """Seven passing checks: report.json keeps the 5 worst; the diff still sees the 2 others move."""
    def run(path, shift):
        checks = [Check("m", f"tile=r0c{i}", 1.0 + shift * (i == 0), 1.0, shift * (i == 0), 1.0 + i, "pass")
                  for i in range(7)]
        c = CaseResult("v/p/s1", "v", "p", 1, "pass", None, {}, {}, checks)
        write_part(path, c)
        compact(path, [c.id])
        Report(path.name, "smoke", "t", {}, [c], complete=True, planned=[c.id]).write(path)
        return path

    a, b = run(tmp_path / "a", 0.0), run(tmp_path / "b", 0.5)
    assert len(json.loads((b / "report.json").read_text())["cases"][0]["checks"]) == 5
    res = diff_reports(a, b)
    assert [(r.slice, r.value_a, r.value_b) for r in res.rows] == [("tile=r0c0", 1.0, 1.5)]
    (b / "checks.parquet").unlink()
    with pytest.raises(InputError, match=r"b/checks.parquet: the checks of 1 case\(s\) are missing or unreadable: "
                                         r"v/p/s1 \(0 of 7\)"):
        diff_reports(a, b)
