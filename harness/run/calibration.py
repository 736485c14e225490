"""Calibration: the pipeline measures its own noise (``harness bake --calibrate N``).

Each baked case is rendered ``N`` more times under the benign perturbations its suite
declares in ``[calibrate]`` (``perturb``):

* ``"rerun"``   — a plain re-run with a fresh in-memory stage cache (every render does this),
  which catches nondeterministic stages;
  every render runs in isolating worker processes, as ``harness run`` does, so a render that
  hangs past the suite's ``timeout_s`` or crashes its worker is left out, never the bake;
* ``"jitter"``  — uniform integer jitter of -1..+1 LSB added to the vector's input image
  before the pipeline, seeded per render (render ``i`` uses seed ``i + 1``);
* ``"threads"`` — render ``i`` runs with 1 thread (even ``i``) or 2 threads (odd ``i``).

Per slice, the sample standard deviation (``ddof=1``) of the value over the unperturbed
baked measurement and the ``N`` renders is the slice's measured *spread*; it is stored with
the baseline (``"spread": {metric: [float per slice]}``, 3 significant digits) and used as a
floor of the noise ``std`` on both sides of a paired comparison (see
:func:`harness.measuring.result.floor_std`).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from harness.measuring.result import Measurement
from harness.suite.suites import Case, Suite

__all__ = ["calibration_renders", "spread_of"]


def calibration_renders(suite: Suite, cases: Sequence[Case], renders: int, perturb: Sequence[str],
                        progress: Callable[[str], None] | None = None, *, workers: int = 1,
                        timeout: float | None = None, pythonpath: Sequence[str] = ()) -> dict[str, list[Measurement]]:
    """``renders`` perturbed measurements of each case, every render of every case in an isolating
    worker like ``harness run``'s (``workers`` processes; a case past ``timeout`` seconds, default
    the suite's ``timeout_s``, or one whose worker crashes, errors); a render that errors is left
    out (its case then has fewer)."""
    from harness.run.executors import CaseJob, make_executor

    out: dict[str, list[Measurement]] = {c.id: [] for c in cases}
    say = progress or (lambda s: None)
    timeout = timeout if timeout is not None else suite.timeout_s
    with tempfile.TemporaryDirectory(prefix="harness-calibrate-") as tmp:
        for i in range(renders):
            threads = (1 if i % 2 == 0 else 2) if "threads" in perturb else suite.threads
            # no disk cache and no batching: every render computes every stage, each seed alone
            job = CaseJob(suite, Path(tmp) / f"render-{i + 1}", None, threads, tuple(pythonpath), seeds=(),
                          jitter_seed=i + 1 if "jitter" in perturb else None)
            for res in make_executor("local", workers, timeout).run(list(cases), job):
                if res.measurement is None:
                    say(f"calibrate {res.case_id}: render {i + 1} failed ({res.error}); left out")
                    continue
                out[res.case_id].append(Measurement.from_dict(res.measurement))
            say(f"calibrate render {i + 1}/{renders} ({', '.join(perturb)}) of {len(cases)} case(s) done")
    return out


def spread_of(baked: Measurement, renders: Sequence[Measurement]) -> dict[str, list[float]]:
    """Per metric, per slice of ``baked`` (in its order): the sample std of the slice's value over
    ``baked`` and ``renders`` (non-finite values and slices a render lacks are left out; fewer
    than two values give 0.0)."""
    out: dict[str, list[float]] = {}
    for metric, mv in baked.metrics.items():
        cols = [mv.values]
        for r in renders:
            rv = r.metrics.get(metric)
            if rv is None:
                continue
            idx = {s: j for j, s in enumerate(rv.slices)}
            cols.append(np.array([rv.values[idx[s]] if s in idx else np.nan for s in mv.slices]))
        stack = np.vstack(cols)
        period = _period(metric)
        spread = []
        for j in range(len(mv.slices)):
            x = stack[:, j]
            x = x[np.isfinite(x)]
            if x.size < 2:
                spread.append(0.0)
            elif period:  # circular (hue): the spread of the angles, not of their wrapped values
                d = (x - x[0] + period / 2.0) % period - period / 2.0
                spread.append(float(np.std(d, ddof=1)))
            else:
                spread.append(float(np.std(x, ddof=1)))
        out[metric] = spread
    return out


def _period(metric: str) -> float | None:
    try:
        from harness.measuring.metrics import get_metric

        return get_metric(metric).period
    except Exception:  # noqa: BLE001 - a stage metric (detect_recall, ...) or an unknown one: linear
        return None

