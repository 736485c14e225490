"""A case between its two phases: stages done (:func:`harness.run.case.run_stages`), measuring to come
(:func:`harness.run.case.finish_case`).

Its own module so that :mod:`harness.run.case` stays within its size and so that the pipelined
executor (:mod:`harness.run.pipelined`) can hand a staged case from the worker that ran its stages
(the GPU) to one that measures it (a CPU core) through the isolating pool's pipes.
"""

from __future__ import annotations

import dataclasses
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["StagedCase"]


@dataclass
class StagedCase:
    """The state of one case after its stages ran; picklable.

    ``ex``: the case's execution record (:class:`harness.run.case._Execution`: config, timings,
    artifacts, the stage log, the vector and its rendering).  ``image``: the pipeline's final image,
    (H, W, 3) uint8, what is measured; None when a stage failed (``error`` says why: the case is
    final, nothing is measured).  ``checks``: absolute checks decided while staging (the rerun
    check), added after the measured case's own.

    Pickled, it leaves behind what the measuring side never reads: the stage hook (a worker's
    watchdog), the stage cache and the captured output of every stage (images)."""

    ex: Any
    image: np.ndarray | None = None
    error: str | None = None
    checks: list[Any] = field(default_factory=list)

    # what the isolating worker pool (harness.run.workers) reads of the items it runs
    id = property(lambda self: self.ex.case.id)
    vector = property(lambda self: self.ex.case.vector)
    pipeline = property(lambda self: self.ex.case.pipeline)
    seed = property(lambda self: self.ex.case.seed)
    stages = property(lambda self: self.ex.stages)
    timings = property(lambda self: self.ex.timings)
    artifacts = property(lambda self: self.ex.artifacts)
    config = property(lambda self: self.ex.config, lambda self, value: setattr(self.ex, "config", value))

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "ex": dataclasses.replace(self.ex, at=nullcontext, cache=None, captured={})}
