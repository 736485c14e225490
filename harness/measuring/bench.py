"""Benchmark: ``measure`` with and without a mask against the fastest 3-channel rfft2 and scikit-image's SSIM.

Run as ``harness bench`` or ``python -m harness.measuring.bench``; exit 1 when a
target is missed.  All timings come from one child process started with
``OMP/OPENBLAS/MKL_NUM_THREADS=1`` (the thread pools are sized when numpy loads, so
the caller's own process cannot be trusted to be pinned), interleaved round-robin so that machine load affects
every contender alike; each call is timed in CPU time of the one thread
(``time.thread_time``), so that time spent waiting while other processes of a shared
machine run is not counted; the figures reported are ratios of medians.

**The floor** is the fastest of several ways to take ``rfft2`` of the bench
image's three channels in float64 (the array the floor has always been given):
numpy and ``scipy.fft`` (``workers=1``), on the interleaved ``(H, W, 3)`` array
over axes (0, 1), on a contiguous planar ``(3, H, W)`` copy in one call, and
plane by plane.  Every candidate is timed in the same interleaved rounds and
the floor is the smallest median, named in the output, so no slow layout can
flatter ``measure``.  ``measure`` itself transforms float32 planes: the float32
figure of the same transform is printed beside it for reference (not a target).

Pipeline images almost always come with a mask, so ``measure`` is timed both
ways (the mask: an ellipse over about 5 % of the image, like an inpainted
object).  Targets, for both: ``measure / floor <= 3`` and ``measure / SSIM <= 0.25``.

``measure`` runs its per-pixel loops as compiled kernels where numba is installed
(:mod:`harness.measuring.compiled`) and as numpy passes where it is not; the output
names which, and the numpy paths miss the first target.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from typing import Callable

import numpy as np

__all__ = ["run_bench", "bench_ratios", "floor_candidates", "TARGET_RFFT2", "TARGET_SSIM", "THREAD_VARS",
           "PINNED_CHILD"]

TARGET_RFFT2 = 3.0
TARGET_SSIM = 0.25
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
PINNED_CHILD = "HARNESS_BENCH_PINNED"  # set (to 1) in the child that times, with THREAD_VARS


def _image(size: int) -> tuple[np.ndarray, np.ndarray]:
    from skimage import data
    from skimage.transform import resize

    img = data.astronaut()
    img = (resize(img, (size, size), anti_aliasing=True) * 255).round().astype(np.uint8)
    rng = np.random.default_rng(0)
    other = np.clip(img.astype(np.int16) + rng.integers(-2, 3, img.shape), 0, 255).astype(np.uint8)
    return img, other


def _mask(size: int) -> np.ndarray:
    """A soft elliptical mask over about 5 % of the image (thresholded at 0.5), off centre."""
    yy, xx = np.mgrid[0:size, 0:size]
    d = ((yy - 0.45 * size) / (0.13 * size)) ** 2 + ((xx - 0.55 * size) / (0.12 * size)) ** 2
    return np.clip((1.15 - d) / 0.3, 0.0, 1.0).astype(np.float32)


def floor_candidates(f64: np.ndarray) -> dict[str, Callable[[], object]]:
    """Ways to take ``rfft2`` of the three channels of ``f64`` ``(H, W, 3)`` float64, each a no-argument call.

    The planar copies are made here, outside the timed calls: the floor is the
    transform alone, at its fastest.
    """
    import scipy.fft as sfft

    planar = np.ascontiguousarray(np.moveaxis(f64, 2, 0))
    planes = [np.ascontiguousarray(planar[c]) for c in range(3)]
    return {
        "numpy.fft.rfft2, interleaved (H, W, 3), axes (0, 1)": lambda: np.fft.rfft2(f64, axes=(0, 1)),
        "numpy.fft.rfft2, planar (3, H, W)": lambda: np.fft.rfft2(planar),
        "numpy.fft.rfft2, per channel on contiguous planes": lambda: [np.fft.rfft2(p) for p in planes],
        "scipy.fft.rfft2, interleaved (H, W, 3), axes (0, 1)": lambda: sfft.rfft2(f64, axes=(0, 1), workers=1),
        "scipy.fft.rfft2, planar (3, H, W)": lambda: sfft.rfft2(planar, workers=1),
        "scipy.fft.rfft2, per channel on contiguous planes": lambda: [sfft.rfft2(p, workers=1) for p in planes],
    }


def _time_interleaved(contenders: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median CPU seconds of each contender over ``repeats`` round-robin rounds (after one warm-up call each)."""
    for fn in contenders.values():  # warm caches (filters, grids, FFT plans)
        fn()
    times: dict[str, list[float]] = {k: [] for k in contenders}
    for _ in range(repeats):
        for name, fn in contenders.items():
            t0 = time.thread_time()
            fn()
            times[name].append(time.thread_time() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def bench_ratios(size: int = 512, repeats: int = 30) -> dict[str, object]:
    """Median seconds of every contender, the floor (fastest rfft2 candidate, and which) and the four ratios."""
    import scipy.fft as sfft
    from skimage.metrics import structural_similarity

    from harness.measuring.driver import measure

    img, other = _image(size)
    mask = _mask(size)
    f64 = img.astype(np.float64) / 255.0
    o64 = other.astype(np.float64) / 255.0
    planes32 = [np.ascontiguousarray(f64[..., c], dtype=np.float32) for c in range(3)]
    floors = floor_candidates(f64)
    contenders = {
        "measure": lambda: measure(img),
        "measure_masked": lambda: measure(img, mask),
        "ssim": lambda: structural_similarity(f64, o64, channel_axis=2, data_range=1.0),
        "rfft2_f32": lambda: [sfft.rfft2(p, workers=1) for p in planes32],
        **{f"floor:{k}": fn for k, fn in floors.items()},
    }
    med = _time_interleaved(contenders, repeats)
    floor_times = {k: med[f"floor:{k}"] for k in floors}
    floor_name = min(floor_times, key=floor_times.__getitem__)
    floor = floor_times[floor_name]
    return {
        "measure_s": med["measure"],
        "measure_masked_s": med["measure_masked"],
        "ssim_s": med["ssim"],
        "rfft2_f32_s": med["rfft2_f32"],
        "floor_s": floor,
        "floor": floor_name,
        "floor_candidates_s": floor_times,
        "mask_coverage": float(np.mean(mask >= 0.5)),
        "measure_over_rfft2": med["measure"] / floor,
        "measure_over_ssim": med["measure"] / med["ssim"],
        "measure_masked_over_rfft2": med["measure_masked"] / floor,
        "measure_masked_over_ssim": med["measure_masked"] / med["ssim"],
    }


def _paths() -> str:
    """Which code ``measure`` runs: the compiled kernels (and numba's version) or the numpy paths (and why)."""
    from harness.measuring.compiled import NUMPY_ENV, kernels

    if kernels() is not None:
        import numba

        return f"compiled kernels (numba {numba.__version__})"
    return f"numpy ({NUMPY_ENV}=1)" if os.environ.get(NUMPY_ENV) == "1" else "numpy (numba is not installed)"


def _threads_pinned() -> bool:
    """Whether this is the pinned child: started with every THREAD_VARS at 1 (see :data:`PINNED_CHILD`)."""
    return os.environ.get(PINNED_CHILD) == "1" and all(os.environ.get(v) == "1" for v in THREAD_VARS)


def _rerun_pinned(size: int, repeats: int) -> int:
    """Run the bench in a child whose BLAS/OpenMP pools are one thread from the start; its exit code."""
    env = os.environ | {v: "1" for v in THREAD_VARS} | {PINNED_CHILD: "1"}
    cmd = [sys.executable, "-m", "harness.measuring.bench", "--size", str(size), "--repeats", str(repeats)]
    sys.stdout.flush()
    return subprocess.run(cmd, env=env, check=False).returncode


def run_bench(size: int = 512, repeats: int = 30) -> int:
    """Print the timings and ratios; 0 when every target is met, 1 when one is missed."""
    if not _threads_pinned():
        return _rerun_pinned(size, repeats)
    r = bench_ratios(size, repeats)
    print(f"harness bench: {size}x{size} RGB, {repeats} interleaved repeats, one thread "
          f"({', '.join(f'{v}={os.environ.get(v)}' for v in THREAD_VARS)}, scipy.fft workers=1), "
          "medians of thread CPU time")
    print("  floor candidates, rfft2 of the 3 channels (float64):")
    for name, t in sorted(r["floor_candidates_s"].items(), key=lambda kv: kv[1]):
        print(f"    {t * 1e3:8.2f} ms  {name}{'   <- floor' if name == r['floor'] else ''}")
    print(f"  floor: {r['floor']}")
    print(f"  measure paths: {_paths()}")
    print(f"  measure()                 {r['measure_s'] * 1e3:8.2f} ms")
    print(f"  measure(mask={100 * r['mask_coverage']:.1f} %)      {r['measure_masked_s'] * 1e3:8.2f} ms")
    print(f"  rfft2 floor (3 ch, f64)   {r['floor_s'] * 1e3:8.2f} ms")
    print(f"  skimage SSIM (RGB pair)   {r['ssim_s'] * 1e3:8.2f} ms")
    missed = 0
    for label, key, target in (("(a) measure / floor", "measure_over_rfft2", TARGET_RFFT2),
                               ("(b) measure / SSIM", "measure_over_ssim", TARGET_SSIM),
                               ("(c) masked / floor", "measure_masked_over_rfft2", TARGET_RFFT2),
                               ("(d) masked / SSIM", "measure_masked_over_ssim", TARGET_SSIM)):
        ok = r[key] <= target
        missed += not ok
        print(f"  {label:24s}{r[key]:8.2f}   target <= {target:g}   {'ok' if ok else 'MISSED'}")
    print(f"  for reference (no target): scipy.fft.rfft2 per channel on float32 planes "
          f"{r['rfft2_f32_s'] * 1e3:.2f} ms; masked / that = {r['measure_masked_s'] / r['rfft2_f32_s']:.2f}")
    if missed:
        print(f"harness bench: {missed} target(s) missed")
    return 1 if missed else 0


def main(argv: list[str] | None = None) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="python -m harness.measuring.bench")
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--repeats", type=int, default=30)
    a = p.parse_args(argv)
    return run_bench(a.size, a.repeats)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
