"""report.json: an incomplete report is never a pass, and load_report reads a run that did not finish."""

from __future__ import annotations

import json

import pytest

from harness.comparing.engine import Check
from harness.errors import InputError
from harness.report.schema import CaseResult, Report, load_report, read_case_records, run_in_progress


def case(i: int, status: str = "pass") -> CaseResult:
    return CaseResult(f"v/p/s{i}", "v", "p", i, status, None, {"denoise": 0.1}, {},
                      [Check("band_power", "band=high ch=Y", 1.0, 1.0, 0.0, 0.5, status if status != "error" else "pass")])


def record(run_dir, c: CaseResult) -> None:
    """What RunFolder.add writes: the case's checks part, then its record."""
    from harness.report.checks_table import write_part
    from harness.report.schema import case_record_text

    (run_dir / "cases").mkdir(parents=True, exist_ok=True)
    write_part(run_dir, c)
    (run_dir / "cases" / f"{c.id.replace('/', '__')}.json").write_text(case_record_text(c, None))


@pytest.mark.parametrize("statuses", [[], ["pass"], ["pass", "skip"], ["fail"], ["error"]])
def test_an_incomplete_report_is_never_a_pass(statuses):
    cases = [case(i, s) for i, s in enumerate(statuses)]
    assert Report("r", "s", "t", {}, cases, complete=False).status == "error"
    assert Report("r", "s", "t", {}, cases, complete=False).exit_code == 1
    done = Report("r", "s", "t", {}, cases, complete=True)
    assert done.status == ({"fail": "fail", "error": "error"}.get(statuses[0], "pass") if statuses else "pass")


def test_planned_and_missing_round_trip(tmp_path):
    rep = Report("r", "s", "t", {}, [case(1)], complete=False, planned=["v/p/s1", "v/p/s2"])
    assert rep.missing == ["v/p/s2"]
    assert rep.incomplete_reason() == "1 of 2 planned cases have results (1 missing)"
    rep.write(tmp_path)
    back = load_report(tmp_path)
    assert back.planned == ["v/p/s1", "v/p/s2"] and back.missing == ["v/p/s2"] and not back.complete
    old = Report("r", "s", "t", {}, [case(1)], complete=True).to_dict()
    assert "planned" not in old  # only written when known: older readers see the contract unchanged


def test_a_stale_report_is_completed_from_the_case_records(tmp_path):
    """report.json as written at a run's start (no cases) plus what cases/ holds: an incomplete report."""
    Report("run", "suite", "t", {"k": None}, [], complete=False, planned=["v/p/s1", "v/p/s2", "v/p/s3"]).write(tmp_path)
    record(tmp_path, case(2, "fail"))
    record(tmp_path, case(1))
    (tmp_path / "cases" / ".v__p__s3.json.abcdefgh.tmp").write_text("{")  # a write a kill cut short
    rep = load_report(tmp_path)
    assert [c.id for c in rep.cases] == ["v/p/s1", "v/p/s2"]  # the planned order
    assert not rep.complete and rep.status == "error" and rep.missing == ["v/p/s3"]
    assert rep.notes[0] == "incomplete: the run did not finish; 2 of 3 planned cases have results (1 missing)"
    assert load_report(tmp_path / "report.json").cases == rep.cases  # the file itself, too


def test_a_complete_report_is_not_merged(tmp_path):
    Report("run", "suite", "t", {}, [case(1)], complete=True).write(tmp_path)
    record(tmp_path, case(2))
    assert [c.id for c in load_report(tmp_path).cases] == ["v/p/s1"]


def test_a_missing_report_json_with_case_records_is_an_incomplete_report(tmp_path):
    run_dir = tmp_path / "20260101T000000-smoke"
    record(run_dir, case(1))
    rep = load_report(run_dir)
    assert rep.run_id == run_dir.name and not rep.complete and rep.status == "error" and len(rep.cases) == 1
    assert "report.json is missing" in rep.notes[0]
    with pytest.raises(InputError, match="no report.json here"):
        load_report(tmp_path / "empty")


def test_read_case_records_skips_what_it_cannot_read(tmp_path):
    record(tmp_path, case(1))
    (tmp_path / "cases" / "junk.json").write_text("not json")
    assert list(read_case_records(tmp_path)) == ["v/p/s1"]
    assert read_case_records(tmp_path / "nowhere") == {}


def test_run_in_progress_follows_the_writers_lock(tmp_path):
    import fcntl
    import os

    assert not run_in_progress(tmp_path)
    fd = os.open(tmp_path / ".lock", os.O_RDWR | os.O_CREAT)
    try:
        assert not run_in_progress(tmp_path)
        pid = os.fork()
        if pid == 0:  # another process holds the lock, as a running `harness run` does
            fcntl.flock(os.open(tmp_path / ".lock", os.O_RDWR), fcntl.LOCK_EX)
            os.write(fd, b"x")
            import time

            time.sleep(5)
            os._exit(0)
        import time

        end = time.monotonic() + 5
        while os.fstat(fd).st_size == 0 and time.monotonic() < end:
            time.sleep(0.01)
        assert run_in_progress(tmp_path)
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        assert not run_in_progress(tmp_path)  # the kernel dropped the lock with its holder
    finally:
        os.close(fd)


def test_an_incomplete_report_whose_records_are_all_there_says_so_not_zero_missing():
    rep = Report("r", "s", "t", {}, [case(1)], complete=False, planned=["v/p/s1"])
    assert rep.missing == [] and rep.status == "error"
    assert rep.incomplete_reason() == ("all 1 planned cases have case records, but report.json does not hold "
                                       "them all: the run did not finish writing it")
