"""`harness history append`, `harness run --history` and the project's history key."""

from __future__ import annotations

import pytest

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

from harness.cli import main  # noqa: E402
from harness.cli.history import append_after_run  # noqa: E402
from harness.errors import ConfigError  # noqa: E402
from harness.project import load_project  # noqa: E402
from harness.comparing.checks import Check  # noqa: E402
from harness.report.checks_table import compact, write_part  # noqa: E402
from harness.report.schema import CaseResult, Report  # noqa: E402
from harness.run.history import trend  # noqa: E402
from cli_suite import classical_suite  # noqa: E402

RUN_ID = "20261206T020000-smoke"


def _run(tmp_path, *, complete=True, status="pass"):
    """A run folder of one case with two checks, as harness writes it (compacted checks.parquet)."""
    run_dir = tmp_path / "reports" / RUN_ID
    run_dir.mkdir(parents=True)
    checks = [Check("mean", "ch=Y", 1.0, 1.0, 0.0, 0.1, "pass"), Check("contrast", "tile=r0c0 ch=Y", 2.0, 1.0, 1.0, 0.1,
                                                                       status)]
    case = CaseResult("v/p/s1", "v", "p", 1, "fail" if status == "fail" else "pass", checks=checks)
    write_part(run_dir, case)
    compact(run_dir, [case.id])
    report = Report(RUN_ID, "smoke", "2026-12-06T02:00:00+00:00", {"git_sha": "abc"}, [case], complete=complete)
    report.write(run_dir)
    return run_dir, report


def test_history_append_writes_and_replaces(tmp_path, capsys):
    run_dir, _ = _run(tmp_path, status="fail")
    hist = tmp_path / "hist"
    assert main(["history", "append", str(run_dir), "--history", str(hist)]) == 0
    path = hist / "suite=smoke" / "date=2026-12-06" / f"{RUN_ID}.parquet"
    assert capsys.readouterr().out == f"{path}\t3 rows of 2 checks, {path.stat().st_size} bytes\n"
    assert main(["history", "append", str(run_dir), "--history", str(hist), "--keep", "all"]) == 0
    assert capsys.readouterr().out.endswith("bytes (replaced the copy already there)\n")
    assert trend(hist, "smoke", "v/p/s1", "contrast", "tile=r0c0 ch=Y")["status"].tolist() == ["fail"]


def test_history_append_without_a_folder_or_of_an_incomplete_run_exits_2(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run_dir, _ = _run(tmp_path, complete=False)
    assert main(["history", "append", str(run_dir)]) == 2
    assert capsys.readouterr().err == ('harness: error: history append: no history folder: pass --history DIR or '
                                       'set history = "..." in [tool.harness]\n')
    assert main(["history", "append", str(run_dir), "--history", "h"]) == 2
    assert "the run is incomplete (1 case recorded; the run did not finish); not appended" in capsys.readouterr().err
    assert main(["history", "append", str(run_dir), "--history", "h", "--allow-incomplete"]) == 0
    assert (tmp_path / "h" / "suite=smoke").is_dir()


def test_history_append_uses_the_project_key(tmp_path, capsys, monkeypatch):
    (tmp_path / "harness.toml").write_text('history = "nightly-history"\n')
    monkeypatch.chdir(tmp_path)
    run_dir, _ = _run(tmp_path)
    assert load_project().history == tmp_path / "nightly-history"
    assert main(["history", "append", str(run_dir)]) == 0
    assert list((tmp_path / "nightly-history").rglob("*.parquet"))


def test_project_history_key_is_optional_and_checked(tmp_path):
    (tmp_path / "harness.toml").write_text('reports = "r"\n')
    assert load_project(tmp_path).history is None
    (tmp_path / "harness.toml").write_text("history = 3\n")
    with pytest.raises(ConfigError, match=r"harness.toml: history: expected a folder path \(a string\), got 3"):
        load_project(tmp_path)


@pytest.mark.parametrize("run_code", [0, 1])
def test_a_failed_append_never_hides_a_failure_nor_passes(tmp_path, capsys, run_code):
    run_dir, report = _run(tmp_path)
    blocker = tmp_path / "hist"
    blocker.write_text("a file where the history folder should be")
    assert append_after_run(run_dir, report, blocker, run_code) == (2 if run_code == 0 else 1)
    err = capsys.readouterr().err
    assert err.startswith(f"harness: error: history {blocker}: ") and \
           err.rstrip().endswith(f"append it later with `harness history append {run_dir} --history {blocker}`")


def test_an_incomplete_run_is_not_appended_and_keeps_its_code(tmp_path, capsys):
    run_dir, report = _run(tmp_path, complete=False)
    assert append_after_run(run_dir, report, tmp_path / "hist", 1) == 1
    assert capsys.readouterr().err == f"harness: history: {RUN_ID} not appended to {tmp_path / 'hist'}: " \
                                      f"the run is incomplete\n"
    assert not (tmp_path / "hist").exists()
    assert append_after_run(run_dir, report, None, 0) == 0


def test_run_with_history_appends_a_finished_run(tmp_path, capsys):
    suite = tmp_path / "hist.toml"
    suite.write_text(classical_suite("hist"))
    hist = tmp_path / "history"
    argv = ["run", "--suite", str(suite), "--out", str(tmp_path / "r"), "--cache", str(tmp_path / "c"), "-q",
            "--store", str(tmp_path / "store")]
    assert main([*argv, "--history", str(hist)]) == 1  # no baseline: the run fails, and is appended as it is
    out, err = capsys.readouterr()
    run_dir = out.strip().splitlines()[-1]
    files = list(hist.glob("suite=hist/date=*/*.parquet"))
    assert [f.stem for f in files] == [run_dir.rsplit("/", 1)[-1]]
    cases = set(pq.read_table(files[0], columns=["case"])["case"].to_pylist())
    assert cases == {"caption_portrait/p/s1"}
    (tmp_path / "blocked").write_text("")
    assert main([*argv, "--history", str(tmp_path / "blocked")]) == 1  # a failing run stays a failure (1)
    assert f"harness: error: history {tmp_path / 'blocked'}: " in capsys.readouterr().err
