"""What a worker runs: :class:`CaseJob`, the picklable description of one run's cases.

Its own module so that the executors (:mod:`harness.run.executors`), the isolating pool
(:mod:`harness.run.workers`) and the worker process (:mod:`harness.run.worker`) all
depend on it and never on each other in a cycle.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from harness.run.cache import StageCache
from harness.run.case import CaseOutput, execute_case
from harness.suite.suites import Case, Suite

__all__ = ["CaseJob"]


@dataclass
class CaseJob:
    """Everything a worker needs to execute cases of one run (picklable)."""

    suite: Suite
    run_dir: Path
    cache_dir: Path | None
    threads: int = 1
    pythonpath: tuple[str, ...] = ()
    cache_max_bytes: int | None = None  # the project's cache_max_mb; None: the cache's default
    seeds: tuple[int, ...] | None = None  # planned seeds (--seeds), cut into batch_seeds chunks; None: the
    # suite's; (): no batching across cases
    jitter_seed: int | None = None  # calibration renders: +-1 LSB input jitter seeded by it (execute_case)
    auto_device: str | None = None  # device "auto" as the driver resolved it on this machine (local workers)
    store_dir: Path | None = None  # the image store (harness.run.store) stage images go to; None: the run folder
    _cache: StageCache | None = field(default=None, repr=False, compare=False)

    def setup(self) -> None:
        """Per-worker set-up: the project's backend modules importable, thread counts pinned."""
        from harness.threads import set_threads

        for p in reversed(self.pythonpath):
            if p not in sys.path:
                sys.path.insert(0, p)
        set_threads(self.threads)
        if self.auto_device is not None:
            from harness.models.diffusers_loading import adopt_auto_device

            adopt_auto_device(self.auto_device)

    def __call__(self, case: Case, stage_hook=None, run_dir: Path | None = None) -> CaseOutput:
        """Execute ``case``, writing its artifacts under ``run_dir`` (default: the job's run folder;
        another one for a case run only to be compared, e.g. a cross-model side)."""
        return execute_case(case, self.suite, run_dir or self.run_dir, self.stage_cache(), stage_hook=stage_hook,
                            seeds=self.seeds, input_jitter_seed=self.jitter_seed)

    def stage_cache(self) -> StageCache:
        """This worker process's stage cache (one per process, shared by its cases), carrying the
        run's image store (``store_dir``) where its cases put their stage images."""
        if self._cache is None:
            from harness.run.store import ImageStore

            self._cache = StageCache(self.cache_dir, self.cache_max_bytes,
                                     images=ImageStore(self.store_dir) if self.store_dir else None)
        return self._cache

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_cache"] = None
        return state
