"""The run-level fault matrix: a backend, a worker, the run's own process or its disk misbehaves,
and `harness run` still gives a verdict you can trust.

| fault                               | exit  | on disk afterwards                                         |
|-------------------------------------|-------|------------------------------------------------------------|
| a backend hangs (--timeout/timeout_s)| 1    | complete; that case `error: timed out after 1 s in stage …` |
| a backend segfaults / os._exit()s   | 1     | complete; that case `error` after one retry, others judged  |
| a backend crashes once              | as run| complete; the case judged, its retry noted                  |
| NaN / wrong shape / all-black output| 1     | complete; that case `error` naming stage and backend        |
| kill -9 of one worker               | 0/1   | complete; the case retried in a fresh worker                |
| kill -9 of the run                  | -9    | incomplete (report.json header + cases/); no process left; |
|                                     |       | `harness diff` fails; `--resume` = an uninterrupted run    |
| SIGINT (Ctrl-C, to the group)       | 130   | incomplete, consistent (report.json = cases/ = checks.parquet) |
| SIGTERM (to the run)                | 143   | the same                                                    |
| two runs into one --out at once     | 0     | two folders, each complete with its own cases               |
| --out read-only / under a file      | 2     | nothing (the message names the path)                        |
| --out on a full disk                | 2     | nothing                                                     |
| the disk fills mid-run              | 2     | incomplete report intact, cases/ = checks.parquet           |
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from faultkit import (
    Harness,
    assert_consistent,
    backend,
    case_files,
    parquet_cases,
    run_cli,
    run_folder,
    wait_for,
    write_suite,
)

from harness.cli import main
from harness.run.runner import run_suite
from harness.suite.suites import load_suite
from harness.report.schema import load_report


def run(tmp_path, denoise, seeds=(1, 2, 3), **kw):
    suite = load_suite(write_suite(tmp_path, denoise, seeds))
    return run_suite(suite, out_root=tmp_path / "reports", baselines_root=tmp_path / "no-baselines", **kw)


def by_seed(report):
    return {c.seed: c for c in report.cases}


# ------------------------------------------------------------------------------------------ one case misbehaves


def test_a_hung_case_times_out_in_its_stage_and_the_run_goes_on(tmp_path):
    t = time.monotonic()
    report, run_dir = run(tmp_path, backend("hang", seeds=(2,)), timeout=1)
    cases = by_seed(report)
    assert cases[2].status == "error"
    assert cases[2].error.startswith("timed out after 1 s in stage denoise (backend 'faults.fault_backends:hang')")
    assert cases[1].status == cases[3].status == "fail"  # measured and judged (no baseline here)
    assert report.complete and time.monotonic() - t < 30
    assert_consistent(run_dir)


def test_the_suite_timeout_applies_and_the_command_line_wins(tmp_path, capsys):
    suite = write_suite(tmp_path, backend("hang"), seeds=(1,), extra="timeout_s = 0.5")
    report, _ = run_suite(load_suite(suite), out_root=tmp_path / "r", baselines_root=tmp_path / "b")
    assert report.cases[0].error.startswith("timed out after 0.5 s in stage denoise")
    assert report.environment["timeout_s"] == 0.5
    suite = write_suite(tmp_path, backend("hang"), seeds=(1,), extra="timeout_s = 3600", name="long.toml")
    code = main(["run", "--suite", str(suite), "--timeout", "0.5", "--out", str(tmp_path / "cli"), "--no-cache",
                 "-q", "--baselines", str(tmp_path / "b")])
    assert code == 1
    run_dir = Path(capsys.readouterr().out.strip().splitlines()[-1])
    assert load_report(run_dir).cases[0].error.startswith("timed out after 0.5 s in stage denoise")


@pytest.mark.parametrize("fault,workers,reason", [
    ("segfault", 1, "killed by SIGSEGV"),
    ("segfault", 2, "killed by SIGSEGV"),
    ("exit_now", 1, "exited with code 3"),
])
def test_a_crashing_case_errors_alone_after_one_retry(tmp_path, fault, workers, reason):
    report, run_dir = run(tmp_path, backend(fault, seeds=(2,)), workers=workers)
    cases = by_seed(report)
    assert cases[2].status == "error"
    assert cases[2].error == (f"worker {reason} in stage denoise (backend 'faults.fault_backends:{fault}'); "
                              f"retried once in a fresh worker: worker {reason} again")
    assert cases[1].status == cases[3].status == "fail"  # the others were measured and judged
    assert report.complete
    assert_consistent(run_dir)


def test_a_case_that_crashes_once_is_judged_from_its_retry(tmp_path):
    report, _ = run(tmp_path, backend("crash_once", marker=str(tmp_path / "crashed"), seeds=(2,)), seeds=(1, 2))
    case = by_seed(report)[2]
    assert case.status == "fail" and case.error.startswith("no baseline")  # measured, like seed 1
    assert case.config["retried"] == ("worker killed by SIGSEGV in stage denoise (backend "
                                      "'faults.fault_backends:crash_once'); passed in a fresh worker")
    assert any(n.startswith("retried after a worker crash: microprint_dilation/p/s2") for n in report.notes)


BAD_OUTPUTS = '''
name = "bad"
seeds = [1]
vectors = ["microprint_dilation"]
''' + "".join(f'''
[pipelines.{name}]
detect = {{ backend = "ground_truth" }}
mask = {{ backend = "shape" }}
inpaint = {{ backend = "telea" }}
denoise = {{ backend = "faults.fault_backends:{name}" }}
''' for name in ("nan_output", "wrong_shape", "all_black", "identity"))


def test_bad_outputs_are_errors_of_their_case(tmp_path):
    (tmp_path / "bad.toml").write_text(BAD_OUTPUTS)
    report, run_dir = run_suite(load_suite(tmp_path / "bad.toml"), out_root=tmp_path / "r",
                                baselines_root=tmp_path / "b", workers=2)
    got = {c.pipeline: (c.status, c.error) for c in report.cases}
    label = "denoise backend 'faults.fault_backends:{}'"
    assert got["nan_output"] == ("error", f"StageError: {label.format('nan_output')}: output image contains NaN or inf")
    assert got["wrong_shape"][0] == "error" and f"{label.format('wrong_shape')}: output is" in got["wrong_shape"][1]
    assert got["all_black"] == ("error", f"StageError: {label.format('all_black')}: output image is all black")
    assert got["identity"][0] == "fail"  # no baseline: measured and judged
    assert report.complete
    assert_consistent(run_dir)


# ------------------------------------------------------------------------------------------ processes are killed


def _start_hanging(baked, out: Path, workers: int = 2) -> tuple[Harness, Path]:
    """A run of the baked suite whose seed 3 hangs: returned once seeds 1 and 2 are recorded."""
    _, suite, baselines, flag = baked
    flag.write_text("hang")
    hanging = Path(f"{flag}.hanging")
    hanging.unlink(missing_ok=True)
    h = Harness(["--suite", str(suite), "--out", str(out), "--no-cache", "--baselines", str(baselines),
                 "--workers", str(workers)], out.parent)
    run_dir = run_folder(out, run=h)
    wait_for(lambda: len(case_files(run_dir)) == 2 and hanging.exists(), 60, "seeds 1, 2 recorded, seed 3 hanging",
             run=h)
    return h, run_dir


@pytest.fixture()
def unflag(baked):
    yield
    baked[3].unlink(missing_ok=True)


def test_kill_9_of_one_worker_retries_its_case_and_the_run_completes(baked, tmp_path, unflag):
    h, run_dir = _start_hanging(baked, tmp_path / "r", workers=1)
    workers = h.workers()
    assert len(workers) == 1
    os.kill(workers[0], signal.SIGKILL)
    baked[3].unlink()  # the retry does not hang
    code, _, err = h.wait()
    assert code in (0, 1), err  # 0 with baselines that match this code's outputs; never an error or a crash
    doc = assert_consistent(run_dir)
    assert doc["complete"] and all(c["status"] != "error" and c["checks"] for c in doc["cases"])  # all judged
    assert any("worker killed by SIGKILL in stage denoise" in n for n in doc["notes"])


def test_kill_9_of_the_run_leaves_no_process_and_resume_equals_an_uninterrupted_run(baked, tmp_path, unflag, capsys):
    _, suite, baselines, flag = baked
    code, out, err = run_cli(["--suite", str(suite), "--out", str(tmp_path / "a"), "--no-cache", "-q",
                              "--baselines", str(baselines)], tmp_path)
    assert code == 0, err
    run_a = Path(out.strip().splitlines()[-1])

    h, run_b = _start_hanging(baked, tmp_path / "b")
    assert h.workers()
    os.kill(h.proc.pid, signal.SIGKILL)
    h.wait()
    wait_for(lambda: not h.marked(), 5, "every process of the killed run (fork server, workers) to exit")

    partial = load_report(run_b)  # report.json is the header written at the start: cases/ tells the rest
    assert not partial.complete and partial.status == "error" and partial.exit_code == 1
    assert [c.id for c in partial.cases] == ["microprint_dilation/p/s1", "microprint_dilation/p/s2"]
    assert partial.missing == ["microprint_dilation/p/s3"]
    assert main(["diff", str(run_a), str(run_b)]) == 1
    assert f"REPORT_B {run_b} (run {run_b.name}) is INCOMPLETE: 2 of 3 planned cases" in capsys.readouterr().err
    res = subprocess.run([sys.executable, "-m", "pytest", "-q", "--harness-report", str(run_b)], cwd=tmp_path,
                         capture_output=True, text=True, timeout=60, check=False)
    assert res.returncode == 1 and "report is incomplete" in res.stdout, res.stdout[-2000:]

    flag.unlink()
    code, out, err = run_cli(["--resume", str(run_b), "--no-cache", "-q"], tmp_path)
    assert code == 0, err
    assert out.strip().splitlines()[-1] == str(run_b)
    a, b = load_report(run_a), load_report(run_b)
    assert b.complete and [c.id for c in b.cases] == [c.id for c in a.cases]
    for x, y in zip(a.cases, b.cases, strict=True):
        assert (x.status, x.error, [c.to_dict() for c in x.checks]) == (y.status, y.error,
                                                                        [c.to_dict() for c in y.checks]), x.id
    assert any(n.startswith("resumed at ") for n in b.notes)
    assert_consistent(run_b)
    code, _, err = run_cli(["--resume", str(run_b)], tmp_path)
    assert code == 2 and "the run is complete; nothing to resume" in err


@pytest.mark.parametrize("sig,to_group,code", [(signal.SIGINT, True, 130), (signal.SIGTERM, False, 143)])
def test_an_interrupt_ends_promptly_with_a_consistent_partial_report(baked, tmp_path, unflag, sig, to_group, code):
    h, run_dir = _start_hanging(baked, tmp_path / "r")
    t = time.monotonic()
    (os.killpg if to_group else os.kill)(h.proc.pid, sig)  # a Ctrl-C reaches the whole process group
    rc, _, err = h.wait(timeout=20)
    took = time.monotonic() - t
    assert rc == code, err
    assert took < 3.0, f"took {took:.1f}s to stop"
    doc = assert_consistent(run_dir)
    assert doc["complete"] is False and len(doc["cases"]) == 2 and doc["planned"][-1] == "microprint_dilation/p/s3"
    assert any(n.startswith(f"interrupted by {sig.name}: 2 of 3 cases recorded") for n in doc["notes"])
    assert f"harness run --resume {run_dir}" in err
    assert "INCOMPLETE RUN" in (run_dir / "summary.md").read_text()
    wait_for(lambda: not h.marked(), 5, "every process of the interrupted run to exit")


# ------------------------------------------------------------------------------------------ storage


def test_two_runs_into_one_out_never_share_a_folder(tmp_path):
    suite = write_suite(tmp_path, '{ backend = "tv" }', seeds=(1, 2))
    runs = [Harness(["--suite", str(suite), "--out", str(tmp_path / "r"), "--no-cache", "-q"], tmp_path)
            for _ in range(2)]
    dirs = []
    for h in runs:
        code, out, err = h.wait()
        assert code == 1, err  # no baselines
        dirs.append(Path(out.strip().splitlines()[-1]))
    assert dirs[0] != dirs[1] and sorted(dirs) == sorted(p for p in (tmp_path / "r").iterdir())
    for d in dirs:
        doc = assert_consistent(d)
        assert doc["complete"] and [c["id"] for c in doc["cases"]] == ["microprint_dilation/p/s1",
                                                                      "microprint_dilation/p/s2"]


def _create(root: str) -> str:
    from harness.run.rundir import RunFolder

    folder = RunFolder.create(Path(root), "same-second")
    folder.close()
    return folder.path.name


def test_run_folders_are_created_atomically(tmp_path):
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(4) as ex:
        names = list(ex.map(_create, [str(tmp_path)] * 12))
    assert len(set(names)) == 12 and "same-second" in names and "same-second-12" in names


def test_out_under_a_regular_file_is_exit_2_naming_it(tmp_path, capsys):
    suite = write_suite(tmp_path)
    (tmp_path / "file").write_text("not a folder")
    assert main(["run", "--suite", str(suite), "--out", str(tmp_path / "file" / "reports"), "--no-cache"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"harness: error: {tmp_path / 'file' / 'reports'}: cannot create the reports folder")
    assert err.count("\n") == 1


@pytest.fixture()
def tmpfs(tmp_path):
    """``mount(name, size, ro=False)``: a small tmpfs under tmp_path (skips where mounting is not allowed)."""
    mounted = []

    def mount(name: str, size: str = "1m", ro: bool = False) -> Path:
        d = tmp_path / name
        d.mkdir()
        opts = f"size={size}" + (",ro" if ro else "")
        res = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(d)], capture_output=True, text=True,
                             check=False)
        if res.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here ({res.stderr.strip() or res.returncode}): needs root in a "
                        "container that allows mounts")
        mounted.append(d)
        return d

    yield mount
    for d in reversed(mounted):
        subprocess.run(["umount", "-l", str(d)], capture_output=True, check=False)


def test_a_read_only_out_is_exit_2_naming_it_before_any_case_runs(tmp_path, tmpfs, capsys):
    ro = tmpfs("ro", ro=True)  # root ignores chmod; a read-only mount it cannot ignore
    suite = write_suite(tmp_path, backend("exit_now"))
    assert main(["run", "--suite", str(suite), "--out", str(ro), "--no-cache"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"harness: error: {ro}/") and "Read-only file system" in err and err.count("\n") == 1
    assert list(ro.iterdir()) == []


def test_a_full_out_is_exit_2_naming_it_before_any_case_runs(tmp_path, tmpfs, capsys):
    full = tmpfs("full", size="256k")
    from faults.fault_backends import fill

    fill(full / "filler")
    suite = write_suite(tmp_path, backend("exit_now"))  # would exit 1 with an error case, were it run
    assert main(["run", "--suite", str(suite), "--out", str(full), "--no-cache"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"harness: error: {full}/") and "No space left on device" in err
    assert [p.name for p in full.iterdir()] == ["filler"]  # the run folder that could not start is gone


def test_a_disk_that_fills_mid_run_stops_it_with_the_partial_report_intact(baked, tmp_path, tmpfs, capsys):
    _, _, baselines, _ = baked
    disk = tmpfs("disk", size="24m")
    suite = write_suite(tmp_path, backend("fill_disk", path=str(disk / "filler"), seeds=(2,),
                                          after=str(disk / "r" / "*" / "cases" / "microprint_dilation__p__s1.json")))
    code = main(["run", "--suite", str(suite), "--out", str(disk / "r"), "--no-cache", "-q",
                 "--baselines", str(baselines)])
    err = capsys.readouterr().err
    assert code == 2
    run_dir = next((disk / "r").iterdir())
    assert f"{run_dir}/" in err and "No space left on device" in err and "partial report (incomplete)" in err
    assert json.loads((run_dir / "report.json").read_text())["complete"] is False
    report = load_report(run_dir)
    assert not report.complete and report.status == "error"
    assert [c.id for c in report.cases] == ["microprint_dilation/p/s1"] and report.cases[0].checks
    assert case_files(run_dir) == parquet_cases(run_dir) == {"microprint_dilation__p__s1"}
