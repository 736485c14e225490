"""Executors: where cases run.  One interface, three implementations.

An executor takes the selected cases and a picklable :class:`CaseJob` and yields one
:class:`~harness.pipeline.case.CaseOutput` per case, in completion order, so the runner
flushes each case as it lands.  A case whose worker dies becomes that case's error; the
others go on.

* ``serial``  — in this process, one case after another (``--workers 1``).
* ``process`` — a local process pool (``--workers N``).
* ``ray``     — one Ray task per case (``--executor ray``), on a local Ray instance or the
  cluster named by ``RAY_ADDRESS``; ``--workers`` caps the tasks in flight.
"""

from __future__ import annotations

import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Protocol, Sequence

from harness.errors import ConfigError
from harness.pipeline.cache import StageCache
from harness.pipeline.case import CaseOutput, execute_case
from harness.pipeline.suite import Case, Suite

__all__ = ["CaseJob", "Executor", "SerialExecutor", "ProcessExecutor", "RayExecutor", "make_executor", "EXECUTORS"]

EXECUTORS = ("local", "ray")


@dataclass
class CaseJob:
    """Everything a worker needs to execute cases of one run (picklable)."""

    suite: Suite
    run_dir: Path
    cache_dir: Path | None
    threads: int = 1
    pythonpath: tuple[str, ...] = ()
    _cache: StageCache | None = field(default=None, repr=False, compare=False)

    def setup(self) -> None:
        """Per-worker set-up: the project's backend modules importable, thread counts pinned."""
        from harness.pipeline.environment import set_threads

        for p in reversed(self.pythonpath):
            if p not in sys.path:
                sys.path.insert(0, p)
        set_threads(self.threads)

    def __call__(self, case: Case) -> CaseOutput:
        if self._cache is None:  # one cache per worker process, shared by its cases
            self._cache = StageCache(self.cache_dir)
        return execute_case(case, self.suite, self.run_dir, self._cache)

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_cache"] = None
        return state


class Executor(Protocol):
    name: str

    def run(self, cases: Sequence[Case], job: CaseJob) -> Iterator[CaseOutput]:
        """Execute every case; yield each output as it completes (any order)."""


def _lost(case: Case, exc: BaseException, where: str) -> CaseOutput:
    return CaseOutput(case.id, None, {}, {}, {}, {}, f"{where}: {type(exc).__name__}: {exc}")


class SerialExecutor:
    name = "serial"

    def run(self, cases: Sequence[Case], job: CaseJob) -> Iterator[CaseOutput]:
        job.setup()
        for case in cases:
            yield job(case)


_JOB: CaseJob | None = None


def _init_worker(job: CaseJob) -> None:
    global _JOB
    _JOB = job
    job.setup()


def _run_in_worker(case: Case) -> CaseOutput:
    assert _JOB is not None, "worker not initialised"
    return _JOB(case)


class ProcessExecutor:
    name = "process"

    def __init__(self, workers: int) -> None:
        self.workers = workers

    def run(self, cases: Sequence[Case], job: CaseJob) -> Iterator[CaseOutput]:
        with ProcessPoolExecutor(max_workers=self.workers, initializer=_init_worker, initargs=(job,)) as ex:
            futs = {ex.submit(_run_in_worker, c): c for c in cases}
            for fut in as_completed(futs):
                c = futs[fut]
                try:
                    yield fut.result()
                except Exception as exc:  # noqa: BLE001 - a crashed worker is this case's error
                    yield _lost(c, exc, "worker crashed")


def require_ray():
    try:
        import ray
    except ImportError:
        raise ConfigError("--executor ray needs the 'ray' package (pip install 'ray[default]'); "
                          "or use --executor local --workers N") from None
    return ray


class RayExecutor:
    name = "ray"

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.ray = require_ray()  # fails before anything is written

    def run(self, cases: Sequence[Case], job: CaseJob) -> Iterator[CaseOutput]:
        ray = self.ray
        if not ray.is_initialized():
            ray.init(ignore_reinit_error=True, log_to_driver=False)

        @ray.remote(num_cpus=1)
        def task(job: CaseJob, case: Case) -> CaseOutput:
            job.setup()
            return job(case)

        job_ref = ray.put(job)
        pending: dict = {}
        queue = list(cases)
        limit = max(1, self.workers)
        while queue or pending:
            while queue and len(pending) < limit:
                c = queue.pop(0)
                pending[task.remote(job_ref, c)] = c
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                c = pending.pop(ref)
                try:
                    yield ray.get(ref)
                except Exception as exc:  # noqa: BLE001 - a lost worker is this case's error
                    yield _lost(c, exc, "ray task failed")


def make_executor(name: str, workers: int) -> Executor:
    """``--executor`` and ``--workers`` as an executor; bad values are a ConfigError."""
    if name not in EXECUTORS:
        raise ConfigError(f"--executor {name!r}: choose one of {', '.join(EXECUTORS)}")
    if workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {workers}")
    if name == "ray":
        return RayExecutor(workers)
    return SerialExecutor() if workers == 1 else ProcessExecutor(workers)
