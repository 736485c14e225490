"""``harness bench --scale``: the row logic on known inputs, and --quick end to end through the real CLI.

The end-to-end tests run real ``harness`` child processes with tiny sizes; the verdicts come
from what they measure against the targets given on the command line (an impossible target
makes a real miss, a lax one a real pass), never from a patched function.
"""

from __future__ import annotations

import json

import pytest

from harness.cli.app import main
from harness.run.bench_scale import Row, parse_only, parse_targets, window_ratios
from harness.run.bench_scale_runs import Event, run_flags


def _events(times: list[float], rss: list[int | None]) -> list[Event]:
    return [Event(t, i + 1, len(times), r) for i, (t, r) in enumerate(zip(times, rss))]


def test_window_ratios_leave_out_the_first_case_and_compare_the_two_ends():
    # 1 case of start-up (5 s), then 2 windows of 2 cases: 0.1 s/case at the start, 0.3 s/case at the end
    times = [5.0, 5.1, 5.2, 5.5, 5.8]
    first, last, rss_first, rss_last = window_ratios(_events(times, [100, 110, 120, 130, 150]), 2)
    assert (round(first, 6), round(last, 6)) == (0.1, 0.3)
    assert (rss_first, rss_last) == (120, 150)  # peaks over cases 2-3 and 4-5
    assert window_ratios(_events(times, [None] * 5), 2)[2:] == (None, None)
    with pytest.raises(ValueError, match="4 progress lines: need at least 5 for two windows of 2"):
        window_ratios(_events(times[:4], [1] * 4), 2)


def test_row_verdicts_and_option_parsing():
    assert Row("overhead", 1.10, "<=", 1.10).verdict == "ok"
    assert Row("overhead", 1.11, "<=", 1.10).verdict == "MISSED"
    assert Row("cached", 19.9, ">=", 20.0).verdict == "MISSED"
    assert Row("history", 2.0, "<", 2.0).verdict == "MISSED"
    assert Row("compare", None, "<=", 6.0, error="exited 3").verdict == "ERROR"
    assert Row("history", None, "<", 2.0, absent=True).verdict == "n/a"
    assert parse_only("flat, compare,flat") == ("flat", "compare")
    with pytest.raises(ValueError, match=r"--only 'flat,speed': unknown row speed; choose from overhead"):
        parse_only("flat,speed")
    assert parse_targets(["compare=4", "flat_rss=1.5"]) == {"compare": 4.0, "flat_rss": 1.5}
    with pytest.raises(ValueError, match=r"--target 'flat=2': expected NAME=NUMBER"):
        parse_targets(["flat=2"])


def test_run_flags_pass_store_only_where_harness_run_has_it(tmp_path):
    base = ["--out", str(tmp_path / "r"), "--cache", str(tmp_path / "c")]
    assert run_flags("  --cache DIR  stage cache\n  --storey x", tmp_path / "r", tmp_path / "c") == base
    assert run_flags("  --store DIR  image store", tmp_path / "r", tmp_path / "c") == \
        base + ["--store", str(tmp_path / "c-store")]


def test_bad_only_is_a_usage_error(capsys):
    assert main(["bench", "--scale", "--only", "speed"]) == 2
    assert "unknown row speed" in capsys.readouterr().err


def test_quick_compare_row_meets_a_lax_target_and_reports_copies(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["bench", "--scale", "--quick", "--only", "compare", "--compare-size", "128", "--target",
                 "compare=100000", "--json", str(out), "--workdir", str(tmp_path)]) == 0
    doc = json.loads(out.read_text())
    (row,), (run,) = doc["rows"], doc["runs"]
    assert (row["id"], row["verdict"], row["target"], run["rc"]) == ("compare", "ok", 100000.0, 0)
    assert run["float32_copy_bytes"] == 128 * 128 * 3 * 4
    assert row["value"] == pytest.approx(run["maxrss"] / run["float32_copy_bytes"])
    assert "every target met" in capsys.readouterr().out


def test_quick_smoke_and_flat_rows_miss_an_impossible_target_and_exit_1(tmp_path, capsys):
    out = tmp_path / "bench.json"
    code = main(["bench", "--scale", "--quick", "--only", "overhead,cached,flat", "--cases", "21", "--window", "10",
                 "--target", "cached=1e9", "--target", "overhead=1e9", "--target", "flat_time=1e9",
                 "--target", "flat_rss=1e9", "--json", str(out), "--workdir", str(tmp_path)])
    text = capsys.readouterr().out
    assert code == 1
    assert "MISSED: cached\n" in text + "\n"
    doc = json.loads(out.read_text())
    rows = {r["id"]: r for r in doc["rows"]}
    assert [r["verdict"] for r in rows.values()] == ["ok", "MISSED", "ok", "ok"]
    cold, cached, flat = doc["runs"]
    assert (cold["cases"], cold["threads"], cold["rc"], cached["rc"]) == (4, 1, 0, 0)
    assert cold["summary"] == cached["summary"] == {"passed": 4, "failed": 0, "errors": 0, "skipped": 0}
    assert rows["overhead"]["value"] == pytest.approx(cold["wall_s"] / cold["sum_case_s"])
    assert rows["cached"]["value"] == pytest.approx(cold["wall_s"] / cached["wall_s"])
    assert rows["flat_time"]["value"] == pytest.approx(flat["per_case_last_s"] / flat["per_case_first_s"])
    assert rows["flat_rss"]["value"] == pytest.approx(flat["driver_rss_last"] / flat["driver_rss_first"])
    assert flat["rc"] == 0 and doc["sizes"]["cases"] == 21


def test_landed_times_are_the_case_records_mtimes_in_order(tmp_path):
    import os

    from harness.run.bench_scale import landed_times

    assert landed_times(tmp_path / "absent") is None
    cases = tmp_path / "20261206T000000-flat" / "cases"
    cases.mkdir(parents=True)
    for name, t in (("b.json", 1_000_000_300), ("a.json", 1_000_000_100), ("c.json", 1_000_000_200),
                    ("a.measure.npz", 5)):
        (cases / name).write_text("{}")
        os.utime(cases / name, ns=(t, t))
    assert landed_times(tmp_path) == [1.0000001, 1.0000002, 1.0000003]  # records only, sorted
    (tmp_path / "another-run").mkdir()
    assert landed_times(tmp_path) is None  # not one run: no clock to trust
