"""checks.parquet: typed columns, parts written as cases land, compaction, projection and filters,
and a run folder that a crash left half-written reads as incomplete, never as a crash or a pass."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from harness.comparing.checks import Check
from harness.errors import InputError
from harness.report.check_parts import compacted_cases, part_path
from harness.report.checks_table import (COLUMNS, compact, read_checks, schema, slice_parts, table_of, write_csv,
                                         write_part)
from harness.report.schema import CaseResult, Report, case_record_text, deciding_checks, load_report
from harness.run.rundir import RunFolder


def checks(n: int, failing: int = 0) -> list[Check]:
    """``n`` tile checks, severity rising with i; the last ``failing`` fail."""
    return [Check("band_power", f"band=high tile=r0c{i} ch=Y", 1.0 + i, 1.0, float(i), 10.0,
                  "fail" if i >= n - failing else "pass", box=(i, 0, i + 8, 8)) for i in range(n)]


def case(i: int, n: int = 8, failing: int = 0) -> CaseResult:
    return CaseResult(f"v/p/s{i}", "v", "p", i, "fail" if failing else "pass", None, {}, {}, checks(n, failing))


def test_slice_words_become_columns_and_the_slice_stays_as_it_was():
    assert slice_parts("band=high+top tile=r1c2 region=border ch=Y stage=mask sub=3") == {
        "band": "high+top", "tile": "r1c2", "region": "border", "channel": "Y", "stage": "mask"}
    assert slice_parts("all") == dict.fromkeys(("band", "tile", "region", "channel", "stage"))
    c = CaseResult("v/p/seeds", "v", "p", None, "pass", None, {}, {},
                   [Check("expect", "stage=mask effect=kept", None, 0.0, None, None, "skip")])
    row = table_of(c).to_pylist()[0]
    assert row == {"case": "v/p/seeds", "vector": "v", "pipeline": "p", "seed": None, "metric": "expect",
                   "slice": "stage=mask effect=kept", "band": None, "tile": None, "region": None, "channel": None,
                   "stage": "mask", "value": None, "baseline": 0.0, "delta": None, "tolerance": None,
                   "status": "skip", "box": None, "note": None}
    assert table_of(c).schema == schema() and tuple(schema().names) == COLUMNS
    assert schema().field("box").type == pa.list_(pa.int32(), 4) and schema().field("seed").type == pa.int64()


def test_deciding_checks_are_every_failure_and_the_five_nearest_misses_in_recorded_order():
    cs = checks(9, failing=2)  # severities 0 .. 0.8; the last two fail
    cs.insert(0, Check("m", "all", None, None, None, None, "skip"))
    cs.insert(1, Check("m", "gone", None, None, None, None, "error"))
    got = deciding_checks(cs)
    assert [c.slice.split()[1] if " " in c.slice else c.slice for c in got] == [
        "gone", "tile=r0c2", "tile=r0c3", "tile=r0c4", "tile=r0c5", "tile=r0c6", "tile=r0c7", "tile=r0c8"]
    assert deciding_checks(got) == got  # idempotent: a trimmed case writes the same checks again
    few = checks(3)
    assert deciding_checks(few) == few and deciding_checks([]) == []


def test_a_recorded_case_keeps_its_deciding_checks_and_counts_and_the_parquet_keeps_all(tmp_path):
    folder = RunFolder.create(tmp_path, "run")
    try:
        folder.start(Report("run", "s", "t", {}, planned=["v/p/s1", "v/p/s2"]))
        c1, c2 = case(1, 40, failing=7), case(2, 12)
        folder.add(c1, {"meta": {"height": 8}, "metrics": {"mean": {"slices": ["all"], "values": [0.5],
                                                                    "std": [0.1], "bias": [0.0]}}})
        folder.add(c2, None)
        assert (len(c1.checks), c1.n_checks, c1.n_failed) == (12, 40, 7)  # held in memory: 7 failing + 5
        assert (len(c2.checks), c2.n_checks, c2.n_failed) == (5, 12, 0)
        assert sorted(p.name for p in (folder.path / "checks").iterdir()) == ["v__p__s1.parquet", "v__p__s2.parquet"]
        # mid-run (no compaction yet): the parts are read
        mid = load_report(folder.path)
        assert not mid.complete and [c.id for c in mid.cases] == ["v/p/s1", "v/p/s2"]
        assert read_checks(folder.path, ["case"]).num_rows == 52
        folder.finish(Report("run", "s", "t", {}, [c1, c2], complete=True, planned=["v/p/s1", "v/p/s2"]))
    finally:
        folder.close()
    run = folder.path
    assert list((run / "checks").iterdir()) == [] and compacted_cases(run) == {"v/p/s1": 40, "v/p/s2": 12}
    doc = json.loads((run / "report.json").read_text())
    assert [(c["n_checks"], c["n_failed"], len(c["checks"])) for c in doc["cases"]] == [(40, 7, 12), (12, 0, 5)]
    full = read_checks(run)
    assert full.num_rows == 52 and full.column_names == list(COLUMNS)
    assert full.filter(pc.field("case") == "v/p/s1").column("box").to_pylist()[3] == [3, 0, 11, 8]


def test_read_checks_projects_columns_and_filters_rows(tmp_path):
    for i in (1, 2, 3):
        write_part(tmp_path, case(i, 10, failing=i))
    compact(tmp_path, ["v/p/s1", "v/p/s2", "v/p/s3"])
    rep = Report("r", "s", "t", {}, [case(i, 10, failing=i) for i in (1, 2, 3)], complete=True)
    rep.write(tmp_path)
    got = read_checks(tmp_path, ["case", "tile"], [("status", "=", "fail"), ("case", "in", ["v/p/s2", "v/p/s3"])])
    assert got.column_names == ["case", "tile"]
    assert got.to_pylist() == [{"case": "v/p/s2", "tile": t} for t in ("r0c8", "r0c9")] + \
        [{"case": "v/p/s3", "tile": t} for t in ("r0c7", "r0c8", "r0c9")]
    expr = read_checks(tmp_path, ["value"], pc.field("tile") == "r0c4")
    assert expr.column("value").to_pylist() == [5.0, 5.0, 5.0]
    with pytest.raises(InputError, match=r"checks columns: 'colour' not among case, vector"):
        read_checks(tmp_path, ["colour"])


def test_compaction_writes_row_groups_and_drops_only_the_compacted_parts(tmp_path, monkeypatch):
    import harness.report.checks_table as ct

    monkeypatch.setattr(ct, "ROW_GROUP", 25)
    for i in range(1, 6):
        write_part(tmp_path, case(i, 10))
    compact(tmp_path, [f"v/p/s{i}" for i in range(1, 5)])  # s5: a part without a record is left alone
    meta = pq.read_metadata(tmp_path / "checks.parquet")
    assert meta.num_rows == 40 and meta.num_row_groups == 2
    assert [p.name for p in (tmp_path / "checks").iterdir()] == ["v__p__s5.parquet"]
    compact(tmp_path, [f"v/p/s{i}" for i in range(1, 6)])  # a resumed run compacts again: nothing twice
    assert pq.read_metadata(tmp_path / "checks.parquet").num_rows == 50


def _killed_run(tmp_path) -> RunFolder:
    """A run folder as a kill -9 leaves it: the header, two recorded cases, no compaction."""
    folder = RunFolder.create(tmp_path, "run")
    folder.start(Report("run", "s", "t", {}, planned=["v/p/s1", "v/p/s2", "v/p/s3"]))
    folder.add(case(1, 10, failing=1), None)
    folder.add(case(2, 10), None)
    folder.close()
    return folder


def test_a_killed_run_is_read_from_its_parts(tmp_path):
    run = _killed_run(tmp_path).path
    rep = load_report(run)
    assert not rep.complete and rep.status == "error" and rep.missing == ["v/p/s3"]
    assert read_checks(run, ["case"], [("status", "=", "fail")]).to_pylist() == [{"case": "v/p/s1"}]


def test_a_truncated_part_makes_its_case_missing_not_a_crash(tmp_path):
    run = _killed_run(tmp_path).path
    p = part_path(run, "v/p/s2")
    p.write_bytes(p.read_bytes()[:40])
    rep = load_report(run)
    assert [c.id for c in rep.cases] == ["v/p/s1"] and rep.missing == ["v/p/s2", "v/p/s3"]
    assert rep.notes[1].startswith("1 recorded case(s) whose checks are missing or unreadable in ")
    assert rep.notes[1].endswith("(read as not recorded): v/p/s2") and rep.status == "error"
    assert read_checks(run, ["case"]).num_rows == 10  # what is there is read


def test_a_complete_report_without_its_checks_file_refuses_a_full_read(tmp_path):
    write_part(tmp_path, case(1, 10))
    compact(tmp_path, ["v/p/s1"])
    Report("r", "s", "t", {}, [case(1, 10)], complete=True).write(tmp_path)
    data = (tmp_path / "checks.parquet").read_bytes()
    (tmp_path / "checks.parquet").write_bytes(data[: len(data) // 2])
    rep = load_report(tmp_path)
    assert rep.complete and rep.status == "pass"  # the verdict is report.json's: every failing check is in it
    with pytest.raises(InputError, match=r"checks.parquet: the checks of 1 case\(s\) are missing or unreadable: "
                                         r"v/p/s1 \(0 of 10\)"):
        read_checks(tmp_path)


def test_checks_csv_is_written_only_on_request_with_its_old_columns(tmp_path):
    write_part(tmp_path, case(1, 2))
    compact(tmp_path, ["v/p/s1"])
    Report("r", "s", "t", {}, [case(1, 2)], complete=True).write(tmp_path)
    assert not (tmp_path / "checks.csv").exists()
    assert write_csv(tmp_path).read_text() == (
        "case,vector,pipeline,seed,metric,slice,value,baseline,delta,tolerance,status\n"
        "v/p/s1,v,p,1,band_power,band=high tile=r0c0 ch=Y,1.0,1.0,0.0,10.0,pass\n"
        "v/p/s1,v,p,1,band_power,band=high tile=r0c1 ch=Y,2.0,1.0,1.0,10.0,pass\n")


def test_a_measurement_lives_beside_its_record_as_float_arrays(tmp_path):
    from harness.report.schema import read_case_record

    folder = RunFolder.create(tmp_path, "run")
    m = {"meta": {"height": 8, "region_boxes": {"anchor": [0, 0, 4, 4]}},
         "metrics": {"mean": {"slices": ["all", "tile=r0c0"], "values": [0.1234567, 1e-300], "std": [0.1, 0.0],
                              "bias": [0.0, None]}}}
    try:
        folder.start(Report("run", "s", "t", {}, planned=["v/p/s1"]))
        folder.add(case(1, 3), m)
    finally:
        folder.close()
    rec = folder.path / "cases" / "v__p__s1.json"
    doc = json.loads(rec.read_text())
    assert doc["schema_version"] == 2 and doc["measurement"]["file"] == "v__p__s1.measure.npz"
    assert read_case_record(rec) == (read_case_record(rec, measurement=False)[0], m)
    npz = folder.path / "cases" / "v__p__s1.measure.npz"
    npz.write_bytes(npz.read_bytes()[:-10])
    with pytest.raises(InputError, match=r"v__p__s1.measure.npz: not the measurement its case record names"):
        read_case_record(rec)


def test_case_record_text_refuses_a_measurement_that_is_not_a_file_reference():
    with pytest.raises(RuntimeError, match=r"case-record that breaks schema v2 \(measurement\.file: required key"):
        case_record_text(case(1), {"metrics": {}})


def test_a_compaction_that_fails_leaves_the_parts_and_no_temporary_file(tmp_path, monkeypatch):
    import pyarrow.parquet as pq_mod

    for i in (1, 2):
        write_part(tmp_path, case(i, 4))

    def full_disk(self, *a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pq_mod.ParquetWriter, "write_table", full_disk)
    with pytest.raises(OSError, match="No space left on device"):
        compact(tmp_path, ["v/p/s1", "v/p/s2"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checks"]  # no checks.parquet, no .tmp
    assert sorted(p.name for p in (tmp_path / "checks").iterdir()) == ["v__p__s1.parquet", "v__p__s2.parquet"]


def test_the_html_tile_map_reads_every_tile_check_of_the_failing_cases(tmp_path):
    from harness.report.html import tile_checks

    cases = [case(1, 12, failing=1), case(2, 12)]
    for c in cases:
        write_part(tmp_path, c)
    compact(tmp_path, ["v/p/s1", "v/p/s2"])
    Report("r", "s", "t", {}, cases, complete=True).write(tmp_path)
    rep = load_report(tmp_path)
    assert len(rep.cases[0].checks) == 6  # report.json: 1 failing + 5 nearest misses
    got = tile_checks(rep, tmp_path)
    assert list(got) == ["v/p/s1"] and [c.slice.split()[1] for c in got["v/p/s1"]] == [f"tile=r0c{i}" for i in range(12)]


def test_numeric_columns_convert_at_once_with_the_same_nulls_as_one_by_one():
    import numpy as np
    import pyarrow as pa

    from harness.report.checks_table import _num, _nums

    samples = [[1.0, None, float("nan"), float("inf"), -float("inf"), 3, 2**60, -0.0, 1e308],
               [True, 1.0], [np.float32(1.5), None], [np.float64(2.5), 1], [], [None, None], ["x", 1.0]]
    for values in samples:
        got = _nums(values)
        got = got if isinstance(got, pa.Array) else pa.array(got, pa.float64())
        assert got.equals(pa.array([_num(v) for v in values], pa.float64())), values
    fast = _nums([1.0, None, float("nan"), -0.0])
    assert isinstance(fast, pa.Array) and fast.to_pylist() == [1.0, None, None, -0.0]
    assert str(fast[3].as_py()) == "-0.0"
    many = [float(i) if i % 3 else None for i in range(1000)]
    assert _nums(many).equals(pa.array([_num(v) for v in many], pa.float64()))


def test_numeric_columns_do_not_import_pandas():
    import subprocess
    import sys

    code = ("import sys, numpy, pyarrow\nfrom harness.report.checks_table import _nums\n"
            "_nums([1.0, None] * 50)\nprint('pandas' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False", out.stderr[-2000:]
