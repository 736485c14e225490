"""`harness run`'s terminal output (worst checks and what changed under a failing case, -q / -v, the
plain lines off a terminal) and --maxfail, on a two-case classical suite whose mask dilation moved
from its baselines' 2 px to 6 px."""

import json
import re
from pathlib import Path

import pytest

from harness.cli import main
from cli_suite import classical_suite

CHECK_LINE = re.compile(r"^    fail \w+ \[[^\]]+\]( @ x \d+-\d+, y \d+-\d+)?: \S+ vs baseline \S+ "
                        r"\(delta \S+, tolerance \S+\) = [\d.]+× tolerance$")


@pytest.fixture(scope="module")
def dilated(tmp_path_factory):
    """Baselines baked at dilate_px 2 for seeds 1 and 2, and the suite moved to dilate_px 6."""
    tmp = tmp_path_factory.mktemp("dilated")
    suite = tmp / "out.toml"
    suite.write_text(classical_suite("out").replace("seeds = [1]", "seeds = [1, 2]"))
    store = ["--store", str(tmp / "store"), "--baselines", str(tmp / "b")]
    assert main(["run", "--suite", str(suite), "--out", str(tmp / "first"), "--no-cache", "-q", *store]) == 1
    first = next((tmp / "first").iterdir())
    assert main(["bake", "--suite", str(suite), "--from-report", str(first), *store]) == 0
    suite.write_text(suite.read_text().replace("dilate_px = 2", "dilate_px = 6"))
    return suite, store


def run(dilated, tmp_path, capsys, *extra):
    suite, store = dilated
    code = main(["run", "--suite", str(suite), "--out", str(tmp_path / "r"), "--no-cache", *store, *extra])
    out, err = capsys.readouterr()
    return code, Path(out.strip().splitlines()[-1]), err


@pytest.fixture(autouse=True)
def plain(monkeypatch):
    """Plain lines whatever the test's stderr is (pytest's capture is no terminal, but a CI=false
    developer shell must not change the answer)."""
    monkeypatch.setenv("HARNESS_PROGRESS", "plain")


def test_default_shows_the_worst_three_checks_and_what_changed_under_each_failing_case(dilated, tmp_path, capsys):
    code, run_dir, err = run(dilated, tmp_path, capsys)
    assert code == 1
    lines = err.splitlines()
    first = lines.index(next(ln for ln in lines if ln.startswith("[1/2] fail  caption_portrait/p/s")))
    block = lines[first + 1:first + 6]
    assert all(CHECK_LINE.match(ln) for ln in block[:3]), block
    severities = [float(ln.rsplit("= ", 1)[1].split("×")[0]) for ln in block[:3]]
    assert severities == sorted(severities, reverse=True) and severities[0] > 1
    assert re.fullmatch(r"    \.\.\. \d+ more failing checks \(all in checks\.parquet\)", block[3])
    assert block[4] == "    changed: mask.dilate_px 2 → 6"
    assert "what changed (pipeline config vs baselines):" in lines
    assert "  mask.dilate_px 2 → 6: 2 cases (fail)" in lines
    summary = next(ln for ln in lines if ln.startswith("FAIL: "))
    assert summary.startswith("FAIL: 2 cases in ") and summary.endswith(f"-> {run_dir / 'report.json'}")
    assert "\x1b[" not in err  # plain: no control codes


def test_quiet_prints_only_the_failing_one_liners_and_the_summary(dilated, tmp_path, capsys):
    code, run_dir, err = run(dilated, tmp_path, capsys, "-q")
    assert code == 1
    lines = err.splitlines()
    assert [ln.split()[:2] for ln in lines[:2]] == [["[1/2]", "fail"], ["[2/2]", "fail"]]
    assert not any(ln.startswith("    ") for ln in lines)  # no details
    assert [ln for ln in lines if ln.startswith("FAIL: ")][0].startswith("FAIL: 2 cases in ")


def test_verbose_shows_every_deciding_check_of_every_case(dilated, tmp_path, capsys):
    from harness.report.schema import load_report

    code, run_dir, err = run(dilated, tmp_path, capsys, "-v")
    assert code == 1
    report = load_report(run_dir)
    detail = [ln for ln in err.splitlines() if re.match(r"    (fail|pass|error|skip) ", ln)]
    assert len(detail) == sum(len(c.checks) for c in report.cases) > 2 * 3
    assert any(ln.startswith("    pass ") for ln in detail)  # the nearest misses too


def test_quiet_and_verbose_together_is_a_usage_error(dilated, tmp_path, capsys):
    suite, store = dilated
    assert main(["run", "--suite", str(suite), "-q", "-v"]) == 2
    assert "-q and -v: choose one" in capsys.readouterr().err


def test_maxfail_stops_incomplete_exits_1_and_resume_finishes(dilated, tmp_path, capsys):
    from harness.report.schema import load_report

    code, run_dir, err = run(dilated, tmp_path, capsys, "--maxfail", "1")
    assert code == 1
    report = load_report(run_dir)
    assert not report.complete and report.status == "error" and report.exit_code == 1  # never a pass
    assert len(report.cases) == 1 and len(report.missing) == 1
    note = (f"stopped after 1 failing cases (--maxfail 1): 1 of 2 cases recorded; finish it with "
            f"`harness run --resume {run_dir}`")
    doc = json.loads((run_dir / "report.json").read_text())
    assert doc["complete"] is False and doc["notes"] == [note] and note in report.notes
    assert "INCOMPLETE (1 of 2 planned cases have results (1 missing)): 1 cases in " in err
    assert f"note: {note}" in err
    assert "**INCOMPLETE**" in (run_dir / "summary.md").read_text()
    suite, store = dilated
    assert main(["run", "--resume", str(run_dir), "--no-cache", "-q", *store]) == 1  # still failing, now complete
    done = load_report(run_dir)
    assert done.complete and done.status == "fail" and len(done.cases) == 2
    assert not any("--maxfail" in n for n in done.notes)


def test_maxfail_must_be_positive(dilated, tmp_path, capsys):
    suite, store = dilated
    assert main(["run", "--suite", str(suite), "--out", str(tmp_path / "r"), "--maxfail", "0", *store]) == 2
    assert "--maxfail must be >= 1, got 0" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
