"""harness.run.observer: the one line per case a ``progress`` callback gets, and ``maxfail``'s count."""

from pathlib import Path

import pytest

from harness.comparing.engine import Check
from harness.errors import ConfigError
from harness.report.schema import CaseResult, Report
from harness.run.observer import FailLimit, LineObserver, RunEnd, case_line, summary_lines

FAIL = Check("band_power", "band=high ch=Y", 113.0, 171.0, -58.0, 16.0, "fail")


def case(status, checks=(), error=None, cid="v/p/s1") -> CaseResult:
    return CaseResult(cid, "v", "p", 1, status, error, {"inpaint": 0.3, "measure": 0.1}, checks=list(checks))


def test_case_line_as_progress_callbacks_have_always_read_it():
    assert case_line(case("fail", [FAIL, FAIL]), 7, 30, True) == "[7/30] fail  v/p/s1 (0.4s)  2 failed checks"
    assert case_line(case("pass"), 1, 2, True) == "[1/2] pass  v/p/s1 (0.4s)"
    assert case_line(case("skip"), 1, 2, False) == "[1/2] measured v/p/s1 (0.4s)"
    assert case_line(case("error", error="worker killed"), 2, 2, False) == "[2/2] error v/p/s1 (0.4s)  worker killed"


def test_line_observer_says_cases_notes_and_the_summary():
    lines = []
    obs = LineObserver(lines.append)
    obs.begin(1, 0)
    obs.started("v/p/s1")
    obs.recorded(case("pass"), 1, 1, True)
    obs.note("retry v/p/s1: worker killed")
    report = Report("rid", "s", "t", {}, [case("pass")], complete=True, notes=["a note"], planned=["v/p/s1"])
    obs.finished(RunEnd(report, Path("/r/rid"), 1, 2.0, True))
    assert lines == ["[1/1] pass  v/p/s1 (0.4s)", "retry v/p/s1: worker killed",
                     "PASS: 1 cases in 2.0s: 1 passed, 0 failed, 0 errors -> /r/rid/report.json", "note: a note"]


def test_summary_of_a_measuring_run_and_of_group_entries():
    report = Report("rid", "s", "t", {}, [case("skip"), case("pass", cid="v/p/seeds")], complete=True)
    assert summary_lines(RunEnd(report, Path("/r"), 1, 1.0, False)) == [
        "MEASURED: 1 cases in 1.0s: 0 errors -> /r/report.json"]
    assert summary_lines(RunEnd(report, Path("/r"), 1, 1.0, True))[0].startswith(
        "PASS: 1 cases in 1.0s + 1 group/cross entries: ")


def test_fail_limit_counts_failed_and_errored_cases_only_while_more_are_to_come():
    limit = FailLimit(2)
    assert limit.reached("pass", True, "1 of 5 cases recorded", Path("/r")) == ""
    assert limit.reached("fail", True, "2 of 5 cases recorded", Path("/r")) == ""
    assert limit.reached("skip", True, "3 of 5 cases recorded", Path("/r")) == ""
    assert limit.reached("error", True, "4 of 5 cases recorded", Path("/r")) == (
        "stopped after 2 failing cases (--maxfail 2): 4 of 5 cases recorded; "
        "finish it with `harness run --resume /r`")
    last = FailLimit(1)
    assert last.reached("fail", False, "5 of 5 cases recorded", Path("/r")) == ""  # the last case: complete
    assert FailLimit(None).reached("fail", True, "", Path("/r")) == ""


def test_fail_limit_refuses_zero():
    with pytest.raises(ConfigError, match=r"--maxfail must be >= 1, got 0"):
        FailLimit(0)


# -- the executors' dispatch hook and the runner's events
def test_the_pool_says_each_case_it_hands_out_and_a_crashed_one_again(tmp_path):
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "faults"))
    from faultkit import backend, write_suite

    from harness.run.executors import CaseJob
    from harness.run.workers import IsolatingExecutor
    from harness.suite.suites import load_suite

    folder = tmp_path / "pids"
    folder.mkdir()
    suite = load_suite(write_suite(tmp_path, backend("record_pid", folder=str(folder), crash=(2,)), (1, 2, 3)))
    ex = IsolatingExecutor(1)
    started = []
    ex.on_dispatch = lambda c: started.append(c.seed)
    outs = list(ex.run(suite.cases(), CaseJob(suite, tmp_path / "run", None)))
    assert [o.error is None for o in outs] == [True, False, True]
    assert started == [1, 2, 2, 3]  # case 2 crashed, then ran again in a fresh worker


def test_pipelined_and_serial_executors_say_when_a_case_starts(tmp_path):
    from harness.run.executors import SerialExecutor
    from harness.run.pipelined import PipelinedExecutor, SleepPhase
    from harness.suite.suites import Case, Pipeline

    cases = [Case("sleep", Pipeline("standin", ()), i) for i in range(3)]
    ex, started = PipelinedExecutor(1), []
    ex.on_dispatch = lambda c: started.append(c.seed)
    outs = list(ex.run_phases(cases, SleepPhase(0.01), SleepPhase(0.01, measure=True), 1))
    assert len(outs) == 3 and started == [0, 1, 2]
    serial, seen = SerialExecutor(), []
    serial.on_dispatch = lambda c: seen.append(c.seed)

    class Job:
        def setup(self):
            pass

        def __call__(self, case):
            seen.append(("ran", case.seed))
            return case.seed

    assert list(serial.run(cases[:2], Job())) == [0, 1] and seen == [0, ("ran", 0), 1, ("ran", 1)]


class Recorder:
    def __init__(self):
        self.events = []

    def begin(self, total, done):
        self.events.append(("begin", total, done))

    def started(self, case_id):
        self.events.append(("started", case_id))

    def recorded(self, case, done, total, judged):
        self.events.append(("recorded", case.id, case.status, done, total, judged))

    def note(self, text):
        self.events.append(("note", text))

    def finished(self, end):
        self.events.append(("finished", end.ran, end.report.complete, end.judged))


def test_run_suite_tells_its_observer_each_case_started_and_recorded(tmp_path):
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cli"))
    from cli_suite import classical_suite

    from harness.run.runner import run_suite
    from harness.suite.suites import load_suite

    p = tmp_path / "obs.toml"
    p.write_text(classical_suite("obs").replace("seeds = [1]", "seeds = [1, 2]"))
    rec = Recorder()
    report, _ = run_suite(load_suite(p), out_root=tmp_path / "r", baselines_root=tmp_path / "b", observer=rec,
                          judge=False)
    ids = ["caption_portrait/p/s1", "caption_portrait/p/s2"]
    assert rec.events[0] == ("begin", 2, 0)
    # the freed worker starts the next case before the runner records the one it finished
    assert [e for e in rec.events if e[0] in ("started", "recorded")] == [
        ("started", ids[0]), ("started", ids[1]), ("recorded", ids[0], "skip", 1, 2, False),
        ("recorded", ids[1], "skip", 2, 2, False)]
    assert rec.events[-1] == ("finished", 2, True, False) and report.complete


def test_the_ray_executor_says_each_case_an_actor_starts(tmp_path):
    ray = pytest.importorskip("ray")
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cli"))
    from cli_suite import classical_suite

    from harness.run.executors import CaseJob
    from harness.run.ray_executor import RayExecutor
    from harness.suite.suites import load_suite

    p = tmp_path / "ray.toml"
    p.write_text(classical_suite("ray").replace("seeds = [1]", "seeds = [1, 2]"))
    suite = load_suite(p)
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False, logging_level="WARNING")
    try:
        ex, seen = RayExecutor(1), []
        ex.on_dispatch = lambda c: seen.append(c.id)
        outs = list(ex.run(suite.cases(), CaseJob(suite, tmp_path / "run", None)))
    finally:
        if started:
            ray.shutdown()
    assert [o.error for o in outs] == [None, None]
    assert seen == ["caption_portrait/p/s1", "caption_portrait/p/s2"]
