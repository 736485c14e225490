"""The pytest plugin turns a harness report into test items (tested with pytester)."""

import json

import pytest

pytest_plugins = ["pytester"]


def _report(tmp_path, statuses):
    from harness.comparing.engine import Check
    from harness.report.schema import CaseResult, Report

    cases = []
    for i, st in enumerate(statuses):
        checks = [Check("band_power", "band=high tile=r2c3 ch=Y", 10.0, 20.0, -10.0, 2.0, "fail")] if st == "fail" \
            else [Check("band_power", "band=high ch=Y", 20.0, 20.0, 0.0, 2.0, "pass")]
        cases.append(CaseResult(f"vec{i}/pipe/s1", f"vec{i}", "pipe", 1, st,
                                "StageError: boom" if st == "error" else None, {}, {}, checks))
    rep = Report("run1", "smoke", "2026-01-01T00:00:00+00:00", {}, cases, complete=True)
    rep.write(tmp_path)
    return tmp_path


def test_report_cases_become_items(pytester, tmp_path):
    run_dir = _report(tmp_path / "run", ["pass", "fail", "error", "pass"])
    result = pytester.runpytest("--harness-report", str(run_dir))  # plugin loads by its entry point
    result.assert_outcomes(passed=2, failed=2)
    result.stdout.fnmatch_lines([
        "*harness case vec1/pipe/s1: fail*",
        "*fail  band_power ?band=high tile=r2c3 ch=Y?: 10 vs baseline 20 (delta -10, tolerance 2)*",
        "*harness case vec2/pipe/s1: error*",
        "*StageError: boom*",
    ])


def test_passing_report_passes(pytester, tmp_path):
    run_dir = _report(tmp_path / "run", ["pass", "pass"])
    result = pytester.runpytest("--harness-report", str(run_dir))
    result.assert_outcomes(passed=2)
    assert result.ret == 0


def test_bad_report_is_a_usage_error(pytester, tmp_path):
    (tmp_path / "report.json").write_text(json.dumps({"schema_version": 99}))
    result = pytester.runpytest("--harness-report", str(tmp_path))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*schema_version 99 is not supported*"])


def test_both_options_are_refused(pytester, tmp_path):
    result = pytester.runpytest("--harness-report", str(tmp_path), "--harness-suite", "smoke")
    assert result.ret == pytest.ExitCode.USAGE_ERROR


def test_suite_runs_inside_pytest(pytester, tmp_path):
    suite = tmp_path / "s.toml"
    suite.write_text('name = "s"\nseeds = [1]\nvectors = ["caption_portrait"]\n'
                     '[pipelines.p]\ndetect = { backend = "ground_truth" }\nmask = { backend = "shape" }\n'
                     'inpaint = { backend = "telea" }\n')
    result = pytester.runpytest("--harness-suite", str(suite), "--harness-out", str(tmp_path / "r"))
    # no baseline for suite "s": the case fails with the bake command in its message
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*no baseline for caption_portrait/p/s1*harness bake*"])
