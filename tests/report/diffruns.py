"""Synthetic run folders for the ``harness diff`` tests: cases over seeds with their checks in
checks.parquet, a pipeline config, and run-folder PNG artifacts."""

from __future__ import annotations

import numpy as np

from harness.comparing.engine import Check
from harness.imageio import save_png
from harness.report.checks_table import compact, write_part
from harness.report.schema import CaseResult, Report

BOX = (8, 8, 24, 24)


def image(seed: int, dark: bool) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = rng.integers(100, 140, (32, 32, 3), dtype=np.uint8)
    if dark:
        img[8:24, 8:24] = 10  # the damage the failing check's box points at
    return img


def run(path, *, values: dict[int, float], dilate: int = 2, env: dict | None = None, complete: bool = True,
        vector: str = "v", pipeline: str = "p", images: bool = True, diverged: dict | None = None):
    """A run of one vector × pipeline: per seed a ``tile`` check (value vs baseline 1.0, tolerance
    0.5: fails when the value is beyond 1.5) and an ``all`` check that never changes; ``dilate`` the
    mask.dilate_px in its pipeline config; ``output`` (and ``mask_mask``) images under the run folder."""
    path.mkdir(parents=True, exist_ok=True)
    cases = []
    for seed, value in values.items():
        cid = f"{vector}/{pipeline}/s{seed}"
        status = "fail" if abs(value - 1.0) > 0.5 else "pass"
        checks = [Check("mean", "tile=r0c0 ch=Y", value, 1.0, value - 1.0, 0.5, status, box=BOX),
                  Check("mean", "all", 2.0, 2.0, 0.0, 0.5, "pass")]
        artifacts = {}
        if images:
            for stage, img in (("mask_mask", np.full((32, 32, 3), 255 * (dilate > 2), np.uint8)),
                               ("output", image(seed, status == "fail"))):
                rel = f"cases/{vector}__{pipeline}__s{seed}/{stage}.png"
                (path / rel).parent.mkdir(parents=True, exist_ok=True)
                save_png(path / rel, img)
                artifacts[stage] = rel
        c = CaseResult(cid, vector, pipeline, seed, status, None, {}, artifacts, checks,
                       config={"pipeline": {"mask": {"backend": "shape", "dilate_px": dilate}}},
                       diverged=diverged)
        write_part(path, c)
        cases.append(c)
    compact(path, [c.id for c in cases])
    environment = {"device": "cpu", "threads": 1, "git_sha": "a" * 40, "executor": "local", "suite_digest": "d1",
                   "versions": {"numpy": "2.0"}, **(env or {})}
    planned = [c.id for c in cases] + ([] if complete else [f"{vector}/{pipeline}/s99"])
    Report(path.name, "smoke", "t", environment, cases, complete=complete, planned=planned).write(path)
    return path
