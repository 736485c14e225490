"""The pipelined executor: stages and measuring in different workers, overlapped.

The scheduling tests use sleeping stand-ins for both phases (:class:`SleepPhase`,
``run.gpu_standins``), so what they time is the scheduling, not this machine's load; the
equality test runs real smoke cases through both executors and judges them against the committed
baselines.
"""

from __future__ import annotations

import pickle
import time
from pathlib import Path

import numpy as np
import pytest

from harness.comparing.engine import CompareConfig
from harness.run.cache import StageCache
from harness.run.case import StagedCase, execute_case, finish_case, run_stages
from harness.run.executors import EXECUTORS, make_executor
from harness.run.job import CaseJob
from harness.run.judge import judge_case
from harness.run.pipelined import PipelinedExecutor, SleepPhase, bench_overlap, overlap_line, stage_workers_for
from harness.run.workers import IsolatingExecutor
from harness.suite.baselines import BaselineStore
from harness.suite.suites import Case, Pipeline, load_suite

from run.gpu_standins import CrashOn, Stamped

REPO = Path(__file__).resolve().parents[2]


def sleep_cases(n: int) -> list[Case]:
    return [Case("sleep", Pipeline("standin", ()), i) for i in range(n)]


def warm() -> None:
    """Start the fork server (it imports numpy, scipy, skimage once) before anything is timed."""
    list(PipelinedExecutor(1).run_phases(sleep_cases(1), SleepPhase(0.0), SleepPhase(0.0, measure=True)))


def test_wall_is_the_max_of_generation_and_measuring_not_their_sum():
    n, gen, meas, workers = 8, 0.3, 0.6, 2
    warm()
    cases = sleep_cases(n)
    t0 = time.perf_counter()
    plain = list(IsolatingExecutor(1).run(cases, SleepPhase(gen + meas, measure=True)))  # one worker holds the GPU
    plain_wall = time.perf_counter() - t0
    t0 = time.perf_counter()
    first = None
    outs = []
    for out in PipelinedExecutor(workers).run_phases(cases, SleepPhase(gen), SleepPhase(meas, measure=True), 1):
        first = first if first is not None else time.perf_counter() - t0
        outs.append(out)
    wall = time.perf_counter() - t0
    assert sorted(o.case_id for o in outs) == sorted(o.case_id for o in plain) == sorted(c.id for c in cases)
    assert [o.error for o in outs] == [None] * n
    assert plain_wall >= n * (gen + meas)  # 7.2 s: generation, then measuring, case after case
    # the pipeline's own lower bound: the last generation then its measuring, or the first then all measuring
    bound = max(n * gen + meas, gen + n * meas / workers)  # 3.0 s
    assert bound <= wall <= bound + 2.0, (wall, plain_wall)
    assert wall < 0.65 * plain_wall, (wall, plain_wall)
    assert first < n * gen, first  # outputs stream back while the stages still run


def test_bench_overlap_reports_wall_against_the_sum_and_the_max():
    warm()
    r = bench_overlap(6, 0.2, 0.4, workers=2)
    assert (r["n"], r["workers"]) == (6, 2)
    assert r["generation"] == pytest.approx(1.2) and r["measuring"] == pytest.approx(1.2)
    assert r["serial_sum"] == pytest.approx(2.4) and r["ideal"] == pytest.approx(1.2)
    assert r["ratio"] == pytest.approx(r["wall"] / 2.4) and r["vs_ideal"] == pytest.approx(r["wall"] / 1.2)
    assert r["bound"] == pytest.approx(1.6) and r["wall"] >= r["bound"]  # 6 x 0.2 s, then the last 0.4 s
    assert 0.5 <= r["ratio"] < 0.9, r  # overlapped: near max/sum = 0.5, well under the sum
    assert overlap_line(r).startswith("overlap: 6 cases, generation 1.20 s, measuring 1.20 s (2 workers): wall ")
    with pytest.raises(ValueError, match="seconds > 0; got n=3, workers=2, gen_s=0"):
        bench_overlap(3, 0, 0.1)


def test_back_pressure_keeps_the_stages_from_running_ahead_of_the_measuring(tmp_path):
    """Fast stages (0.05 s), slow measuring (0.6 s, one worker), buffer 1: the stage of case k starts
    when case k-2's measuring ends, not all at once."""
    n, meas = 6, 0.6
    outs = list(PipelinedExecutor(1, buffer=1).run_phases(sleep_cases(n), Stamped(str(tmp_path), 0.05),
                                                           SleepPhase(meas, measure=True), 1))
    assert sorted(o.case_id for o in outs) == sorted(c.id for c in sleep_cases(n))
    started = sorted(float((tmp_path / str(i)).read_text()) for i in range(n))
    assert started[-1] - started[0] >= (n - 3) * meas, np.diff(started)  # without back-pressure: ~0.3 s


def test_a_crash_or_hang_while_measuring_is_that_cases_error_and_the_others_go_on():
    ex = PipelinedExecutor(2, timeout=3)
    outs = {o.case_id: o for o in ex.run_phases(sleep_cases(5), SleepPhase(0.0), CrashOn(0.1, seeds=(2,), hang=(3,)))}
    ids = [c.id for c in sleep_cases(5)]
    assert [outs[i].error is None for i in ids] == [True, True, False, False, True]
    assert outs[ids[2]].error == ("worker killed by SIGKILL in this case; retried once in a fresh worker: "
                                  "worker killed by SIGKILL again")
    assert outs[ids[3]].error == f"timed out after 3 s in case {ids[3]}; its worker was killed"


def test_a_stage_crash_is_retried_and_a_stage_error_is_never_measured(tmp_path):
    import sys

    sys.path.insert(0, str(REPO / "tests" / "faults"))
    from faultkit import backend, write_suite

    marker = tmp_path / "crashed"
    suite = load_suite(write_suite(tmp_path, backend("crash_once", marker=str(marker), seeds=(2,)), seeds=(1, 2)))
    job = CaseJob(suite, tmp_path / "run", None)
    outs = {o.case_id: o for o in PipelinedExecutor(1).run(suite.cases(), job)}
    retried = outs[suite.cases()[1].id]
    assert retried.error is None and retried.measurement
    assert retried.config["retried"].startswith("worker killed by SIGSEGV in stage denoise")
    bad = load_suite(write_suite(tmp_path, '{ backend = "custom_backends:exploding_denoise" }', seeds=(1,),
                                 name="bad.toml"))
    [out] = PipelinedExecutor(1).run(bad.cases(), CaseJob(bad, tmp_path / "run2", None))
    assert out.error.startswith("RuntimeError: model crashed [") and out.measurement is None
    assert "denoise" not in out.timings and "measure" not in out.timings


CPU_CASES = ("microprint_dilation/classic/s1", "microprint_dilation/classic/s2", "watermark_grass/classic/s1")
# a diffusion model in the stages (the GPU's work on a GPU machine; the tiny checkpoint on this CPU: ~60 s here)
MODEL_CASES = ("microprint_dilation/classic/s1", "generated_texture/diffusion/s1")


def smoke_cases(keep=CPU_CASES):
    suite = load_suite("smoke")
    return suite, [c for c in suite.cases() if c.id in keep]


@pytest.mark.parametrize("keep", [CPU_CASES, pytest.param(MODEL_CASES, marks=pytest.mark.slow)], ids=["cpu", "model"])
def test_same_checks_as_the_process_pool_on_real_smoke_cases(tmp_path, keep):
    suite, cases = smoke_cases(keep)
    assert len(cases) == len(keep)
    plain = {o.case_id: o for o in IsolatingExecutor(2).run(cases, CaseJob(suite, tmp_path / "a", None, seeds=()))}
    piped = {o.case_id: o for o in PipelinedExecutor(2).run(cases, CaseJob(suite, tmp_path / "b", None, seeds=()))}
    store, config = BaselineStore("smoke", REPO / "baselines"), CompareConfig()
    for c in cases:
        a, b = plain[c.id], piped[c.id]
        assert a.error is None and b.error is None, (a.error, b.error)
        assert b.measurement == a.measurement and b.expectations == a.expectations
        assert b.artifacts == a.artifacts and b.config == a.config and b.stages == a.stages
        ja = judge_case(a, store, config, suite, {}, set())
        jb = judge_case(b, store, config, suite, {}, set())
        assert jb == ja and len(ja[2]) > 100  # every check: metric, slice, value, baseline, status
        for name in a.artifacts:
            assert (tmp_path / "b" / b.artifacts[name]).read_bytes() == (tmp_path / "a" / a.artifacts[name]).read_bytes()


def test_the_phases_make_what_execute_case_makes_and_a_staged_case_pickles_lean(tmp_path):
    suite, cases = smoke_cases()
    case = cases[0]
    whole = execute_case(case, suite, tmp_path / "one", StageCache(None))
    staged = run_stages(case, suite, tmp_path / "two", StageCache(None))
    assert isinstance(staged, StagedCase) and staged.error is None and staged.id == case.id
    assert "measure" not in staged.timings and staged.image.dtype == np.uint8
    shipped = pickle.loads(pickle.dumps(staged))
    assert shipped.ex.cache is None and shipped.ex.captured == {}
    assert len(pickle.dumps(staged)) < 8 * staged.image.nbytes + 200_000  # the final image and the rendering, not every stage's
    out = finish_case(shipped, StageCache(None))
    assert out.measurement == whole.measurement and out.expectations == whole.expectations
    assert out.timings.keys() == whole.timings.keys() and out.artifacts == whole.artifacts


def test_a_measuring_workers_death_keeps_what_the_stages_recorded(tmp_path):
    from harness.run.case import CaseOutput
    from harness.run.pipelined import _measure_lost

    suite, cases = smoke_cases()
    staged = pickle.loads(pickle.dumps(run_stages(cases[0], suite, tmp_path, StageCache(None), defer_saves=True)))
    lost = CaseOutput(cases[0].id, None, {}, {}, {}, {"seed": 1}, "timed out after 5 s in measuring; its worker was killed")
    out = _measure_lost(staged, lost)
    assert out.error == "timed out after 5 s in measuring; its worker was killed"
    params = {st: {k: v for k, v in p.items() if k not in ("code", "weights")} for st, p in out.config["pipeline"].items()}
    assert out.measurement is None and "denoise" in out.timings and params == cases[0].pipeline.as_dict()
    assert all(len(p["code"]) == 12 for p in out.config["pipeline"].values())  # each stage's code digest
    assert "denoise" in out.artifacts and (tmp_path / out.artifacts["denoise"]).is_file()
    assert _measure_lost(staged, out) is out  # an output with timings is the measuring's own


def test_deferred_saves_leave_the_png_encoding_to_the_measuring_side(tmp_path):
    suite, cases = smoke_cases()
    whole = execute_case(cases[0], suite, tmp_path / "one", StageCache(None))
    staged = run_stages(cases[0], suite, tmp_path / "two", StageCache(None), defer_saves=True)
    assert not (tmp_path / "two").exists() and staged.artifacts == {}  # the stage worker wrote nothing
    out = finish_case(pickle.loads(pickle.dumps(staged)))
    assert list(out.artifacts) == list(whole.artifacts) and "output" in out.artifacts
    for name, rel in whole.artifacts.items():
        assert (tmp_path / "two" / out.artifacts[name]).read_bytes() == (tmp_path / "one" / rel).read_bytes(), name


def test_selected_by_name_with_one_stage_worker_per_device(tmp_path):
    assert "pipelined" in EXECUTORS
    ex = make_executor("pipelined", 3, 10.0)
    assert isinstance(ex, PipelinedExecutor) and (ex.workers, ex.timeout, ex.buffer) == (3, 10.0, 3)
    gpu = load_suite(_standin_suite(tmp_path))
    assert stage_workers_for(gpu.cases()) == 1
    assert stage_workers_for(smoke_cases()[1][:2]) == 1  # CPU only: still one


def _standin_suite(folder: Path, seconds: float = 0.05, seeds=(1, 2)) -> Path:
    import sys

    sys.path.insert(0, str(REPO / "tests" / "faults"))
    from faultkit import write_suite

    return write_suite(folder, f'{{ backend = "run.gpu_standins:SleepyGPU", seconds = {seconds} }}', seeds,
                       name="standin.toml")


def test_a_gpu_standin_suite_runs_through_the_runner(tmp_path):
    from harness.project import load_project
    from harness.run.runner import run_suite

    suite = load_suite(_standin_suite(tmp_path, 0.3, seeds=(1, 2, 3)))
    report, run_dir = run_suite(suite, project=load_project(tmp_path), out_root=tmp_path / "reports",
                                executor="pipelined", workers=2, judge=False)
    assert report.environment["executor"] == "pipelined" and report.environment["device"] == "cpu+standin-gpu"
    assert [c.status for c in report.cases] == ["skip"] * 3
    assert all(c.timings["denoise"] >= 0.3 and "measure" in c.timings for c in report.cases)


def test_closing_the_stream_mid_run_stops_both_pools_at_once():
    """What the runner does on Ctrl-C: close the generator; hung workers are killed, not awaited."""
    import os

    gen = PipelinedExecutor(2).run_phases(sleep_cases(4), SleepPhase(0.01), CrashOn(0.0, hang=(1, 2, 3)))
    first = next(gen)
    assert first.case_id == sleep_cases(1)[0].id and first.error is None
    frame = gen.gi_frame
    pools = [frame.f_locals[name] for name in ("stage", "measure")]
    pids = [s.proc.pid for p in pools for s in p.slots]
    t0 = time.monotonic()
    gen.close()
    assert time.monotonic() - t0 < 5
    assert all(p.slots == [] for p in pools) and pids
    for pid in pids:
        assert not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split()[2] == "Z"
