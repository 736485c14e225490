"""The pool's start-up and dispatch: the fork server starts early, one chunk of seeds goes to one worker."""

from __future__ import annotations

import multiprocessing.forkserver as mpfs
import subprocess
import sys
import textwrap
from types import SimpleNamespace

import pytest

from harness.run import workerstart
from harness.run.workers import _Batch


def case(vector: str, pipeline: str, seed: int):
    return SimpleNamespace(id=f"{vector}/{pipeline}/s{seed}", vector=vector, pipeline=SimpleNamespace(name=pipeline))


def test_an_idle_worker_takes_a_pipeline_then_a_group_no_other_worker_runs():
    cases = ([case("v", "sd", s) for s in (1, 2, 3)] + [case("w", "sd", s) for s in (1, 2)]
             + [case("w", "classic", s) for s in (1, 2)])
    batch = _Batch(cases, None)
    assert batch.take(set())[0].id == "v/sd/s1"
    # worker 1 runs v/sd: worker 2 starts the pipeline nobody runs
    assert batch.take({("v", "sd")})[0].id == "w/classic/s1"
    # both pipelines busy: a (vector, pipeline) nobody runs, so v/sd's chunk is not rendered twice
    assert batch.take({("v", "sd"), ("w", "classic")})[0].id == "w/sd/s1"
    # every queued group busy: never idle
    assert batch.take({("v", "sd"), ("w", "classic"), ("w", "sd")})[0].id == "v/sd/s2"
    assert [c.id for c, _ in batch.queue] == ["v/sd/s3", "w/sd/s2", "w/classic/s2"]


def test_a_retried_case_keeps_its_crash_count():
    batch = _Batch([case("v", "p", 1)], None)
    batch.queue[0] = (batch.queue[0][0], 1)
    assert batch.take({("x", "y")})[1] == 1 and not batch.queue


@pytest.mark.skipif(workerstart.START_METHOD != "forkserver" or not sys.platform.startswith("linux"),
                    reason="the fork server start method, on Linux (/proc)")
def test_prewarm_starts_one_fork_server_with_the_runs_thread_counts(tmp_path):
    """In a fresh process (this one's fork server may run already): the server exists after
    prewarm and start_prewarmed (not after prewarm alone), a second prewarm keeps it, and it was started with the run's thread count in its
    environment (OpenBLAS and OpenMP read it once, at load, for every worker forked from it)."""
    code = textwrap.dedent("""
        import multiprocessing.forkserver as mpfs, os, time
        os.environ.pop("OPENBLAS_NUM_THREADS", None)
        from harness.run.workerstart import prewarm, start_prewarmed
        prewarm(3)
        assert mpfs._forkserver._forkserver_pid is None  # not until a case must execute
        assert start_prewarmed() is True
        pid = mpfs._forkserver._forkserver_pid
        prewarm(3)
        start_prewarmed()
        assert mpfs._forkserver._forkserver_pid == pid
        for _ in range(100):  # until the server has exec'd (before, /proc shows the forked child's)
            env = open(f"/proc/{pid}/environ", "rb").read().split(bytes(1))
            if b"OMP_NUM_THREADS=3" in env:
                break
            time.sleep(0.1)
        print(pid > 0, b"OPENBLAS_NUM_THREADS=3" in env, b"OMP_NUM_THREADS=3" in env)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.split() == ["True", "True", "True"], out.stderr[-2000:]
    assert "harness.run.measure_cache" in workerstart.PRELOAD


def test_prewarm_is_a_no_op_for_spawn(monkeypatch):
    monkeypatch.setattr(workerstart, "START_METHOD", "spawn")
    started = []
    monkeypatch.setattr(mpfs, "ensure_running", lambda: started.append(1))
    workerstart.prewarm(1)
    assert workerstart.start_prewarmed() is False and started == []


@pytest.mark.skipif(workerstart.START_METHOD != "forkserver", reason="the fork server start method")
def test_a_run_recorded_from_the_case_memo_never_starts_the_fork_server(monkeypatch):
    """prewarm only asks; the first case the memo does not hold starts the server (once)."""
    from types import SimpleNamespace

    from harness.run.case_memo import replay

    started = []
    monkeypatch.setattr(mpfs, "ensure_running", lambda: started.append(1))
    monkeypatch.setattr(workerstart, "_WANTED", [])
    workerstart.prewarm(1)
    memo = SimpleNamespace(lookup=lambda case: None, hits=0, save_digests=lambda: None)
    assert replay(memo, None, []) == [] and started == []  # nothing to run: never started
    assert replay(memo, None, ["a", "b"]) == ["a", "b"] and started == [1]
    assert workerstart.start_prewarmed() is False and started == [1]


def test_the_fork_server_warms_the_measuring_kernels_without_starting_a_thread():
    import os
    import sys

    from harness.run.warmup import warm_measuring

    before = len(os.listdir("/proc/self/task")) if sys.platform.startswith("linux") else 0
    assert warm_measuring() is True
    assert "harness.measuring._kernels" in sys.modules or "numba" not in sys.modules
    if sys.platform.startswith("linux"):
        assert len(os.listdir("/proc/self/task")) == before
    assert workerstart.PRELOAD[-1] == "harness.run.warmup"


def test_a_worker_never_needs_scipy_stats_so_the_server_does_not_preload_it(tmp_path):
    """The preload and a whole case (stages, measuring, absolute checks) without scipy.stats: leaving
    it out of the fork server's preload (about half its start-up) costs a worker nothing."""
    code = textwrap.dedent(f"""
        import importlib, sys
        from harness.run import workerstart
        for name in workerstart.PRELOAD:
            importlib.import_module(name)
        from harness.run.cache import StageCache
        from harness.run.case import execute_case
        from harness.suite.suites import load_suite
        suite = load_suite("smoke")
        [case] = [c for c in suite.cases() if c.id == "caption_portrait/classic/s1"]
        out = execute_case(case, suite, __import__("pathlib").Path({str(tmp_path)!r}), StageCache(None))
        print(out.error, out.measurement is not None, "scipy.stats" in sys.modules)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.stdout.split() == ["None", "True", "False"], out.stderr[-2000:]
    assert "scipy.stats" not in workerstart.PRELOAD


def test_harness_run_starts_the_server_at_once_only_when_the_memo_holds_no_case(tmp_path):
    from harness.cli.run import _memo_is_empty

    assert _memo_is_empty(None) is True  # --no-cache: no memo at all
    assert _memo_is_empty(tmp_path / "absent") is True  # a cold cache
    (tmp_path / "memo").mkdir()
    (tmp_path / "memo" / "digests.json").write_text("{}")
    assert _memo_is_empty(tmp_path) is True  # digests only: no case recorded
    (tmp_path / "memo" / "ab12.memo").write_bytes(b"x")
    assert _memo_is_empty(tmp_path) is False


@pytest.mark.skipif(workerstart.START_METHOD != "forkserver", reason="the fork server start method")
def test_prewarm_with_start_starts_the_fork_server_at_once(monkeypatch):
    """A cold run (the memo holds no case): the server starts while the run plans, and the first
    memo miss does not start it again."""
    from types import SimpleNamespace

    from harness.run.case_memo import replay

    started = []
    monkeypatch.setattr(mpfs, "ensure_running", lambda: started.append(1))
    monkeypatch.setattr(workerstart, "_WANTED", [])
    workerstart.prewarm(1, start=True)
    assert started == [1]
    memo = SimpleNamespace(lookup=lambda case: None, hits=0, save_digests=lambda: None)
    assert replay(memo, None, ["a"]) == ["a"] and started == [1]


def test_only_a_fork_server_exits_quickly(monkeypatch):
    """The server (its environment marked while it starts, :func:`without_main`) skips its module
    teardown at exit; any other process importing warmup registers nothing."""
    import atexit
    import os

    from harness.run import warmup

    registered = []
    monkeypatch.setattr(atexit, "register", lambda fn: registered.append(fn))
    monkeypatch.delenv(workerstart.SERVER_MARK, raising=False)
    assert warmup.exit_quickly() is False and registered == []
    with workerstart.without_main():
        assert os.environ[workerstart.SERVER_MARK] == "1"  # what a server started now inherits
    assert workerstart.SERVER_MARK not in os.environ
    monkeypatch.setenv(workerstart.SERVER_MARK, "1")
    assert warmup.exit_quickly() is True and registered == [warmup._exit_now]
    assert workerstart.SERVER_MARK not in os.environ  # taken out: the server's workers never see it


def test_model_pipelines_go_first_and_to_the_worker_holding_their_models():
    """smoke on two workers: diffusion and faces (three models each: one shared) then OCR (one)
    then the classical pipeline; the second worker starts OCR rather than faces (whose denoiser the
    first worker loads), and the first goes on with faces after diffusion."""
    from harness.run.case_order import heavy_first, model_set
    from harness.suite.suites import load_suite

    cases = list(load_suite("smoke").cases())
    models: dict = {}
    order = [c.pipeline.name for c in heavy_first(cases, models)]
    assert order == ["diffusion"] * 3 + ["faces"] * 3 + ["ocr_patchmatch"] * 12 + ["classic"] * 12
    assert models == {"diffusion": {"generate:sd", "inpaint:sd_inpaint", "denoise:oidn"},
                      "faces": {"generate:face_gan", "denoise:oidn", "upscale:realcugan"},
                      "ocr_patchmatch": {"detect:rapidocr"}, "classic": set()}
    batch = _Batch(cases, None)
    first = batch.take(set())[0]
    assert first.id == "generated_texture/diffusion/s1"
    a = set(models["diffusion"])
    second = batch.take({("generated_texture", "diffusion")}, set(), a)[0]
    assert second.id == "receipt_microprint/ocr_patchmatch/s1"
    b = set(models["ocr_patchmatch"])
    assert batch.take({("receipt_microprint", "ocr_patchmatch")}, a, b)[0].id == "generated_texture/diffusion/s2"
    assert batch.take({("receipt_microprint", "ocr_patchmatch")}, a, b)[0].id == "generated_texture/diffusion/s3"
    assert batch.take({("receipt_microprint", "ocr_patchmatch")}, a, b)[0].id == "gan_faces_caption/faces/s1"
    assert batch.take({("gan_faces_caption", "faces")}, b, a)[0].id == "receipt_microprint/ocr_patchmatch/s2"
    # a pipeline whose backends cannot be told has no models: plan order
    assert model_set(SimpleNamespace(stages=[SimpleNamespace(stage="detect", backend="nope", params={})])) == set()


def test_pick_prefers_a_free_pipeline_then_a_free_group_then_models_held_here():
    from harness.run.case_order import pick

    none = frozenset()
    gpu = frozenset({"generate:sd"})
    queued = [(("v", "sd"), gpu), (("w", "sd"), gpu), (("v", "classic"), none)]
    assert pick(queued, set()) == 0  # nothing loaded anywhere: queue order
    assert pick(queued, {("v", "sd")}) == 2  # another worker runs sd: a pipeline nobody runs
    assert pick(queued, {("v", "sd"), ("v", "classic")}) == 1  # all pipelines busy: a group nobody runs
    assert pick(queued, set(), mine=set(), others={"generate:sd"}) == 2  # sd's model is loaded elsewhere
    assert pick(queued, set(), mine={"generate:sd"}) == 0
    assert pick([], set()) == 0
