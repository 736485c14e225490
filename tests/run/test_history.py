"""The nightly history: append a run's checks (keep rule, atomic, idempotent), query a trend."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timezone

import numpy as np
import pytest

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

from harness.comparing.checks import Check  # noqa: E402
from harness.errors import ConfigError, InputError  # noqa: E402
from harness.report.check_parts import META_KEY  # noqa: E402
from harness.report.checks_table import COLUMNS, parquet_bytes, read_checks, slice_parts  # noqa: E402
from harness.report.schema import CaseResult, Report  # noqa: E402
from harness.run import history_bench as hb  # noqa: E402
from harness.run.history import (TREND_COLUMNS, append_run, history_schema, keep_for_trend,  # noqa: E402
                                 trend, write_run)
from harness.run.rundir import RunFolder  # noqa: E402

CREATED = "2026-03-04T23:30:00-02:00"  # 2026-03-05 in UTC: the partition is the UTC day


def _check(case, metric, slc, value, status="pass", baseline=1.0, tolerance=0.5, **extra):
    return {"case": case, "vector": case.split("/")[0], "pipeline": case.split("/")[1], "seed": 1,
            "metric": metric, "slice": slc, "value": value, "baseline": baseline, "delta": value - baseline,
            "tolerance": tolerance, "status": status, **extra}


def _checks():
    rows = [_check("v/p/s1", "mean", "region=ring ch=Cb", 1.2),
            _check("v/p/s1", "stage_effect", "stage=mask effect=kept", 0.1, note="mask kept 4.5%")]
    for i, (v, s) in enumerate([(1.1, "pass"), (1.9, "fail"), (1.3, "pass"), (0.8, "pass")]):
        rows.append(_check("v/p/s1", "contrast", f"band=high tile=r0c{i} ch=Y", v, s, box=[i * 8, 0, i * 8 + 8, 8]))
    rows += [_check("v/p/s1", "band_power", f"band=top ch=Y sub=r{i}c0", 1.0 + 0.1 * i) for i in range(3)]
    return rows


def _table(rows, drop=()):
    """checks.parquet's columns (checks_table.COLUMNS) of ``rows``, the slice's parts parsed as harness writes them."""
    rows = [{**slice_parts(r["slice"]), **r} for r in rows]
    cols = {k: [r.get(k) for r in rows] for k in COLUMNS}
    types = {"seed": pa.int64(), "box": pa.list_(pa.int32(), 4)}
    return pa.table({k: pa.array(v, types.get(k)) for k, v in cols.items() if k not in drop})


def _run(tmp_path, rows=None, *, run_id="20260305T013000-smoke", complete=True, created=CREATED, drop=()):
    """A compacted run folder as harness writes it: report.json with each case's check counts, and
    checks.parquet holding ``rows`` (less the ``drop`` columns) with the cases' row counts in its footer."""
    run_dir = tmp_path / "reports" / run_id
    run_dir.mkdir(parents=True)
    rows = rows or _checks()
    counts = Counter(r["case"] for r in rows)
    failed = Counter(r["case"] for r in rows if r["status"] in ("fail", "error"))
    cases = [CaseResult(c, c.split("/")[0], c.split("/")[1], 1, "fail" if failed[c] else "pass", n_checks=n,
                        n_failed=failed[c]) for c, n in counts.items()]
    env = {"git_sha": "0123abc", "versions": {"harness": "9.8.7"}}
    Report(run_id, "smoke", created, env, cases, complete=complete).write(run_dir)
    meta = {META_KEY: json.dumps(dict(counts)).encode()}
    (run_dir / "checks.parquet").write_bytes(parquet_bytes(_table(rows, drop), meta))
    return run_dir


def _kept(tmp_path, rows=None):
    """keep_for_trend of ``rows`` as a run folder holds them."""
    return keep_for_trend(read_checks(_run(tmp_path, rows)))


def test_append_reads_the_checks_as_every_view_does_parts_of_a_killed_run_too(tmp_path):
    folder = RunFolder.create(tmp_path / "reports", "20260305T013000-smoke")
    folder.start(Report(folder.path.name, "smoke", CREATED, {}, planned=["v/p/s1", "v/p/s2"]))
    folder.add(CaseResult("v/p/s1", "v", "p", 1, "fail", checks=[
        Check("mean", "ch=Y", 1.2, 1.0, 0.2, 0.5, "pass"),
        Check("contrast", "tile=r0c0 ch=Y", 2.0, 1.0, 1.0, 0.5, "fail", box=(0, 0, 8, 8))]), None)
    folder.close()  # killed: no compaction, one of two cases recorded
    done = append_run(folder.path, tmp_path / "hist", allow_incomplete=True)
    rows = pq.read_table(done.path).to_pylist()
    assert [(r["metric"], r["slice"], r["tile"], r["box"], r["complete"]) for r in rows] == [
        ("contrast", "tile=r0c0 ch=Y", "r0c0", [0, 0, 8, 8], False),
        ("contrast", "tile=worst ch=Y", "r0c0", [0, 0, 8, 8], False), ("mean", "ch=Y", None, None, False)]


def test_append_reads_a_version_1_run_folder(tmp_path):
    run_dir = tmp_path / "reports" / "old"
    c = CaseResult("v/p/s1", "v", "p", 1, "pass", checks=[Check("mean", "region=ring ch=Cb", 1.1, 1.0, 0.1, 0.5,
                                                                "pass")])
    doc = Report("old", "smoke", CREATED, {}, [c], complete=True, planned=[c.id]).to_dict()
    doc["schema_version"] = 1
    del doc["checks_file"]
    for k in ("changed", "n_checks", "n_failed"):
        del doc["cases"][0][k]
    (run_dir / "cases").mkdir(parents=True)
    (run_dir / "report.json").write_text(json.dumps(doc))
    (run_dir / "cases" / "v__p__s1.json").write_text(json.dumps({"case": doc["cases"][0], "measurement": {}}))
    done = append_run(run_dir, tmp_path / "hist")
    row = pq.read_table(done.path).to_pylist()[0]
    assert (done.rows, row["region"], row["channel"], row["value"], row["run_id"]) == (1, "ring", "Cb", 1.1, "old")


def test_append_refuses_a_missing_column_or_unknown_status(tmp_path):
    with pytest.raises(InputError, match=r"checks.parquet: column 'status' is missing or has 9 null values"):
        append_run(_run(tmp_path / "a", drop=("status",)), tmp_path / "hist")
    rows = _checks()
    rows[0]["status"] = "maybe"
    with pytest.raises(InputError, match="status 'maybe' is not one of pass, fail, error, skip"):
        append_run(_run(tmp_path / "b", rows), tmp_path / "hist")
    rows[0]["status"], rows[1]["metric"] = "pass", None
    with pytest.raises(InputError, match="checks.parquet: column 'metric' is missing or has 1 null values"):
        append_run(_run(tmp_path / "c", rows), tmp_path / "hist")
    assert not (tmp_path / "hist").exists()


def test_keep_rule_keeps_nonspatial_and_failing_checks_and_the_worst_tile(tmp_path):
    kept = {(r["metric"], r["slice"]): r for r in _kept(tmp_path).to_pylist()}
    assert sorted(kept) == [("band_power", "band=top ch=Y sub=worst"), ("contrast", "band=high tile=r0c1 ch=Y"),
                            ("contrast", "band=high tile=worst ch=Y"), ("mean", "region=ring ch=Cb"),
                            ("stage_effect", "stage=mask effect=kept")]
    fam = kept[("contrast", "band=high tile=worst ch=Y")]
    # the failing tile is the worst (status first, then |delta| / tolerance), and it says which tile
    assert (fam["value"], fam["status"], fam["tile"], fam["box"], fam["n_slices"], fam["n_failed"]) == \
           (1.9, "fail", "r0c1", [8, 0, 16, 8], 4, 1)
    sub = kept[("band_power", "band=top ch=Y sub=worst")]
    assert (sub["value"], sub["n_slices"], sub["n_failed"], sub["band"], sub["tile"]) == (1.2, 3, 0, "top", None)
    assert kept[("stage_effect", "stage=mask effect=kept")]["note"] == "mask kept 4.5%"


def test_keep_rule_matches_the_benchmarks_synthetic_kept_rows():
    # the bench writes kept rows computed in numpy; they must be what the rule makes of the full night
    full = hb.synthetic_night(6, 50, full=True)
    direct = hb.synthetic_night(6, 50, full=False)
    order = [("case", "ascending"), ("metric", "ascending"), ("slice", "ascending"), ("n_slices", "ascending")]
    got = keep_for_trend(full).sort_by(order).select(direct.column_names)
    ratio = hb._values(6, 50, 0)[3]
    failing = int((ratio[:, hb.template().family >= 0] > 1).sum())  # case 0 drifts: on day 50 some tiles fail
    assert failing == int((ratio[0, hb.template().family >= 0] > 1).sum()) > 100
    assert full.num_rows == 6 * 5638 and got.num_rows == direct.num_rows == 6 * (116 + 18) + failing
    assert got.equals(direct.sort_by(order))


def test_append_writes_one_typed_sorted_zstd_file_per_run(tmp_path):
    run_dir = _run(tmp_path)
    done = append_run(run_dir, tmp_path / "hist")
    assert done.path == tmp_path / "hist" / "suite=smoke" / "date=2026-03-05" / "20260305T013000-smoke.parquet"
    assert (done.rows, done.checks, done.replaced) == (5, 9, False)
    f = pq.ParquetFile(done.path)
    assert f.schema_arrow == history_schema()
    col = f.metadata.row_group(0).column(history_schema().get_field_index("slice"))
    assert col.compression == "ZSTD" and "RLE_DICTIONARY" in col.encodings and col.statistics.has_min_max
    value = f.metadata.row_group(0).column(history_schema().get_field_index("value"))
    assert "BYTE_STREAM_SPLIT" in value.encodings and value.statistics is None
    rows = f.read().to_pylist()
    assert [(r["metric"], r["slice"]) for r in rows] == sorted((r["metric"], r["slice"]) for r in rows)
    assert {(r["run_id"], r["git_sha"], r["harness_version"], r["complete"]) for r in rows} == \
           {("20260305T013000-smoke", "0123abc", "9.8.7", True)}
    assert rows[0]["created"] == datetime(2026, 3, 5, 1, 30, tzinfo=timezone.utc)
    again = append_run(run_dir, tmp_path / "hist", keep="all")
    assert (again.rows, again.replaced) == (9, True)
    assert [p.name for p in (tmp_path / "hist").rglob("*.parquet")] == ["20260305T013000-smoke.parquet"]


def test_a_run_is_kept_once_even_when_filed_under_another_day(tmp_path):
    hist = tmp_path / "hist"
    kept = _kept(tmp_path)
    head = {"run_id": "r1", "suite": "smoke", "created": datetime(2026, 3, 5, tzinfo=timezone.utc)}
    write_run(kept, {**head, "date": "2026-03-04"}, hist)
    done = write_run(kept, {**head, "date": "2026-03-05"}, hist)
    assert done.replaced and [p.parent.name for p in hist.rglob("*.parquet")] == ["date=2026-03-05"]


def test_append_refuses_an_incomplete_run_unless_asked(tmp_path):
    run_dir = _run(tmp_path, complete=False)
    with pytest.raises(InputError, match=r"the run is incomplete \(1 case recorded; the run did not finish\); "
                                         r"not appended"):
        append_run(run_dir, tmp_path / "hist")
    assert not (tmp_path / "hist").exists()
    done = append_run(run_dir, tmp_path / "hist", allow_incomplete=True)
    assert set(pq.read_table(done.path, columns=["complete"])["complete"].to_pylist()) == {False}


def test_append_refuses_what_is_not_a_run(tmp_path):
    with pytest.raises(InputError, match="not a run folder"):
        append_run(tmp_path, tmp_path / "hist")
    with pytest.raises(ConfigError, match="keep 'some': expected one of trend, all"):
        append_run(tmp_path, tmp_path / "hist", keep="some")
    run_dir = _run(tmp_path)
    (run_dir / "checks.parquet").write_text("not parquet")
    with pytest.raises(InputError, match=r"checks.parquet: the checks of 1 case\(s\) are missing or unreadable: "
                                         r"v/p/s1 \(0 of 9\)"):
        append_run(run_dir, tmp_path / "hist")


@pytest.fixture(scope="module")
def year(tmp_path_factory):
    """20 nightlies of 50 cases, written as the benchmark writes them."""
    root = tmp_path_factory.mktemp("history")
    for day in range(20):
        write_run(hb.synthetic_night(50, day, full=False), hb.night_header(day), root)
    return root


def test_trend_is_one_slice_of_one_case_across_every_run(year):
    case = "vec0003/p2/s1"
    got = trend(year, "nightly", case, "mean", "region=ring ch=Cb")
    assert tuple(got.columns) == TREND_COLUMNS and len(got) == 20
    assert got["run_id"].tolist() == [hb.night_header(d)["run_id"] for d in range(20)]
    assert str(got["created"].dt.tz) == "UTC" and got["created"].is_monotonic_increasing
    col = list(zip(hb.template().metric, hb.template().slice)).index(("mean", "region=ring ch=Cb"))
    for day in (0, 7, 19):
        value, baseline, tol, _ = hb._values(50, day, 0)
        assert got["value"][day] == value[14, col] and got["baseline"][day] == baseline[14, col]
        assert got["tolerance"][day] == tol[14, col]
    fam = trend(year, "nightly", case, "contrast", "tile=worst ch=Y", since="2026-01-15")
    assert len(fam) == 6 and fam["created"].min() == hb.START.replace(day=15)
    late = trend(year, "nightly", case, "contrast", "tile=worst ch=Y", since="2026-01-15T03:00:00+00:00")
    assert len(late) == 5


def test_duckdb_answers_the_same_rows(year):
    pytest.importorskip("duckdb")
    for args, since in [(("vec0000/p0/s1", "band_power", "band=top tile=worst ch=Y"), None),
                        (("vec0012/p1/s1", "spectrum", "ch=Y f=3"), "2026-01-10"),
                        (("vec0012/p1/s1", "spectrum", "no such slice"), None)]:
        a = trend(year, "nightly", *args, since=since)
        b = trend(year, "nightly", *args, since=since, engine="duckdb")
        assert a.equals(b) and len(a) == {None: 20, "2026-01-10": 11}[since] * (args[2] != "no such slice")


def test_failing_tiles_of_a_drifting_case_are_kept_in_full(year):
    # case 0 drifts: late in its 60-day cycle some tiles fail; day 19 is early, so none yet
    assert trend(year, "nightly", "vec0000/p0/s1", "hue", "tile=r0c0").empty
    night = hb.synthetic_night(1, 59, full=False).to_pylist()
    failing = [r for r in night if r["n_slices"] == 1 and "tile=r" in r["slice"]]
    assert failing and all(r["status"] == "fail" for r in failing)


def test_trend_errors_name_the_problem(year, tmp_path):
    with pytest.raises(ConfigError, match=r"no runs of suite 'smoke' \(it has: nightly\)"):
        trend(year, "smoke", "c", "m", "s")
    with pytest.raises(ConfigError, match="no such folder"):
        trend(tmp_path / "none", "nightly", "c", "m", "s")
    with pytest.raises(ConfigError, match="engine 'sqlite': expected pyarrow or duckdb"):
        trend(year, "nightly", "c", "m", "s", engine="sqlite")
    with pytest.raises(ConfigError, match="since 'yesterday': expected YYYY-MM-DD"):
        trend(year, "nightly", "c", "m", "s", since="yesterday")
    with pytest.raises(ValueError, match="invalid suite name '../x'"):
        trend(year, "../x", "c", "m", "s")
    odd = tmp_path / "h[1]"
    write_run(hb.synthetic_night(1, 0, full=False), hb.night_header(0), odd)
    assert len(trend(odd, "nightly", "vec0000/p0/s1", "mean", "ch=Y")) == 1
    with pytest.raises(ConfigError, match=r"a path with glob characters .* cannot be read by engine duckdb"):
        trend(odd, "nightly", "vec0000/p0/s1", "mean", "ch=Y", engine="duckdb")


def test_bench_history_reports_sizes_and_query_times(tmp_path):
    r = hb.bench_history(tmp_path, days=4, cases=8, repeats=1)
    assert (r["files"], r["checks_per_run"], r["rows_per_run"]) == (4, 8 * 5638, 8 * 134)
    assert r["history_rows"] == 4 * 8 * 134 and r["history_bytes"] > 0 and r["trend_rows"] == 4
    assert r["run_bytes_all"] > r["run_bytes"] and r["query_pyarrow_s"] > 0
    assert r["same"] in (True, None) and np.isfinite(r["append_s"])


def test_worst_tile_ranks_zero_tolerance_first_and_missing_tolerance_last(tmp_path):
    rows = [_check("v/p/s1", "mean", "tile=r0c0", 9.0, tolerance=None),  # no tolerance: no margin
            _check("v/p/s1", "mean", "tile=r0c1", 1.2, tolerance=0.5),  # margin 0.4
            _check("v/p/s1", "hue", "tile=r0c0", 1.0 + 1e-9, tolerance=0.0),  # any change at tolerance 0: inf
            _check("v/p/s1", "hue", "tile=r0c1", 3.0, tolerance=4.0)]
    worst = {r["metric"]: r["tile"] for r in _kept(tmp_path, rows).to_pylist()}
    assert worst == {"mean": "r0c1", "hue": "r0c0"}


def test_duckdb_engine_without_duckdb_is_a_clear_error(year, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "duckdb", None)  # as if not installed
    with pytest.raises(ConfigError, match=r"engine duckdb: DuckDB is not installed \(pip install "
                                          r"'image-harness\[history\]'\)"):
        trend(year, "nightly", "vec0000/p0/s1", "mean", "ch=Y", engine="duckdb")
    assert len(trend(year, "nightly", "vec0000/p0/s1", "mean", "ch=Y")) == 20  # pyarrow alone suffices


def test_duckdb_reads_files_of_an_older_schema_by_name(tmp_path):
    pytest.importorskip("duckdb")
    for day in range(3):
        write_run(hb.synthetic_night(2, day, full=False), hb.night_header(day), tmp_path)
    old = next(tmp_path.glob("suite=nightly/date=2026-01-02/*.parquet"))
    table = pq.read_table(old).drop_columns(["vector", "n_failed"])
    pq.write_table(table.select(list(reversed(table.column_names))), old)  # fewer columns, another order
    a = trend(tmp_path, "nightly", "vec0000/p1/s1", "mean", "ch=Y")
    b = trend(tmp_path, "nightly", "vec0000/p1/s1", "mean", "ch=Y", engine="duckdb")
    assert a.equals(b) and len(a) == 3 and a["value"].notna().all()
