"""harness.run.observer: the one line per case a ``progress`` callback gets, and ``maxfail``'s count."""

from pathlib import Path

import pytest

from harness.comparing.engine import Check
from harness.errors import ConfigError
from harness.report.schema import CaseResult, Report
from harness.run.observer import FailLimit, LineObserver, RunEnd, case_line, summary_lines

FAIL = Check("band_power", "band=high ch=Y", 113.0, 171.0, -58.0, 16.0, "fail")


def case(status, checks=(), error=None, cid="v/p/s1") -> CaseResult:
    return CaseResult(cid, "v", "p", 1, status, error, {"inpaint": 0.3, "measure": 0.1}, checks=list(checks))


def test_case_line_as_progress_callbacks_have_always_read_it():
    assert case_line(case("fail", [FAIL, FAIL]), 7, 30, True) == "[7/30] fail  v/p/s1 (0.4s)  2 failed checks"
    assert case_line(case("pass"), 1, 2, True) == "[1/2] pass  v/p/s1 (0.4s)"
    assert case_line(case("skip"), 1, 2, False) == "[1/2] measured v/p/s1 (0.4s)"
    assert case_line(case("error", error="worker killed"), 2, 2, False) == "[2/2] error v/p/s1 (0.4s)  worker killed"


def test_line_observer_says_cases_notes_and_the_summary():
    lines = []
    obs = LineObserver(lines.append)
    obs.begin(1, 0)
    obs.started("v/p/s1")
    obs.recorded(case("pass"), 1, 1, True)
    obs.note("retry v/p/s1: worker killed")
    report = Report("rid", "s", "t", {}, [case("pass")], complete=True, notes=["a note"], planned=["v/p/s1"])
    obs.finished(RunEnd(report, Path("/r/rid"), 1, 2.0, True))
    assert lines == ["[1/1] pass  v/p/s1 (0.4s)", "retry v/p/s1: worker killed",
                     "PASS: 1 cases in 2.0s: 1 passed, 0 failed, 0 errors -> /r/rid/report.json", "note: a note"]


def test_summary_of_a_measuring_run_and_of_group_entries():
    report = Report("rid", "s", "t", {}, [case("skip"), case("pass", cid="v/p/seeds")], complete=True)
    assert summary_lines(RunEnd(report, Path("/r"), 1, 1.0, False)) == [
        "MEASURED: 1 cases in 1.0s: 0 errors -> /r/report.json"]
    assert summary_lines(RunEnd(report, Path("/r"), 1, 1.0, True))[0].startswith(
        "PASS: 1 cases in 1.0s + 1 group/cross entries: ")


def test_fail_limit_counts_failed_and_errored_cases_only_while_more_are_to_come():
    limit = FailLimit(2)
    assert limit.reached("pass", True, "1 of 5 cases recorded", Path("/r")) == ""
    assert limit.reached("fail", True, "2 of 5 cases recorded", Path("/r")) == ""
    assert limit.reached("skip", True, "3 of 5 cases recorded", Path("/r")) == ""
    assert limit.reached("error", True, "4 of 5 cases recorded", Path("/r")) == (
        "stopped after 2 failing cases (--maxfail 2): 4 of 5 cases recorded; "
        "finish it with `harness run --resume /r`")
    last = FailLimit(1)
    assert last.reached("fail", False, "5 of 5 cases recorded", Path("/r")) == ""  # the last case: complete
    assert FailLimit(None).reached("fail", True, "", Path("/r")) == ""


def test_fail_limit_refuses_zero():
    with pytest.raises(ConfigError, match=r"--maxfail must be >= 1, got 0"):
        FailLimit(0)
