"""--harness-report: the cases of a finished run as test items (tested with pytester)."""

import json

import pytest

from harness.comparing.engine import Check
from harness.report.schema import CaseResult, Report

pytest_plugins = ["pytester"]


def _report(tmp_path, statuses, *, complete=True):
    cases = []
    for i, st in enumerate(statuses):
        checks = [Check("band_power", "band=high tile=r2c3 ch=Y", 10.0, 20.0, -10.0, 2.0, "fail")] if st == "fail" \
            else [Check("band_power", "band=high ch=Y", 20.0, 20.0, 0.0, 2.0, "pass")]
        cases.append(CaseResult(f"vec{i}/pipe/s1", f"vec{i}", "pipe", 1, st,
                                "StageError: boom" if st == "error" else None, {}, {}, checks))
    rep = Report("run1", "smoke", "2026-01-01T00:00:00+00:00", {}, cases, complete=complete)
    rep.write(tmp_path)
    return tmp_path


def test_report_cases_become_items(pytester, tmp_path):
    run_dir = _report(tmp_path / "run", ["pass", "fail", "error", "pass"])
    result = pytester.runpytest("--harness-report", str(run_dir))  # plugin loads by its entry point
    result.assert_outcomes(passed=2, failed=2)
    result.stdout.fnmatch_lines([
        "*harness case vec1/pipe/s1: fail*",
        "*fail band_power ?band=high tile=r2c3 ch=Y?: 10 vs baseline 20 (delta -10, tolerance 2)*",
        "*harness case vec2/pipe/s1: error*",
        "*StageError: boom*",
    ])
    assert "Traceback" not in result.stdout.str()


def test_passing_report_passes(pytester, tmp_path):
    run_dir = _report(tmp_path / "run", ["pass", "pass"])
    result = pytester.runpytest("--harness-report", str(run_dir))
    result.assert_outcomes(passed=2)
    assert result.ret == 0


def test_max_checks_limits_the_listed_checks(pytester, tmp_path):
    run_dir = _report(tmp_path / "run", ["fail"])
    report = json.loads((run_dir / "report.json").read_text())
    report["cases"][0]["checks"] *= 3
    report["cases"][0].update(n_checks=3, n_failed=3)
    (run_dir / "report.json").write_text(json.dumps(report))
    result = pytester.runpytest("--harness-report", str(run_dir / "report.json"), "--harness-max-checks", "1")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["  fail band_power *", "  ... 2 more failing checks in *run/report.json"])


def test_an_incomplete_report_fails_whatever_k_selects(pytester, tmp_path):
    run_dir = _report(tmp_path / "run", ["pass", "pass"], complete=False)
    result = pytester.runpytest("--harness-report", str(run_dir))
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*report is incomplete: the run was interrupted before every case finished "
                                 "(2 cases recorded in *report.json)*"])
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    # the `complete` item goes with any selection of the report's cases
    result = pytester.runpytest("--harness-report", str(run_dir), "-k", "vec1")
    result.assert_outcomes(passed=1, failed=1, deselected=1)


def test_report_node_ids_name_the_run_when_it_lies_outside_the_rootdir(pytester, tmp_path_factory):
    run_dir = _report(tmp_path_factory.mktemp("elsewhere"), ["pass"], complete=False)
    # an explicit --rootdir keeps the report outside it (pytest would widen it to the option's path)
    result = pytester.runpytest("--rootdir", str(pytester.path), "--collect-only", "-q", "--harness-report",
                                str(run_dir))
    result.stdout.fnmatch_lines(["harness::run1::complete", "harness::run1::vec0/pipe/s1", "2 tests collected*"])


def test_bad_report_is_a_usage_error(pytester, tmp_path):
    (tmp_path / "report.json").write_text(json.dumps({"schema_version": 99}))
    result = pytester.runpytest("--harness-report", str(tmp_path))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*schema_version: 99 is not supported*"])


def test_both_options_are_refused(pytester, tmp_path):
    result = pytester.runpytest("--harness-report", str(tmp_path), "--harness-suite", "smoke")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*use either --harness-report or --harness-suite, not both*"])


def test_an_unreadable_case_record_is_a_noted_problem_and_the_run_incomplete(tmp_path):
    """The controller's report hook never raises: a record it cannot read is said in the notes,
    and the final report.json is incomplete (its planned case has no result)."""
    import json as _json

    from harness.plugin.runs import RunBook

    (tmp_path / "cases").mkdir()
    (tmp_path / "cases" / "v__p__s1.json").write_text("{not json")
    book = RunBook.__new__(RunBook)
    book.run_dir, book.created, book.results, book.drift, book.notes, book.problems = tmp_path, "z", {}, set(), [], []
    book.run_id, book.suite, book.file, book.environment = "r", "s", "f.toml", {}
    book.planned, book.folder = ["v/p/s1"], None
    book.add("f.toml::v/p/s1", {"cases": ["v/p/s1"], "created": "a"})
    assert book.results == {} and book.problems[0].startswith("f.toml::v/p/s1: case file unreadable")
    book.finish(["f.toml::v/p/s1"])
    report = _json.loads((tmp_path / "report.json").read_text())
    assert (report["complete"], report["planned"], report["cases"]) == (False, ["v/p/s1"], [])
    assert report["notes"][0].startswith("f.toml::v/p/s1: case file unreadable")


# -- the gate fails closed: a report that is malformed, contradicts itself or misses cases -------------------
def _forge(run_dir, edit):
    doc = json.loads((run_dir / "report.json").read_text())
    edit(doc)
    (run_dir / "report.json").write_text(json.dumps(doc))
    return run_dir


def test_an_unknown_case_status_is_a_session_error_never_a_pass(pytester, tmp_path):
    run_dir = _forge(_report(tmp_path / "run", ["pass", "pass"]), lambda d: d["cases"][1].update(status="FAILED"))
    result = pytester.runpytest("--harness-report", str(run_dir))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--harness-report: *report.json: malformed report: cases[[]1[]].status: "
                                 "'FAILED' is not one of pass, fail, error, skip"])
    assert "passed" not in result.stdout.str()  # nothing ran, nothing passed


def test_a_pass_case_with_a_failing_check_fails_its_item(pytester, tmp_path):
    run_dir = _forge(_report(tmp_path / "run", ["pass", "fail"]), lambda d: d["cases"][1].update(status="pass"))
    result = pytester.runpytest("--harness-report", str(run_dir))
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*harness case vec1/pipe/s1: fail",
                                 "*recorded as 'pass' but 1 of its checks says 'fail': read as 'fail'",
                                 "*fail band_power ?band=high tile=r2c3 ch=Y?: 10 vs baseline 20*"])


def test_planned_cases_missing_fail_the_report_without_a_complete_key(pytester, tmp_path):
    def edit(doc):
        doc.pop("complete")
        doc["planned"] = ["vec0/pipe/s1", "vec1/pipe/s1", "vec2/pipe/s1"]

    run_dir = _forge(_report(tmp_path / "run", ["pass", "pass"]), edit)
    result = pytester.runpytest("--harness-report", str(run_dir))
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*report is incomplete*"])
    assert result.ret == pytest.ExitCode.TESTS_FAILED
