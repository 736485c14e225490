"""Synthetic run folders for the index.html tests: a report.json (version 2) with its checks.parquet
and stage images in an image store, shaped like a real run (vector × pipeline × seed, tile checks
with pixel boxes, failing cases with a changed stage parameter), at any size -- 1,000 cases
in a few seconds, without running a pipeline.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from harness.comparing.engine import Check
from harness.report.check_parts import META_KEY
from harness.report.checks_table import parquet_bytes, report_table
from harness.report.schema import CaseResult, Report
from harness.run.store import ImageStore

STAGES = ("input", "detect_mask", "mask_mask", "inpaint", "denoise", "output")
TILES = 6  # a 6 × 6 grid of 64 px tiles over a 384 px image
CHANGE = {"stage": "mask", "param": "dilate_px", "baseline": 2, "run": 6}


def stage_images(store: ImageStore, variant: int) -> dict[str, str]:
    """Six small distinct stage images (64 px), their store references; ``variant`` changes them."""
    rng = np.random.default_rng(variant)
    base = (rng.random((64, 64, 3)) * 255).astype(np.uint8)
    return {s: store.put(np.roll(base, 7 * i, axis=1)) for i, s in enumerate(STAGES)}


def case_checks(fail_tile: tuple[int, int] | None, worst: float = 6.0) -> list[Check]:
    """Every check of one case: band power and contrast per tile, plus two whole-image ones; with
    ``fail_tile`` (row, col) its tile and its right neighbour fail (``worst`` × tolerance)."""
    out = []
    for r in range(TILES):
        for c in range(TILES):
            box = (64 * c, 64 * r, 64 * c + 64, 64 * r + 64)
            hit = fail_tile is not None and r == fail_tile[0] and c in (fail_tile[1], fail_tile[1] + 1)
            for metric, delta in (("band_power", worst if hit else 0.1 * ((r + c) % 5)), ("contrast", 0.2)):
                out.append(Check(metric, f"band=mid tile=r{r}c{c} ch=Y" if metric == "band_power" else
                                 f"tile=r{r}c{c} ch=Y", 10.0 + delta, 10.0, delta, 1.0,
                                 "fail" if abs(delta) > 1.0 else "pass", box))
    out += [Check("noise", "ch=Y", 1.0, 1.0, 0.0, 0.5, "pass"),
            Check("seam_step", "region=border ch=Y", 2.0, 1.9, 0.1, 0.4, "pass")]
    return out


def synthetic_run(run_dir: Path, *, vectors: int = 50, pipelines: int = 4, seeds: int = 5,
                  failing: tuple[str, ...] = (), erroring: tuple[str, ...] = (), missing: int = 0) -> Report:
    """A finished (``missing`` = 0) or interrupted run of ``vectors × pipelines × seeds`` cases in
    ``run_dir``; the groups named in ``failing`` (``"v3/p1"``) fail every seed with a changed mask
    dilation, those in ``erroring`` error.  The image store is ``run_dir/../store``."""
    run_dir.mkdir(parents=True, exist_ok=True)
    store = ImageStore(run_dir.parent / "store")
    ok, bad = stage_images(store, 0), stage_images(store, 1)
    cases, planned = [], []
    for v in range(vectors):
        for p in range(pipelines):
            group = f"v{v}/p{p}"
            for s in range(1, seeds + 1):
                cid = f"{group}/s{s}"
                planned.append(cid)
                fails, errs = group in failing, group in erroring
                case = CaseResult(cid, f"v{v}", f"p{p}", s, "fail" if fails else "error" if errs else "pass",
                                  "inpaint: CUDA out of memory (tried to allocate 2.0 GiB)" if errs else None,
                                  {"inpaint": 0.4 + 0.01 * s + 0.01 * v, "denoise": 0.2, "measure": 0.05},
                                  dict(bad if fails else ok), case_checks((2, s % (TILES - 1)) if fails else None,
                                                                          worst=4.0 + s),
                                  changed=[dict(CHANGE)] if fails else [])
                if errs:
                    case.checks, case.artifacts = [], {"input": ok["input"]}
                cases.append(case)
    kept = cases[:len(cases) - missing] if missing else cases
    report = Report("20260101T000000-synthetic", "synthetic", "2026-01-01T00:00:00+00:00",
                    {"device": "cpu", "threads": 1, "executor": "local", "git_sha": "0123abc",
                     "versions": {"harness": "0.1.0", "numpy": np.__version__}, "store": str(store.root)},
                    kept, complete=not missing, planned=planned,
                    notes=["interrupted by SIGINT"] if missing else [])
    counts = {c.id: len(c.checks) for c in kept}
    (run_dir / "checks.parquet").write_bytes(parquet_bytes(report_table(report),
                                                           {META_KEY: json.dumps(counts).encode()}))
    for c in kept:
        c.keep_deciding()
    report.write(run_dir)
    return report
