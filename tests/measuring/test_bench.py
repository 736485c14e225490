import os
import subprocess
import sys

import numpy as np
import pytest

from harness.measuring import bench
from harness.measuring.bench import PINNED_CHILD, THREAD_VARS, bench_ratios, floor_candidates, run_bench


@pytest.fixture
def pinned(monkeypatch):
    """Time in this process, as the pinned child does (these tests check the printing and the exit code)."""
    for v in (*THREAD_VARS, PINNED_CHILD):
        monkeypatch.setenv(v, "1")


def test_floor_is_the_fastest_candidate_and_every_ratio_divides_by_it():
    r = bench_ratios(size=64, repeats=2)
    cands = r["floor_candidates_s"]
    assert len(cands) == 6 and {"scipy.fft.rfft2, per channel on contiguous planes",
                                "numpy.fft.rfft2, interleaved (H, W, 3), axes (0, 1)"} <= set(cands)
    assert r["floor_s"] == min(cands.values()) and cands[r["floor"]] == r["floor_s"]
    assert r["measure_over_rfft2"] == r["measure_s"] / r["floor_s"]
    assert r["measure_masked_over_rfft2"] == r["measure_masked_s"] / r["floor_s"]
    assert r["measure_masked_over_ssim"] == r["measure_masked_s"] / r["ssim_s"]
    assert 0.03 <= r["mask_coverage"] <= 0.05  # the 3-5 % mask the target is stated for


def test_every_floor_candidate_is_the_same_transform():
    f64 = np.random.default_rng(0).random((32, 48, 3))
    want = np.fft.rfft2(f64, axes=(0, 1))
    for name, fn in floor_candidates(f64).items():
        got = fn()
        got = np.moveaxis(np.asarray(got), 0, 2) if "interleaved" not in name else got
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-9, err_msg=name)


def test_bench_prints_the_floor_it_chose_and_passes_when_targets_are_met(pinned, monkeypatch, capsys):
    monkeypatch.setattr(bench, "TARGET_RFFT2", 1e9)
    monkeypatch.setattr(bench, "TARGET_SSIM", 1e9)
    assert run_bench(size=64, repeats=1) == 0
    out = capsys.readouterr().out
    assert "<- floor" in out and "floor: " in out and "OPENBLAS_NUM_THREADS=1" in out
    assert any(f"measure paths: {p}" in out for p in ("compiled kernels (numba ", "numpy (numba is not installed)",
                                                      "numpy (HARNESS_NUMPY_MAPS=1)"))
    assert out.count("target <= 1e+09   ok") == 4 and "MISSED" not in out


def test_bench_exits_1_when_a_target_is_missed(pinned, monkeypatch, capsys):
    monkeypatch.setattr(bench, "TARGET_RFFT2", 1e-9)
    monkeypatch.setattr(bench, "TARGET_SSIM", 1e9)
    assert run_bench(size=64, repeats=1) == 1
    out = capsys.readouterr().out
    assert out.count("MISSED") == 2 and "harness bench: 2 target(s) missed" in out


@pytest.mark.parametrize("caller_threads", [None, "1"])
def test_the_bench_always_times_in_a_child_pinned_from_the_start(caller_threads):
    # even a caller whose variables say 1 may have set them after numpy sized its pools
    env = {k: v for k, v in os.environ.items() if k not in (*THREAD_VARS, PINNED_CHILD)}
    env |= {v: caller_threads for v in THREAD_VARS} if caller_threads else {}
    # timing in the calling process would call its (broken) bench_ratios; the child has its own
    code = ("from harness.measuring import bench; bench.bench_ratios = None; "
            "print('RC', bench.run_bench(size=32, repeats=1))")
    p = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    # the header is printed by the process that times, with the thread variables it really has
    assert "one thread (OMP_NUM_THREADS=1, OPENBLAS_NUM_THREADS=1, MKL_NUM_THREADS=1" in p.stdout, p.stderr
    assert p.stdout.count("harness bench: 32x32 RGB") == 1 and "RC " in p.stdout


def test_bench_names_the_numpy_paths_when_they_are_asked_for(pinned, monkeypatch, capsys):
    monkeypatch.setenv("HARNESS_NUMPY_MAPS", "1")
    monkeypatch.setattr(bench, "TARGET_RFFT2", 1e9)
    monkeypatch.setattr(bench, "TARGET_SSIM", 1e9)
    assert run_bench(size=64, repeats=1) == 0
    assert "measure paths: numpy (HARNESS_NUMPY_MAPS=1)" in capsys.readouterr().out
