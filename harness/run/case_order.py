"""Which queued case an idle worker of the isolating pool (:mod:`harness.run.workers`) takes.

Loading a model (and importing torch, diffusers or onnxruntime for it) is the dearest part of a
case that first uses it: a second worker loading the same model repeats that, and on a machine with
as many workers as cores it competes with every other case.  So a model pipeline stays with one
worker, pipelines that share a model go to the worker that has it, and the heavy ones start first:

* a *model* of a pipeline: a stage whose backend declares weight files (``weight_paths``);
* the queue starts with the pipelines of the most models (:func:`heavy_first`; a stable sort, so
  plan order otherwise and within a pipeline), so the run ends on short classical cases instead of
  one worker finishing a model pipeline while the others idle (longest first);
* :func:`pick`: a pipeline no other worker runs now (its models then load in one worker), else a
  (vector, pipeline) none runs (a chunk of batched seeds is rendered once), else the next case (a
  worker never idles while cases wait); within that, the case whose models this worker has loaded
  most of and the other workers fewest of.

Only the order of execution changes: which worker runs a case never changes its result, and the
report keeps the plan's order.
"""

from __future__ import annotations

from typing import Any, Sequence

__all__ = ["model_set", "heavy_first", "pick"]


def model_set(pipeline: Any) -> frozenset[str]:
    """``{"stage:backend"}`` of the stages of ``pipeline`` whose backend declares weight files; empty
    when that cannot be told (a backend that fails to build is its case's error later, not the order's)."""
    from harness.stages import build_backend

    try:
        return frozenset(f"{s.stage}:{s.backend}" for s in pipeline.stages
                         if callable(getattr(build_backend(s.stage, s.backend, dict(s.params)), "weight_paths", None)))
    except Exception:  # noqa: BLE001 - only an order: plan order then
        return frozenset()


def heavy_first(cases: Sequence[Any], models: dict[str, frozenset[str]]) -> list[Any]:
    """``cases``, the pipelines of the most models first (stable); ``models`` collects each
    pipeline's :func:`model_set` by name."""
    for c in cases:
        if c.pipeline.name not in models:
            models[c.pipeline.name] = model_set(c.pipeline)
    return sorted(cases, key=lambda c: -len(models[c.pipeline.name]))


def pick(queued: Sequence[tuple[tuple[str, str], frozenset[str]]], busy: set[tuple[str, str]],
         mine: set[str] = frozenset(), others: set[str] = frozenset()) -> int:
    """Index into ``queued`` (each queued case's (vector, pipeline) and models, in queue order) of
    the case an idle worker takes (see the module doc).  ``busy``: the groups the other workers run
    now; ``mine``: the models this worker has loaded; ``others``: those the other workers have."""
    pipelines = {p for _, p in busy}
    best: tuple[int, int, int] | None = None
    for i, (group, models) in enumerate(queued):
        tier = 0 if group[1] not in pipelines else 1 if group not in busy else 2
        key = (tier, len(models & others) - len(models & mine), i)
        if best is None or key < best:
            best = key
    return best[2] if best is not None else 0
