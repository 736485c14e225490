"""Benchmark: ``measure`` with and without a mask against numpy's rfft2 and scikit-image's SSIM.

Run as ``harness bench`` or ``python -m harness.measuring.bench``.  All timings come
from one process, interleaved round-robin so that machine load affects every
contender alike; the figures reported are ratios of medians.  Pipeline images almost
always come with a mask, so ``measure`` is timed both ways (the mask: an ellipse over
about 5 % of the image, like an inpainted object).  Targets, for both:
``measure / rfft2(3 channels) <= 3`` and ``measure / SSIM <= 0.25``.
"""

from __future__ import annotations

import statistics
import sys
import time

import numpy as np

__all__ = ["run_bench", "bench_ratios", "TARGET_RFFT2", "TARGET_SSIM"]

TARGET_RFFT2 = 3.0
TARGET_SSIM = 0.25


def _image(size: int) -> tuple[np.ndarray, np.ndarray]:
    from skimage import data
    from skimage.transform import resize

    img = data.astronaut()
    img = (resize(img, (size, size), anti_aliasing=True) * 255).round().astype(np.uint8)
    rng = np.random.default_rng(0)
    other = np.clip(img.astype(np.int16) + rng.integers(-2, 3, img.shape), 0, 255).astype(np.uint8)
    return img, other


def _mask(size: int) -> np.ndarray:
    """A soft elliptical mask over about 5 % of the image, off centre."""
    yy, xx = np.mgrid[0:size, 0:size]
    d = ((yy - 0.45 * size) / (0.13 * size)) ** 2 + ((xx - 0.55 * size) / (0.12 * size)) ** 2
    return np.clip((1.15 - d) / 0.3, 0.0, 1.0).astype(np.float32)


def bench_ratios(size: int = 512, repeats: int = 30) -> dict[str, float]:
    """Median seconds of each contender and the four ratios (``measure`` and ``measure_masked``)."""
    from skimage.metrics import structural_similarity

    from harness.measuring.driver import measure

    img, other = _image(size)
    mask = _mask(size)
    f64 = img.astype(np.float64) / 255.0
    o64 = other.astype(np.float64) / 255.0
    contenders = {
        "measure": lambda: measure(img),
        "measure_masked": lambda: measure(img, mask),
        "rfft2_3ch": lambda: np.fft.rfft2(f64, axes=(0, 1)),
        "ssim": lambda: structural_similarity(f64, o64, channel_axis=2, data_range=1.0),
    }
    for fn in contenders.values():  # warm caches (filters, grids, FFT plans)
        fn()
    times: dict[str, list[float]] = {k: [] for k in contenders}
    for _ in range(repeats):
        for name, fn in contenders.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    return {
        **{f"{k}_s": v for k, v in med.items()},
        "measure_over_rfft2": med["measure"] / med["rfft2_3ch"],
        "measure_over_ssim": med["measure"] / med["ssim"],
        "measure_masked_over_rfft2": med["measure_masked"] / med["rfft2_3ch"],
        "measure_masked_over_ssim": med["measure_masked"] / med["ssim"],
    }


def run_bench(size: int = 512, repeats: int = 30) -> int:
    r = bench_ratios(size, repeats)
    print(f"harness bench: {size}x{size} RGB, {repeats} interleaved repeats, single thread, medians")
    print(f"  measure()                 {r['measure_s'] * 1e3:8.2f} ms")
    print(f"  measure(mask=5 %)         {r['measure_masked_s'] * 1e3:8.2f} ms")
    print(f"  numpy.fft.rfft2 (3 ch)    {r['rfft2_3ch_s'] * 1e3:8.2f} ms")
    print(f"  skimage SSIM (RGB pair)   {r['ssim_s'] * 1e3:8.2f} ms")
    for label, key, target in (("(a) measure / rfft2", "measure_over_rfft2", TARGET_RFFT2),
                               ("(b) measure / SSIM", "measure_over_ssim", TARGET_SSIM),
                               ("(c) masked / rfft2", "measure_masked_over_rfft2", TARGET_RFFT2),
                               ("(d) masked / SSIM", "measure_masked_over_ssim", TARGET_SSIM)):
        ok = r[key] <= target
        print(f"  {label:24s}{r[key]:8.2f}   target <= {target:g}   {'ok' if ok else 'MISSED'}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(run_bench())
