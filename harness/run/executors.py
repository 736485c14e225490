"""Executors: where cases run.  One interface, three implementations.

An executor takes the selected cases and a picklable :class:`CaseJob` and yields one
:class:`~harness.run.case.CaseOutput` per case, in completion order, so the runner
records each case as it lands.  A case whose worker hangs, crashes or dies becomes that
case's error; the others go on.

* ``process`` — ``--workers N`` (N >= 1, so ``--workers 1`` too) long-lived local worker
  processes that isolate each case: a timeout (``--timeout``) kills and replaces its worker, a
  crash is retried once in a fresh worker (:mod:`harness.run.workers`).
* ``serial``  — in this process, one case after another: no isolation, no timeout (kept for
  the API and for debugging a backend under pdb; ``harness run`` does not use it).
* ``ray``     — one Ray task per case (``--executor ray``), on a local Ray instance or the
  cluster named by ``RAY_ADDRESS``; ``--workers`` caps the tasks in flight, ``--timeout``
  cancels a task that runs past it.
"""

from __future__ import annotations

import time
from typing import Iterator, Protocol, Sequence

from harness.errors import ConfigError
from harness.run.case import CaseOutput
from harness.run.job import CaseJob
from harness.suite.suites import Case
from harness.run.workers import IsolatingExecutor

ProcessExecutor = IsolatingExecutor  # ``--workers N``: the isolating local pool

__all__ = ["CaseJob", "Executor", "SerialExecutor", "ProcessExecutor", "RayExecutor", "make_executor", "EXECUTORS"]

EXECUTORS = ("local", "ray", "pipelined")


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


def require_ray():
    try:
        import ray
    except ImportError:
        raise ConfigError("--executor ray needs the 'ray' package (pip install 'ray[default]'); "
                          "or use --executor local --workers N") from None
    return ray


def _ray_task(job: CaseJob, case: Case) -> CaseOutput:
    """One case in a Ray worker."""
    job.setup()
    return job(case)


class RayExecutor:
    name = "ray"

    def __init__(self, workers: int, timeout: float | None = None) -> None:
        self.workers = workers
        self.timeout = timeout
        self.ray = require_ray()  # fails before anything is written

    def run(self, cases: Sequence[Case], job: CaseJob) -> Iterator[CaseOutput]:
        ray = self.ray
        if not ray.is_initialized():
            ray.init(ignore_reinit_error=True, log_to_driver=False)

        task = ray.remote(num_cpus=1)(_ray_task)
        job_ref = ray.put(job)
        pending: dict = {}
        queue = list(cases)
        limit = max(1, self.workers)
        started: dict = {}
        while queue or pending:
            while queue and len(pending) < limit:
                c = queue.pop(0)
                ref = task.remote(job_ref, c)
                pending[ref], started[ref] = c, time.monotonic()
            done, _ = ray.wait(list(pending), num_returns=1, timeout=1.0 if self.timeout else None)
            for ref in done:
                c = pending.pop(ref)
                try:
                    yield ray.get(ref)
                except Exception as exc:  # noqa: BLE001 - a lost worker is this case's error
                    yield _lost(c, exc, "ray task failed")
            if self.timeout:
                now = time.monotonic()
                for ref in [r for r in pending if now - started[r] >= self.timeout]:
                    c = pending.pop(ref)
                    ray.cancel(ref, force=True)
                    yield CaseOutput(c.id, None, {}, {}, {}, {}, f"timed out after {self.timeout:g} s; "
                                                                 "its ray task was cancelled")


def make_executor(name: str, workers: int, timeout: float | None = None) -> Executor:
    """``--executor``, ``--workers`` and ``--timeout`` as an executor; bad values are a ConfigError."""
    if name not in EXECUTORS:
        raise ConfigError(f"--executor {name!r}: choose one of {', '.join(EXECUTORS)}")
    if workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {workers}")
    if timeout is not None and not timeout > 0:
        raise ConfigError(f"--timeout must be > 0 seconds, got {timeout:g}")
    if name == "pipelined":  # stages in a worker per device, measuring in ``workers`` others (harness.run.pipelined)
        from harness.run.pipelined import PipelinedExecutor

        return PipelinedExecutor(workers, timeout)
    if name == "ray":
        return RayExecutor(workers, timeout)
    return ProcessExecutor(workers, timeout)
