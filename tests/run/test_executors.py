"""Executors and the isolating worker pool, below the runner: which process runs which case."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "faults"))  # faultkit: the fault matrix's helpers

from faultkit import backend, write_suite

from harness.errors import ConfigError
from harness.run.executors import CaseJob, ProcessExecutor, RayExecutor, SerialExecutor, make_executor
from harness.suite.suites import load_suite
from harness.run.workers import IsolatingExecutor, WorkerPool, death_reason, where_in


def job_for(tmp_path, denoise, seeds=(1, 2, 3), **kw):
    suite = load_suite(write_suite(tmp_path, denoise, seeds))
    return suite, CaseJob(suite, tmp_path / "run", None, **kw)


def pids(folder: Path) -> dict[int, list[int]]:
    return {int(p.name): [int(x) for x in p.read_text().split()] for p in folder.iterdir()}


def test_one_long_lived_worker_per_slot_replaced_only_after_a_crash(tmp_path):
    folder = tmp_path / "pids"
    folder.mkdir()
    suite, job = job_for(tmp_path, backend("record_pid", folder=str(folder), crash=(2,)), seeds=(1, 2, 3, 4))
    outs = {o.case_id: o for o in IsolatingExecutor(1).run(suite.cases(), job)}
    assert [outs[c.id].error is None for c in suite.cases()] == [True, False, True, True]
    seen = pids(folder)
    first, crashed, retry = seen[1][0], seen[2][0], seen[2][1]
    assert crashed == first  # one worker ran cases 1 and 2 ...
    assert retry != first  # ... the crashed case was retried in a fresh worker ...
    assert seen[3] == seen[4] and seen[3][0] not in (first, retry)  # ... and the next worker kept for 3 and 4


def test_workers_share_the_cases_and_each_is_reused(tmp_path):
    folder = tmp_path / "pids"
    folder.mkdir()
    suite, job = job_for(tmp_path, backend("record_pid", folder=str(folder)), seeds=(1, 2, 3, 4, 5, 6))
    outs = list(IsolatingExecutor(2).run(suite.cases(), job))
    assert sorted(o.case_id for o in outs) == sorted(c.id for c in suite.cases())
    assert all(o.error is None for o in outs)
    assert len({p for v in pids(folder).values() for p in v}) == 2  # two workers for six cases


def test_a_worker_that_cannot_start_errors_the_cases_instead_of_looping(tmp_path):
    suite, job = job_for(tmp_path, '{ backend = "tv" }', seeds=(1, 2), threads=0)  # set_threads(0) raises
    t = time.monotonic()
    outs = list(IsolatingExecutor(1).run(suite.cases(), job))
    assert [o.error for o in outs] == ["worker processes failed to start 3 times in a row"] * 2
    assert time.monotonic() - t < 30


def test_a_worker_exits_when_its_parent_goes_away_even_without_pdeathsig(tmp_path):
    """The fallback to PR_SET_PDEATHSIG: the worker's watchdog sees its lifeline pipe close."""
    _, job = job_for(tmp_path, '{ backend = "tv" }')
    pool = WorkerPool(1, None, job)
    slot = pool._start()
    try:
        assert slot.conn.poll(60) and slot.conn.recv()[0] == "ready"
        slot.lifeline.close()  # what the kernel does to the parent's end when the parent dies
        slot.proc.join(5)
        assert slot.proc.exitcode == 70
    finally:
        pool._drop(slot)


def test_where_a_worker_is_and_how_it_died():
    assert where_in(sys._getframe()) == ""  # nothing of harness's on this stack
    assert death_reason(-11) == "killed by SIGSEGV" and death_reason(3) == "exited with code 3"
    assert death_reason(None) == "vanished"


def test_make_executor():
    assert isinstance(make_executor("local", 1), ProcessExecutor)  # --workers 1 isolates too
    pool = make_executor("local", 3, timeout=2.5)
    assert (pool.name, pool.workers, pool.timeout) == ("process", 3, 2.5)
    with pytest.raises(ConfigError, match="--workers must be >= 1"):
        make_executor("local", 0)
    with pytest.raises(ConfigError, match="--timeout must be > 0"):
        make_executor("local", 1, timeout=0)
    with pytest.raises(ConfigError, match="choose one of local, ray"):
        make_executor("slurm", 1)
    assert RayExecutor.name == "ray"


def test_serial_executor_still_runs_in_process(tmp_path):
    suite, job = job_for(tmp_path, '{ backend = "tv" }', seeds=(1,))
    (out,) = SerialExecutor().run(suite.cases(), job)
    assert out.error is None and out.measurement
