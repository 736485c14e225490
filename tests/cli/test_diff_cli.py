"""`harness diff A B [--out DIR]` through the CLI: exit codes 0 / 1 / 2 and what --out writes."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "report"))
from diffruns import run  # noqa: E402

from harness.cli import main  # noqa: E402


@pytest.fixture()
def runs(tmp_path):
    good = run(tmp_path / "good", values={1: 1.0, 2: 1.1, 3: 0.9})
    bad = run(tmp_path / "bad", values={1: 2.0, 2: 1.0, 3: 2.6}, dilate=6)
    return good, bad


def test_newly_failing_exits_1_and_the_reverse_exits_0(runs, capsys):
    good, bad = runs
    assert main(["diff", str(good), str(bad)]) == 1
    out = capsys.readouterr().out
    assert "! v/p  pass → fail in 2/3 seeds, pass → pass in 1/3  (1 check(s) newly failing; first differing image: " \
           "mask_mask)" in out
    assert "  mask.dilate_px 2 → 6  in 1 vector × pipeline(s): v/p" in out
    assert main(["diff", str(bad), str(good)]) == 0
    out = capsys.readouterr().out
    assert "newly failing: none" in out and "newly fixed: 1 check(s)" in out
    assert "  mask.dilate_px 6 → 2  in 1 vector × pipeline(s): v/p" in out
    assert main(["diff", str(good), str(good)]) == 0
    assert "newly fixed: none" in capsys.readouterr().out


def test_out_writes_json_md_and_html(runs, tmp_path, capsys):
    good, bad = runs
    out = tmp_path / "d"
    assert main(["diff", str(good), str(bad / "report.json"), "--out", str(out), "--limit", "5"]) == 1
    err = capsys.readouterr().err
    assert err.splitlines() == [str(out / "diff.json"), str(out / "diff.md"), str(out / "diff.html")]
    doc = json.loads((out / "diff.json").read_text())
    assert doc["units"][0]["worst_seed"] == 3  # the seed whose newly failing check is worst
    assert [i["stage"] for i in doc["units"][0]["images"]] == ["mask_mask", "output"]
    assert sorted(p.name for p in (out / "images").iterdir()) == [
        f"v__p__s3-{stage}-{side}.png" for stage in ("mask_mask", "output") for side in ("a", "b", "diff")]
    assert 'src="images/v__p__s3-output-diff.png"' in (out / "diff.html").read_text()


def test_an_incomplete_b_exits_1(tmp_path, capsys):
    good = run(tmp_path / "good", values={1: 1.0})
    stopped = run(tmp_path / "stopped", values={1: 1.0}, complete=False)
    assert main(["diff", str(good), str(stopped)]) == 1
    assert capsys.readouterr().err.startswith(f"harness: REPORT_B {stopped} (run stopped) is INCOMPLETE")


@pytest.mark.parametrize("breakage,msg", [
    ("missing", "no report.json here"),
    ("corrupt", "report.json"),
])
def test_bad_input_exits_2_with_one_line(runs, tmp_path, capsys, breakage, msg):
    good, bad = runs
    if breakage == "missing":
        target = tmp_path / "nothing"
    else:
        (bad / "report.json").write_text("{not json")
        target = bad
    assert main(["diff", str(good), str(target)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("harness: error: ") and msg in err and err.count("\n") == 1


def test_limit_must_be_positive(runs, capsys):
    assert main(["diff", *map(str, runs), "--limit", "0"]) == 2
    assert capsys.readouterr().err == "harness: error: --limit 0: expected a positive number of rows\n"


def test_help_documents_the_json_shape_and_exit_codes(capsys):
    with pytest.raises(SystemExit):
        main(["diff", "--help"])
    out = capsys.readouterr().out
    assert "diff.json  {format, run_a, run_b, failed" in out and "Exit codes: 0 nothing got worse, 1 a check" in out
