"""`harness trend`: the table on stdout, PNG and HTML with --out, exit 0 for a view (flags included),
exit 2 with one line for a missing or corrupt history, an unknown suite and an empty selection."""

from __future__ import annotations

import re

import pytest

pytest.importorskip("pyarrow")

import trend_history as th  # noqa: E402
from harness.cli import main  # noqa: E402


@pytest.fixture(scope="module")
def hist(tmp_path_factory):
    return th.history(tmp_path_factory.mktemp("trend-cli"))


def test_trend_prints_the_table_and_writes_png_and_html(hist, tmp_path, capsys):
    assert main(["trend", "--history", str(hist), "-k", "v/p", "--slice", "band=*", "--out", str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines()[1] == "3 series match -k 'v/p' --slice 'band=*'; 1 flagged; showing all, most drift first"
    assert re.search(r"\nv/p/s1 +band_power +band=high ch=Y +10 +1\.036 +1 ± 0\.05 +72% +\+0\.72 tol +up 9 +near trend\n",
                     out)
    assert err == f"harness: trend: wrote {tmp_path / 'trend.png'}, {tmp_path / 'trend.html'}\n"
    assert (tmp_path / "trend.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = (tmp_path / "trend.html").read_text()
    assert page.count('<polygon class="band"') == 3 and '<tr class="flagged">' in page


def test_a_flagged_or_failing_series_is_still_exit_0(hist, capsys):
    assert main(["trend", "--history", str(hist), "--metric", "mean"]) == 0  # its last run failed: a view, no gate
    assert re.search(r"\nw/p/s1 +mean +ch=Y +10 +6 +5 ± 0\.5 +200% +\+2\.00 tol +up 1 +fail\n", capsys.readouterr().out)


def test_the_project_history_key_is_the_default(hist, tmp_path, capsys, monkeypatch):
    (tmp_path / "harness.toml").write_text(f'history = "{hist.as_posix()}"\n')
    monkeypatch.chdir(tmp_path)
    assert main(["trend", "--last", "2", "--top", "1"]) == 0
    assert "suite nightly: 2 runs" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["-k", "nothing"], "(suite nightly, 10 runs): no series match -k 'nothing'"),
    (["--metric", "mean", "--slice", "re:^tile"], "no series match --metric 'mean' --slice 're:^tile'"),
    (["--suite", "smoke"], "no runs of suite 'smoke' (it has: nightly)"),
    (["--suite", "../x"], "--suite: invalid suite name '../x'"),
    (["--since", "yesterday"], "since 'yesterday': expected YYYY-MM-DD or an ISO timestamp"),
    (["--last", "0"], "--last 0: expected a positive number of runs"),
])
def test_an_empty_or_bad_selection_exits_2_naming_it(hist, capsys, argv, message):
    assert main(["trend", "--history", str(hist), *argv]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("harness: error: ") and message in err and err.count("\n") == 1


def test_a_missing_or_corrupt_history_exits_2(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["trend", "--history", str(tmp_path / "none")]) == 2
    assert capsys.readouterr().err == f"harness: error: history {tmp_path / 'none'}: no such folder\n"
    assert main(["trend"]) == 2
    assert capsys.readouterr().err == ('harness: error: trend: no history folder: pass --history DIR or set '
                                       'history = "..." in [tool.harness]\n')
    hist = tmp_path / "h"
    th.history(hist, nights=3)
    bad = th.write_night(hist, 3)
    bad.write_bytes(b"PAR1 not really")
    assert main(["trend", "--history", str(hist)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"harness: error: history {bad}: not a readable Parquet file (") and err.count("\n") == 1
    th.write_night(hist, 0, suite="other")
    assert main(["trend", "--history", str(hist)]) == 2
    assert capsys.readouterr().err == f"harness: error: history {hist}: holds suites nightly, other: pass --suite NAME\n"
    assert main(["trend", "--history", str(tmp_path)]) == 2  # a folder with no suite= in it
    assert capsys.readouterr().err == f"harness: error: history {tmp_path}: holds no runs (no suite=<name> folder)\n"
