"""harness.report.progress: what `harness run` prints per case (worst checks, what changed, where it
diverged), at each verbosity, as plain lines or above a rich progress bar, and which one it picks."""

import io
from pathlib import Path

import pytest

from harness.comparing.engine import Check
from harness.report.progress import (BarProgress, TextProgress, case_details, changes_block, make_progress,
                                     use_bar)
from harness.report.schema import CaseResult, Report
from harness.run.observer import RunEnd

# severities 3.6, 1.5, 12, 0.5 (pass), and an error
CHECKS = [
    Check("band_power", "band=high tile=r7c9 ch=Y", 113.0, 171.0, -58.0, 16.0, "fail", (224, 192, 288, 256)),
    Check("hue", "offset", 0.4, 0.1, 0.3, 0.2, "fail"),
    Check("seam_profile", "region=border ch=Y d=+1", 60.0, 48.0, 12.0, 1.0, "fail", (47, 193, 201, 232)),
    Check("ring_energy", "band=mid", 5.0, 5.5, -0.5, 1.0, "pass"),
    Check("texture", "band=low", 1.0, 1.1, -0.1, 1.0, "fail"),
]
CHANGED = [{"stage": "mask", "param": "dilate_px", "baseline": 2, "run": 6}]
DIVERGED = {"stage": "mask", "note": "", "reference": "sha256:a", "candidate": "sha256:b", "mean_abs": 0.031,
            "max_abs": 0.82, "changed_fraction": 0.125, "box": [10, 4, 90, 60]}


def failing(**kw) -> CaseResult:
    return CaseResult("microprint_dilation/classic/s1", "microprint_dilation", "classic", 1, "fail",
                      timings={"inpaint": 0.25, "measure": 0.15}, checks=list(CHECKS), changed=list(CHANGED), **kw)


def passing() -> CaseResult:
    return CaseResult("caption_portrait/classic/s1", "caption_portrait", "classic", 1, "pass",
                      timings={"measure": 0.1}, checks=[CHECKS[3]])


def test_case_details_worst_three_with_severity_then_the_rest_then_what_changed():
    lines = case_details(failing(diverged=DIVERGED))
    assert lines == [
        "    fail seam_profile [region=border ch=Y d=+1] @ x 47-201, y 193-232: 60 vs baseline 48 "
        "(delta 12, tolerance 1) = 12× tolerance",
        "    fail band_power [band=high tile=r7c9 ch=Y] @ x 224-288, y 192-256: 113 vs baseline 171 "
        "(delta -58, tolerance 16) = 3.6× tolerance",
        "    fail hue [offset]: 0.4 vs baseline 0.1 (delta 0.3, tolerance 0.2) = 1.5× tolerance",
        "    ... 1 more failing checks (all in checks.parquet)",
        "    changed: mask.dilate_px 2 → 6",
        "    first diverging stage: mask (mean |Δ| 3.1 %, max 0.82, 12.5 % of pixels in [10, 4, 90, 60])",
    ]


def test_case_details_counts_failing_checks_beyond_the_kept_ones_and_says_a_missing_reference():
    case = failing(diverged={"stage": None, "note": "no reference images in the baseline"})
    case.n_failed = 40  # as read from a v2 report: 40 failed, 4 kept
    lines = case_details(case)
    assert "    ... 37 more failing checks (all in checks.parquet)" in lines
    assert lines[-1] == "    no reference images in the baseline"


def test_verbose_details_list_every_deciding_check_worst_first():
    lines = case_details(failing(), verbosity=1)
    assert [ln.split()[1] for ln in lines[:5]] == ["seam_profile", "band_power", "hue", "ring_energy", "texture"]
    assert lines[3].startswith("    pass ring_energy") and lines[5] == "    changed: mask.dilate_px 2 → 6"


def _feed(obs) -> None:
    obs.begin(2, 0)
    obs.started("caption_portrait/classic/s1")
    obs.recorded(passing(), 1, 2, True)
    obs.note("retry x: worker killed by SIGKILL")
    obs.recorded(failing(), 2, 2, True)


@pytest.mark.parametrize("verbosity,expected", [
    (-1, ["[2/2] fail  microprint_dilation/classic/s1 (0.4s)  4 failed checks"]),
    (0, ["[1/2] pass  caption_portrait/classic/s1 (0.1s)", "retry x: worker killed by SIGKILL",
         "[2/2] fail  microprint_dilation/classic/s1 (0.4s)  4 failed checks"] + case_details(failing())),
    (1, ["[1/2] pass  caption_portrait/classic/s1 (0.1s)"] + case_details(passing(), 1)
     + ["retry x: worker killed by SIGKILL", "[2/2] fail  microprint_dilation/classic/s1 (0.4s)  4 failed checks"]
     + case_details(failing(), 1)),
])
def test_text_progress_lines_at_each_verbosity(verbosity, expected):
    lines = []
    _feed(TextProgress(lines.append, verbosity))
    assert lines == expected


def _report(complete=True) -> Report:
    r = Report("rid", "smoke", "2026-01-01T00:00:00+00:00", {}, [passing(), failing(), failing()],
               complete=complete, planned=["caption_portrait/classic/s1", "microprint_dilation/classic/s1",
                                           "microprint_dilation/classic/s2", "x/y/s1"][:3 if complete else 4])
    r.cases[2].id = "microprint_dilation/classic/s2"
    return r


def test_summary_has_the_runs_config_changes_then_the_verdict():
    lines = []
    TextProgress(lines.append).finished(RunEnd(_report(), Path("/r/rid"), 3, 12.34, True))
    assert lines == ["what changed (pipeline config vs baselines):", "  mask.dilate_px 2 → 6: 2 cases (fail)",
                     "FAIL: 3 cases in 12.3s: 1 passed, 2 failed, 0 errors -> /r/rid/report.json"]
    assert changes_block(Report("r", "s", "t", {}, [passing()])) == []


def test_an_incomplete_run_never_summarises_as_a_verdict():
    r = _report(complete=False)
    r.notes.append("stopped after 2 failing cases (--maxfail 2): 3 of 4 cases recorded")
    lines = []
    TextProgress(lines.append, -1).finished(RunEnd(r, Path("/r/rid"), 3, 1.0, True))
    assert lines[-2] == ("INCOMPLETE (3 of 4 planned cases have results (1 missing)): 3 cases in 1.0s: "
                         "1 passed, 2 failed, 0 errors -> /r/rid/report.json")
    assert lines[-1] == "note: stopped after 2 failing cases (--maxfail 2): 3 of 4 cases recorded"


class Tty(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


@pytest.mark.parametrize("tty,env,expected", [
    (True, {}, True),
    (False, {}, False),
    (True, {"CI": "true"}, False),
    (True, {"CI": "1"}, False),
    (True, {"CI": "false"}, True),
    (True, {"TERM": "dumb"}, False),
    (True, {"CI": "true", "HARNESS_PROGRESS": "bar"}, True),
    (False, {"HARNESS_PROGRESS": "bar"}, True),
    (True, {"HARNESS_PROGRESS": "plain"}, False),
])
def test_use_bar_on_a_terminal_outside_ci_unless_forced(tty, env, expected):
    assert use_bar(Tty(tty), env) is expected


def test_make_progress_picks_the_bar_only_when_not_quiet():
    assert type(make_progress(0, Tty(True), {})) is BarProgress
    assert type(make_progress(-1, Tty(True), {})) is TextProgress  # -q: no bar
    assert type(make_progress(1, Tty(False), {"TERM": "xterm"})) is TextProgress
    assert type(make_progress(0, Tty(False), {}, bar=True)) is BarProgress


def test_plain_output_has_no_control_codes_and_the_bar_has_them():
    plain = Tty(False)
    obs = make_progress(0, plain, {})
    _feed(obs)
    assert "\x1b" not in plain.getvalue() and "[2/2] fail  microprint_dilation/classic/s1" in plain.getvalue()
    term = Tty(True)
    with make_progress(0, term, {}) as bar:
        _feed(bar)
    out = term.getvalue()
    assert "\x1b[" in out and "2/2" in out  # the bar's count
    assert "[2/2] fail  microprint_dilation/classic/s1 (0.4s)  4 failed checks" in out  # printed above it
    assert "    changed: mask.dilate_px 2 → 6" in out and "retry x: worker killed by SIGKILL" in out
    assert "caption_portrait/classic/s1 (0.1s)" not in out  # a passing case is counted in the bar, not listed
    term = Tty(True)
    with make_progress(1, term, {}) as bar:
        _feed(bar)
    assert "[1/2] pass  caption_portrait/classic/s1 (0.1s)" in term.getvalue()  # -v lists it


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_bar_running_cases_and_eta_from_the_pace_so_far():
    clock = Clock()
    bar = BarProgress(Tty(True), clock=clock)
    bar.t0, bar.total = clock(), 10
    assert bar.eta_text() == "ETA -:--:--" and bar.running_text() == ""
    for i, cid in enumerate(["a/p/s1", "a/p/s2", "b/p/s1"]):
        clock.t = 100.0 + i
        bar.started(cid)
    clock.t = 163.0
    assert bar.running_text() == "running: a/p/s1 63s, a/p/s2 62s +1"
    bar.ran, bar.done = 3, 4  # 3 cases in 63 s this time (one recorded before a resume): 6 left
    assert bar.eta_text() == "ETA 0:02:06"


def test_the_bar_is_taken_down_when_the_run_raises():
    term = Tty(True)
    with pytest.raises(KeyboardInterrupt):
        with make_progress(0, term, {}) as bar:
            bar.begin(3, 0)
            assert bar.progress is not None and bar.progress.live.is_started
            raise KeyboardInterrupt
    assert bar.progress is None
    assert "\x1b[?25h" in term.getvalue()  # the cursor is shown again
