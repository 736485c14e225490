"""Benchmark: each diffusers backend one-by-one against batched, over the same seeds, side by side.

Run as ``harness bench --models`` (or ``python -m harness.run.bench``).  For each of
``sd``, ``sd_img2img``, ``sd_inpaint`` and ``sd_upscale`` on the built-in tiny checkpoints, in one
process at one thread (by default; ``sd_upscale`` gets a ``size/2`` input, its model output is
``2 x size``): N seeds rendered one call per seed, then the same N seeds in
one :meth:`call_batch`, interleaved round-robin over the repeats so that machine load affects both
alike; the figures are medians.  Every repeat checks the batched images against the one-by-one
ones, pixel for pixel ("identical", or the largest difference and how many pixels differ).

With ``stock`` (the default from the command line) two more columns show what the invariance
patches (:mod:`harness.models.invariance`) cost: the same batch with the stock torch
modules (faster, and *not* identical to one-by-one on a CPU -- why the backends never run it),
and its largest difference.

The exit code is 1 when a backend's batch is not identical to one-by-one, or slower than it.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["BACKENDS", "ModelBench", "bench_models", "run_model_bench"]

BACKENDS = ("sd", "sd_img2img", "sd_inpaint", "sd_upscale")
_STAGE = {"sd": "generate", "sd_img2img": "generate", "sd_inpaint": "inpaint", "sd_upscale": "upscale"}
PROMPT = "weathered brick wall with moss, overcast light"


@dataclass
class ModelBench:
    backend: str
    seeds: int
    one_by_one_s: float  # median seconds for all seeds, one call each
    batched_s: float  # median seconds for all seeds in one call
    max_diff: int  # largest |batched - one-by-one| over every repeat (0: identical)
    differing_px: int
    stock_batched_s: float | None = None
    stock_max_diff: int | None = None

    @property
    def ratio(self) -> float:
        """Batched throughput over one-by-one throughput."""
        return self.one_by_one_s / self.batched_s

    def images_per_s(self, seconds: float) -> float:
        return self.seeds / seconds


def _inputs(name: str, size: int, seeds: Sequence[int]):
    """``(image, [StageContext])`` of one backend's benchmark."""
    from harness.stages.base import StageContext

    rng = np.random.default_rng(0)
    if name == "sd":
        return np.full((size, size, 3), 128, np.uint8), [StageContext(s, prompt=PROMPT) for s in seeds]
    side = size // 2 if name == "sd_upscale" else size  # the upscaler's output is 4x its input: 2x size
    image = rng.integers(1, 255, (side, side, 3), dtype=np.uint8)
    if name == "sd_img2img":
        return image, [StageContext(s, prompt=PROMPT) for s in seeds]
    if name == "sd_inpaint":
        mask = np.zeros((size, size), np.float32)
        mask[size // 4: size // 2, size // 8: size * 3 // 4] = 1.0
        return image, [StageContext(s, mask=mask, prompt=PROMPT) for s in seeds]
    return image, [StageContext(s, prompt=PROMPT) for s in seeds]


def _diff(a: list[np.ndarray], b: list[np.ndarray]) -> tuple[int, int]:
    """(largest |difference|, pixels that differ) over the image pairs (a size change: 255)."""
    from harness.run.rerun import differing_px

    worst = px = 0
    for x, y in zip(a, b):
        n, m = differing_px(x, y)
        worst, px = max(worst, 255 if m == float("inf") else int(m)), px + n
    return worst, px


def _timed(fn: Callable[[], list[np.ndarray]]) -> tuple[float, list[np.ndarray]]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def bench_backend(name: str, seeds: int = 8, size: int = 64, steps: int = 4, repeats: int = 3,
                  stock: bool = False) -> ModelBench:
    """One backend, one-by-one against batched over ``seeds`` seeds (see the module docstring)."""
    from harness.models.invariance import invariance_disabled
    from harness.stages.base import build_backend, run_stage, run_stage_batch

    backend = build_backend(_STAGE[name], name, {"steps": steps})
    image, ctxs = _inputs(name, size, list(range(1, seeds + 1)))

    def one_by_one() -> list[np.ndarray]:
        return [run_stage(backend, image, c).image for c in ctxs]

    def batched() -> list[np.ndarray]:
        return [r.image for r in run_stage_batch(backend, [image] * len(ctxs), ctxs)]

    pipe = backend.pipeline()[0]

    def stock_batched() -> list[np.ndarray]:
        with invariance_disabled(pipe):
            return batched()

    contenders: dict[str, Callable[[], list[np.ndarray]]] = {"one": one_by_one, "batch": batched}
    if stock:
        contenders["stock"] = stock_batched
    for fn in contenders.values():  # warm: load, allocate, pick kernels
        fn()
    times: dict[str, list[float]] = {k: [] for k in contenders}
    worst = px = 0
    stock_worst = 0
    for _ in range(repeats):
        outs: dict[str, list[np.ndarray]] = {}
        for key, fn in contenders.items():
            t, outs[key] = _timed(fn)
            times[key].append(t)
        w, p = _diff(outs["one"], outs["batch"])
        worst, px = max(worst, w), max(px, p)
        if stock:
            stock_worst = max(stock_worst, _diff(outs["one"], outs["stock"])[0])
    med = {k: statistics.median(v) for k, v in times.items()}
    return ModelBench(name, seeds, med["one"], med["batch"], worst, px,
                      med.get("stock"), stock_worst if stock else None)


def bench_models(backends: Sequence[str] = BACKENDS, seeds: int = 8, size: int = 64, steps: int = 4,
                 repeats: int = 3, threads: int = 1, stock: bool = False) -> list[ModelBench]:
    from harness.threads import set_threads

    set_threads(threads)
    return [bench_backend(b, seeds, size, steps, repeats, stock) for b in backends]


def format_table(rows: Sequence[ModelBench]) -> list[str]:
    stock = any(r.stock_batched_s is not None for r in rows)
    head = f"  {'backend':12s}{'one-by-one img/s':>18s}{'batched img/s':>15s}{'ratio':>7s}  {'batch = one-by-one':20s}"
    if stock:
        head += f"{'stock batched img/s':>21s}{'stock ratio':>13s}  stock diff"
    lines = [head]
    for r in rows:
        same = "identical" if r.max_diff == 0 else f"DIFFERS (max {r.max_diff}, {r.differing_px} px)"
        line = (f"  {r.backend:12s}{r.images_per_s(r.one_by_one_s):18.2f}{r.images_per_s(r.batched_s):15.2f}"
                f"{r.ratio:7.2f}  {same:20s}")
        if stock and r.stock_batched_s is not None:
            line += (f"{r.images_per_s(r.stock_batched_s):21.2f}{r.one_by_one_s / r.stock_batched_s:13.2f}  "
                     f"{'none' if not r.stock_max_diff else f'max {r.stock_max_diff}'}")
        lines.append(line)
    return lines


def run_model_bench(seeds: int = 8, size: int = 64, steps: int = 4, repeats: int = 3, threads: int = 1,
                    backends: Sequence[str] = BACKENDS, stock: bool = True, out: Callable[[str], Any] = print) -> int:
    """Print the table; 0 when every backend's batch is identical to one-by-one and not slower."""
    import torch

    rows = bench_models(backends, seeds, size, steps, repeats, threads, stock)
    out(f"harness bench --models: diffusers backends on the built-in tiny checkpoints, {seeds} seeds, "
        f"{size}x{size}, {steps} steps, threads={threads} (torch {torch.__version__}, "
        f"{torch.backends.cpu.get_cpu_capability() if hasattr(torch.backends, 'cpu') else 'cpu'}), "
        f"median of {repeats} interleaved repeats")
    for line in format_table(rows):
        out(line)
    bad = [r.backend for r in rows if r.max_diff or r.ratio < 1.0]
    if stock:
        out("  stock: the same batch with torch's stock modules, which the backends never run (not batch-invariant)")
    if bad:
        out(f"  MISSED: {', '.join(bad)} (a batch must be identical to one-by-one and at least as fast)")
    return 1 if bad else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(run_model_bench())
