"""A suite's ``rerun_check``: every case runs twice, and outputs that differ fail it.

:func:`harness.run.case.execute_case` runs the case as usual, then once more with a fresh
in-memory stage cache (nothing is read from the run's cache) and without batching (each stage
called one-by-one), and compares every stage's output of the two runs, bit for bit.  The
result is one *absolute* check (:mod:`harness.checks.expectations`: metric ``expect``, never
compared with a baseline), slice ``rerun_identical stage=<the first stage that differed>``
(``stage=all`` when none did), value the number of pixels that differed there, required 0.
A first run served from the cache, or rendered in a batch, is thereby checked against a fresh
one-by-one render.

What decides whether two runs can differ is recorded in the case config under ``rerun``
(:func:`determinism_settings`): library versions, thread counts (configured and read back),
each stage's device and dtype, ``torch.are_deterministic_algorithms_enabled()`` and the
mkldnn / cudnn flags.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from harness.checks.expectations import EXPECT_METRIC, ExpectationCheck

__all__ = ["RERUN_SLICE", "compare_runs", "determinism_settings", "differing_px"]

RERUN_SLICE = "rerun_identical"

Outputs = dict[str, tuple[Any, Any]]  # stage (or "vector") -> (image | None, mask | None)


def _torch_flags() -> dict[str, Any]:
    torch = sys.modules.get("torch")
    if torch is None:
        return {"loaded": False}
    b = torch.backends
    out: dict[str, Any] = {
        "loaded": True,
        "deterministic_algorithms": bool(torch.are_deterministic_algorithms_enabled()),
        "num_threads": int(torch.get_num_threads()),
        "num_interop_threads": int(torch.get_num_interop_threads()),
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
        "mkldnn_enabled": bool(b.mkldnn.enabled),
        "mkldnn_available": bool(b.mkldnn.is_available()),
        "cuda_available": bool(torch.cuda.is_available()),
    }
    cudnn = getattr(b, "cudnn", None)
    if cudnn is not None:
        out.update(cudnn_enabled=bool(cudnn.enabled), cudnn_deterministic=bool(cudnn.deterministic),
                   cudnn_benchmark=bool(cudnn.benchmark))
    cuda = getattr(b, "cuda", None)
    if cuda is not None and hasattr(cuda, "matmul"):
        out["cuda_matmul_allow_tf32"] = bool(cuda.matmul.allow_tf32)
    return out


def determinism_settings(stage_configs: list[dict[str, Any]], stage_infos: dict[str, dict[str, Any]]
                         ) -> dict[str, Any]:
    """Versions, threads, per-stage device and dtype, torch's determinism flags (JSON-serialisable)."""
    from harness.threads import configured_threads, threads_applied
    from harness.run.environment import package_versions

    stages: dict[str, dict[str, Any]] = {}
    for conf in stage_configs:
        name = conf.get("stage", "?")
        params, info = conf.get("params", {}), stage_infos.get(name, {})
        entry = {"backend": conf.get("backend")}
        for k in ("device", "dtype"):
            v = info.get(k, params.get(k))
            if v is not None:
                entry[k] = v
        if "threads" in info:
            entry["threads"] = info["threads"]
        stages[name] = entry
    return {"versions": package_versions(), "threads": configured_threads(), "threads_applied": threads_applied(),
            "stages": stages, "torch": _torch_flags()}


def differing_px(a: Any, b: Any) -> tuple[int, float]:
    """(pixels that differ, max |difference|); a shape change counts every pixel of the larger."""
    if a is None or b is None:
        return (0, 0.0) if a is None and b is None else (1, float("inf"))
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        n = max(int(np.prod(a.shape[:2])), int(np.prod(b.shape[:2])))
        return n, float("inf")
    d = a != b
    if not d.any():
        return 0, 0.0
    diff = float(np.abs(a.astype(np.float64) - b.astype(np.float64)).max())
    return (int(d.any(axis=-1).sum()) if d.ndim == 3 else int(d.sum())), diff


def compare_runs(first: Outputs, second: Outputs | str) -> tuple[ExpectationCheck, dict[str, Any]]:
    """The ``rerun_identical`` check and the record of what differed.  ``second``: the second run's
    outputs, or its error message (a first run that succeeded and a second that failed differ)."""
    if isinstance(second, str):
        note = f"the second run (stage cache bypassed) failed where the first did not: {second}"
        check = ExpectationCheck(metric=EXPECT_METRIC, slice=f"{RERUN_SLICE} stage=error", value=None, baseline=0.0,
                                 delta=None, tolerance=0.0, status="fail", note=note)
        return check, {"identical": False, "first_difference": "error", "error": second}
    diffs: dict[str, int] = {}
    first_diff, first_max = None, 0.0
    for stage in first:
        img_a, mask_a = first[stage]
        img_b, mask_b = second.get(stage, (None, None))
        n_img, m_img = differing_px(img_a, img_b)
        n_mask, m_mask = differing_px(mask_a, mask_b)
        diffs[stage] = n_img + n_mask
        if diffs[stage] and first_diff is None:
            first_diff, first_max = stage, max(m_img, m_mask)
    if first_diff is None:
        note = f"a second run (stage cache bypassed) reproduced all {len(first)} outputs bit for bit"
        check = ExpectationCheck(metric=EXPECT_METRIC, slice=f"{RERUN_SLICE} stage=all", value=0.0, baseline=0.0,
                                 delta=0.0, tolerance=0.0, status="pass", note=note)
    else:
        n = diffs[first_diff]
        img = first[first_diff][0] if first[first_diff][0] is not None else first[first_diff][1]
        total = int(np.prod(np.asarray(img).shape[:2])) if img is not None else 0
        size = f" of {total}" if total else ""
        later = [s for s in list(first)[list(first).index(first_diff) + 1:] if diffs[s]]
        note = (f"a second run (stage cache bypassed) differs first at {first_diff}: {n}{size} px differ "
                f"(max |difference| {first_max:g})" + (f"; later stages differ too: {', '.join(later)}" if later
                                                      else ""))
        check = ExpectationCheck(metric=EXPECT_METRIC, slice=f"{RERUN_SLICE} stage={first_diff}", value=float(n),
                                 baseline=0.0, delta=float(n), tolerance=0.0, status="fail", note=note)
    return check, {"identical": first_diff is None, "first_difference": first_diff, "differing_px": diffs}
