"""Batched seeds in the runner (harness.run.batching) and the suite's rerun_check
(harness.run.rerun), with the custom backends of tests/custom_backends.py (no torch)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from harness.errors import StageError
from harness.run import batching
from harness.run.cache import StageCache
from harness.run.case import execute_case
from harness.run.runner import run_suite
from harness.stages.base import (
    StageContext,
    batch_call,
    build_backend,
    run_stage_batch,
)
from harness.suite.suites import load_suite

SUITE = '''
name = "batchy"
seeds = {seeds}
vectors = ["{vector}"]
batch_seeds = {batch}
rerun_check = {rerun}
threads = 1

[pipelines.p]
generate = {{ backend = "{generate}"{extra} }}
detect = {{ backend = "ground_truth" }}
mask = {{ backend = "shape", dilate_px = 2 }}
inpaint = {{ backend = "telea" }}
denoise = {{ backend = "{denoise}" }}
'''


def make_suite(tmp_path, seeds=(1, 2, 3, 4), batch=4, rerun="false", generate="custom_backends:BatchGenerate",
               extra="", denoise="custom_backends:equivalent_denoise", vector="generated_texture", name="batchy"):
    """The suite and the log file its generate backend writes to (``$HARNESS_TEST_BATCH_LOG``: the last
    suite made's)."""
    import os

    log = tmp_path / f"{name}.log"
    os.environ["HARNESS_TEST_BATCH_LOG"] = str(log)
    p = tmp_path / f"{name}.toml"
    p.write_text(SUITE.format(seeds=list(seeds), batch=batch, rerun=rerun, generate=generate, extra=extra,
                              denoise=denoise, vector=vector).replace('"batchy"', f'"{name}"'))
    return load_suite(p), log


def calls(log):
    return log.read_text().split("\n")[:-1] if log.exists() else []


@pytest.fixture(autouse=True)
def fresh_spot_checks(monkeypatch):
    monkeypatch.setenv("HARNESS_TEST_BATCH_LOG", "")
    batching.reset_spot_checks()
    yield
    batching.reset_spot_checks()


def run_cases(suite, tmp_path, cache=None, seeds=None):
    cache = cache or StageCache(None)
    return {c.seed: execute_case(c, suite, tmp_path / "run", cache, seeds=seeds) for c in suite.cases(seeds=seeds)}


# --- chunks -----------------------------------------------------------------------------------------------------


def test_chunks_are_consecutive_runs_of_the_planned_seeds():
    assert batching.chunk_of(3, [1, 2, 3, 4, 5], 2) == [3, 4]
    assert batching.chunk_of(5, [1, 2, 3, 4, 5], 2) == [5]
    assert batching.chunk_of(2, [1, 2, 3], 1) == [2]
    assert batching.chunk_of(9, [1, 2, 3], 4) == [9]  # not planned: alone


# --- the protocol: call_batch, and generate_batch through the adapter -------------------------------------------


def test_both_calling_conventions_and_validation_naming_the_seed(tmp_path):
    img = np.full((16, 16, 3), 128, np.uint8)
    ctxs = [StageContext(s) for s in (1, 2, 3)]
    for name in ("custom_backends:BatchGenerate", "custom_backends:GanLikeGenerate"):
        b = build_backend("generate", name, {})
        assert batch_call(b) is not None
        got = run_stage_batch(b, [img] * 3, ctxs)
        assert [r.image.tobytes() for r in got] == [b(img, c).image.tobytes() for c in ctxs]
    assert batch_call(build_backend("generate", "custom_backends:degrading_denoise", {})) is None
    b = build_backend("generate", "custom_backends:BatchGenerate", {"offset": -300})  # all black once batched
    with pytest.raises(StageError, match=r"output image is all black \(seed 1 of a batch of 3\)$"):
        run_stage_batch(b, [img] * 3, ctxs)


# --- the runner -------------------------------------------------------------------------------------------------


def test_a_chunk_is_rendered_once_and_every_seed_cached_under_its_one_by_one_key(tmp_path):
    suite, log = make_suite(tmp_path, seeds=(1, 2, 3, 4, 5), batch=2)
    outs = run_cases(suite, tmp_path)
    assert all(o.error is None for o in outs.values()), [o.error for o in outs.values()]
    # chunks [1, 2] [3, 4] [5]: one batch each (plus one spot check per batch size in this process)
    assert calls(log) == ["batch 1,2", "single 1", "batch 3,4", "single 5"]
    assert [outs[s].config["cache"]["generate"] for s in (1, 2, 3, 4, 5)] == ["miss", "hit", "miss", "hit", "miss"]
    assert outs[2].config["batch"] == {"size": 2, "seeds": [1, 2], "seconds": outs[2].config["batch"]["seconds"],
                                       "index": 1}
    assert "batch" not in outs[5].config
    # ... and every seed's images are those of a run without batching
    plain, plain_log = make_suite(tmp_path, seeds=(1, 2, 3, 4, 5), batch=1, name="plain")
    ref = run_cases(plain, tmp_path)
    assert calls(plain_log) == [f"single {s}" for s in (1, 2, 3, 4, 5)]
    for s in outs:
        assert outs[s].measurement == ref[s].measurement


def test_a_batch_dependent_backend_is_refused_by_the_spot_check(tmp_path):
    suite, log = make_suite(tmp_path, seeds=(1, 2, 3, 4), batch=4, extra=", offset = 1")
    outs = run_cases(suite, tmp_path)
    assert outs[1].config["batch"]["refused"].startswith("a batch of 4 gave seed 1 ")
    assert calls(log)[:2] == ["batch 1,2,3,4", "single 1"]
    assert calls(log)[2:] == ["single 2", "single 3", "single 4"]  # no batch result was cached, none is tried again
    plain, _ = make_suite(tmp_path, batch=1, name="plain")
    ref = run_cases(plain, tmp_path)
    assert all(outs[s].measurement == ref[s].measurement for s in outs)


def test_a_failing_batch_falls_back_to_the_seed_alone(tmp_path):
    suite, log = make_suite(tmp_path, seeds=(1, 2), batch=2, extra=", offset = -300")  # batches are all black
    outs = run_cases(suite, tmp_path)
    assert all(o.error is None for o in outs.values())
    assert outs[1].config["batch"]["fallback"].startswith("StageError: generate backend 'custom_backends:BatchGenerate"
                                                           "': output image is all black (seed 1 of a batch of 2)")
    # seed 1 was cached alone; seed 2's case has a chunk of one left: alone
    assert calls(log) == ["batch 1,2", "single 1", "single 2"]


def test_seeds_override_reaches_the_chunks(tmp_path):
    suite, log = make_suite(tmp_path, seeds=(1,), batch=3)
    run_cases(suite, tmp_path, seeds=[7, 8, 9])
    assert calls(log)[0] == "batch 7,8,9"


def test_process_pool_with_a_disk_cache_renders_each_chunk_once(tmp_path):
    suite, log = make_suite(tmp_path, seeds=(1, 2, 3, 4), batch=4)
    report, _ = run_suite(suite, out_root=tmp_path / "reports", baselines_root=tmp_path / "b", workers=2,
                          cache_dir=tmp_path / "cache", judge=False)
    assert [c.error for c in report.cases] == [None] * 4
    batches = [line for line in calls(log) if line.startswith("batch")]
    assert len(batches) == 1 and sorted(batches[0][6:].split(",")) == ["1", "2", "3", "4"]  # whichever worker won
    assert sorted(c.config["batch"]["index"] for c in report.cases) == [0, 1, 2, 3]
    assert not list((tmp_path / "cache").glob(".batch-*.lock"))
    # a second run hits every seed, and still says where its result came from
    report, _ = run_suite(suite, out_root=tmp_path / "reports", baselines_root=tmp_path / "b", workers=1,
                          cache_dir=tmp_path / "cache", judge=False)
    assert all(c.config["cache"]["generate"] == "hit" and c.config["batch"]["size"] == 4 for c in report.cases)


def test_img2img_style_generate_on_a_vector_with_its_own_image_batches_too(tmp_path):
    suite, log = make_suite(tmp_path, seeds=(1, 2), batch=2, vector="microprint_dilation")
    outs = run_cases(suite, tmp_path)
    assert calls(log)[0] == "batch 1,2" and outs[2].config["cache"]["generate"] == "hit"


# --- rerun_check ---------------------------------------------------------------------------------------------------


def rerun_checks(out):
    return [c for c in out.expectations if c.slice.startswith("rerun_identical")]


def test_rerun_check_fails_a_nondeterministic_stage_naming_it(tmp_path):
    suite, _ = make_suite(tmp_path, seeds=(1,), batch=1, rerun="true", denoise="custom_backends:nondeterministic_denoise")
    out = run_cases(suite, tmp_path)[1]
    assert out.error is None
    [check] = rerun_checks(out)
    assert (check.metric, check.slice, check.status, check.value) == ("expect", "rerun_identical stage=denoise", "fail",
                                                                       5.0)
    assert check.note.startswith("a second run (stage cache bypassed) differs first at denoise: 5 of 65536 px differ "
                                 "(max |difference| 1)")
    rec = out.config["rerun"]
    assert rec["identical"] is False and rec["first_difference"] == "denoise"
    assert rec["differing_px"]["generate"] == 0 and rec["differing_px"]["denoise"] == 5
    s = rec["settings"]
    assert s["threads"] == 1 and "numpy" in s["versions"] and s["stages"]["denoise"]["backend"].endswith("denoise")
    assert set(s["torch"]) >= {"loaded"}
    assert "rerun" in out.timings


def test_rerun_check_passes_a_deterministic_pipeline_and_checks_batched_results(tmp_path):
    suite, log = make_suite(tmp_path, seeds=(1, 2), batch=2, rerun="true")
    outs = run_cases(suite, tmp_path)
    for out in outs.values():
        [check] = rerun_checks(out)
        assert (check.slice, check.status, check.value) == ("rerun_identical stage=all", "pass", 0.0)
        assert out.config["rerun"]["identical"] is True
    assert outs[2].config["batch"]["size"] == 2  # the first run's batched result, checked against a fresh single
    assert calls(log).count("single 2") == 1


def test_rerun_check_reaches_the_report_and_fails_the_case(tmp_path):
    suite, _ = make_suite(tmp_path, seeds=(1,), batch=1, rerun="true", denoise="custom_backends:nondeterministic_denoise")
    suite = dataclasses.replace(suite, rerun_check=True)
    report, _ = run_suite(suite, out_root=tmp_path / "reports", baselines_root=tmp_path / "b")
    [case] = report.cases
    assert case.status == "fail"
    failing = [c for c in case.checks if c.status == "fail" and c.metric == "expect"]
    assert [c.slice for c in failing] == ["rerun_identical stage=denoise"]
    assert case.config["rerun"]["first_difference"] == "denoise"


def test_workers_without_a_shared_cache_do_not_batch(tmp_path):
    suite, log = make_suite(tmp_path, seeds=(1, 2), batch=2)
    report, _ = run_suite(suite, out_root=tmp_path / "reports", baselines_root=tmp_path / "b", workers=2,
                          cache_dir=None, judge=False)
    assert [c.error for c in report.cases] == [None] * 2
    assert sorted(calls(log)) == ["single 1", "single 2"]
