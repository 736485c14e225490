"""Suite cases as pytest items: collected without running anything, executed per item, one
run folder per suite (with pytester, in tiny harness projects)."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

pytest_plugins = ["pytester"]

PROJECT = ('vectors = "vectors"\nsuites = "vectors/suites"\nbaselines = "baselines"\nreports = "reports"\n'
           'cache = ".harness-cache"\nsuite = "tiny"\n')
SUITE = '''name = "{name}"
seeds = [1, 2]
vectors = ["microprint_dilation"]
mode = "{mode}"

[pipelines.classic]
generate = {{ backend = "source" }}
detect = {{ backend = "ground_truth" }}
mask = {{ backend = "shape", dilate_px = {dilate} }}
inpaint = {{ backend = "telea" }}
denoise = {{ backend = "tv", strength = 0.1 }}
upscale = {{ backend = "lanczos", scale = 2 }}
'''
S1, S2 = "microprint_dilation/classic/s1", "microprint_dilation/classic/s2"


def write_project(root: Path, *, dilate: int = 2, mode: str = "paired") -> Path:
    """A harness project (harness.toml) whose default suite ``tiny`` is 1 vector x 1 pipeline x 2 seeds."""
    (root / "vectors" / "suites").mkdir(parents=True, exist_ok=True)
    (root / "harness.toml").write_text(PROJECT)
    (root / "vectors" / "suites" / "tiny.toml").write_text(SUITE.format(name="tiny", dilate=dilate, mode=mode))
    return root


@pytest.fixture(scope="module")
def baked(tmp_path_factory) -> Path:
    """``tiny``'s baselines, baked once.  Baking in this process also imports the pipeline
    before pytester snapshots ``sys.modules``, so in-process runs can import it again."""
    from harness.cli import main

    root = write_project(tmp_path_factory.mktemp("baked"))
    assert main(["bake", "--project", str(root)]) == 0
    return root / "baselines"


@pytest.fixture
def project(pytester, baked) -> Path:
    root = write_project(pytester.path)
    shutil.copytree(baked, root / "baselines")
    return root


def files_under(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if "__pycache__" not in p.parts)


def only_run(project: Path) -> Path:
    [run] = (project / "reports").iterdir()
    return run


def test_collect_only_lists_the_default_suite_and_writes_nothing(pytester, project):
    other = project / "vectors" / "suites" / "other.toml"
    other.write_text(SUITE.format(name="other", dilate=2, mode="paired"))
    before = files_under(project)
    result = pytester.runpytest("--collect-only", "-q")
    result.stdout.fnmatch_lines([f"vectors/suites/tiny.toml::{S1}", f"vectors/suites/tiny.toml::{S2}",
                                 "2 tests collected*"])
    assert "other.toml" not in result.stdout.str()  # neither the default suite nor in harness_suites
    # a suite named on the command line is collected too, and -k selects by case id
    result = pytester.runpytest("--collect-only", "-q", "-k", "classic and s2", str(other))
    result.stdout.fnmatch_lines([f"vectors/suites/other.toml::{S2}", "1/2 tests collected (1 deselected)*"])
    result = pytester.runpytest("--collect-only", "-q", "-k", "microprint_dilation")
    result.stdout.fnmatch_lines(["2 tests collected*"])
    # the ini option names the suites a plain `pytest` collects
    pytester.makeini("[pytest]\nharness_suites =\n    tiny\n    other\n")
    result = pytester.runpytest("--collect-only", "-q")
    result.stdout.fnmatch_lines([f"vectors/suites/other.toml::{S1}", "4 tests collected*"])
    assert files_under(project) == sorted(before + ["tox.ini"])
    assert not (project / "reports").exists() and not (project / ".harness-cache").exists()


def test_k_selects_one_case_and_only_that_case_runs(pytester, project):
    result = pytester.runpytest("-k", "classic and s1")
    result.assert_outcomes(passed=1, deselected=1)
    run = only_run(project)
    assert sorted(p.name for p in (run / "cases").iterdir()) == ["microprint_dilation__classic__s1.json",
                                                                 "microprint_dilation__classic__s1.measure.npz"]
    report = json.loads((run / "report.json").read_text())
    assert report["complete"] is True and report["planned"] == [S1]  # what -k selected, nothing else
    assert [c["id"] for c in report["cases"]] == [S1]
    assert report["summary"] == {"passed": 1, "failed": 0, "errors": 0, "skipped": 0}
    assert pq.read_metadata(run / "checks.parquet").num_rows == report["cases"][0]["n_checks"] > 100
    result.stdout.fnmatch_lines([f"run reports/{run.name}: 1 case, 1 passed, 0 failed, 0 errors"])


def test_two_xdist_workers_write_one_coherent_report(pytester, project):
    result = pytester.runpytest_subprocess("-p", "xdist", "-n", "2", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    run = only_run(project)
    report = json.loads((run / "report.json").read_text())
    assert report["complete"] is True
    assert [c["id"] for c in report["cases"]] == [S1, S2]  # collection order, whichever worker ran them
    assert report["planned"] == [S1, S2]  # written by the worker that claimed the folder, kept by the controller
    assert report["summary"]["passed"] == 2
    assert (report["environment"]["executor"], report["environment"]["workers"]) == ("pytest-xdist", 2)
    assert sorted(p.name for p in (run / "cases").glob("*.json")) == ["microprint_dilation__classic__s1.json",
                                                                      "microprint_dilation__classic__s2.json"]
    table = pq.read_table(run / "checks.parquet", columns=["case"])  # both workers' parts, compacted
    assert sorted(set(table.column("case").to_pylist())) == [S1, S2]
    assert table.num_rows == sum(c["n_checks"] for c in report["cases"])
    assert (run / "summary.md").is_file()


def test_a_failing_case_lists_its_worst_checks_and_a_stopped_run_is_incomplete(pytester, project):
    write_project(project, dilate=8)  # the wider mask erases the microprinting the baselines keep
    result = pytester.runpytest("-x", "--harness-max-checks", "2")
    result.assert_outcomes(failed=1)
    run = only_run(project)
    result.stdout.fnmatch_lines([
        f"harness case {S1}: fail",
        "  fail * ?*?: * vs baseline * (delta *, tolerance *)",
        "  fail * ?*?: * vs baseline * (delta *, tolerance *)",
        f"  ... * more failing checks in reports/{run.name}/cases/microprint_dilation__classic__s1.json",
        f"run reports/{run.name}: 1 case, 0 passed, 1 failed, 0 errors -- INCOMPLETE*",
    ])
    assert "Traceback" not in result.stdout.str()
    report = json.loads((run / "report.json").read_text())
    assert report["complete"] is False  # -x stopped before s2
    assert [(c["id"], c["status"]) for c in report["cases"]] == [(S1, "fail")]


def test_distribution_suite_is_one_item_per_group(pytester, project):
    write_project(project, mode="distribution")  # same suite name: the paired baselines serve as its seeds
    result = pytester.runpytest("-v")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["vectors/suites/tiny.toml::microprint_dilation/classic/seeds PASSED*"])
    report = json.loads((only_run(project) / "report.json").read_text())
    assert report["complete"] is True
    assert [(c["id"], c["status"]) for c in report["cases"]] == [
        (S1, "pass"), (S2, "pass"), ("microprint_dilation/classic/seeds", "pass")]


def test_harness_suite_option_runs_a_suite_anywhere(pytester, tmp_path):
    suite = tmp_path / "s.toml"
    suite.write_text('name = "s"\nseeds = [1]\nvectors = ["caption_portrait"]\n'
                     '[pipelines.p]\ndetect = { backend = "ground_truth" }\nmask = { backend = "shape" }\n'
                     'inpaint = { backend = "telea" }\n')
    result = pytester.runpytest("--harness-suite", str(suite), "--harness-out", str(tmp_path / "r"))
    # no baseline for suite "s": the case fails with the bake command in its message
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*no baseline for caption_portrait/p/s1*harness bake*"])
    [run] = (tmp_path / "r").iterdir()
    report = json.loads((run / "report.json").read_text())
    assert report["complete"] is True and [c["status"] for c in report["cases"]] == ["fail"]


def test_a_builtin_suite_outside_the_rootdir_gets_harness_node_ids(pytester):
    result = pytester.runpytest("--collect-only", "-q", "--harness-suite", "smoke",
                                "-k", "receipt_microprint and classic")
    result.stdout.fnmatch_lines(["harness::smoke::receipt_microprint/classic/s1",
                                 "harness::smoke::receipt_microprint/classic/s2",
                                 "harness::smoke::receipt_microprint/classic/s3"])
    assert not (pytester.path / "reports").exists()


def test_an_unknown_suite_is_a_usage_error(pytester):
    result = pytester.runpytest("--harness-suite", "no_such_suite")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--harness-suite 'no_such_suite': no such suite*"])


def test_this_repository_collects_only_its_tests():
    # testpaths = ["tests"]: a plain `pytest` here must not collect (and run) the built-in suites
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"],
                         cwd=root, capture_output=True, text=True, timeout=300)
    ids = [line for line in out.stdout.splitlines() if "::" in line]
    assert any(line.startswith("tests/plugin/test_plugin_suites.py::") for line in ids)
    assert [line for line in ids if not line.startswith("tests/")] == []
