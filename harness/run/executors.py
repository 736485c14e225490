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
* ``ray``     — long-lived Ray actors that hold the loaded models (``--executor ray``), on a
  local Ray or the cluster named by ``--ray-address`` / ``RAY_ADDRESS``, with the same crash,
  retry and timeout rules (:mod:`harness.run.ray_executor`, imported only when asked for).
"""

from __future__ import annotations

from typing import Callable, Iterator, Protocol, Sequence

from harness.errors import ConfigError
from harness.run.case import CaseOutput
from harness.run.job import CaseJob
from harness.suite.suites import Case
from harness.run.workers import IsolatingExecutor

ProcessExecutor = IsolatingExecutor  # ``--workers N``: the isolating local pool

__all__ = ["CaseJob", "Executor", "SerialExecutor", "ProcessExecutor", "make_executor", "EXECUTORS"]

EXECUTORS = ("local", "ray", "pipelined")


class Executor(Protocol):
    name: str

    def run(self, cases: Sequence[Case], job: CaseJob) -> Iterator[CaseOutput]:
        """Execute every case; yield each output as it completes (any order)."""


class SerialExecutor:
    name = "serial"

    def __init__(self) -> None:
        self.on_dispatch: Callable[[Case], None] = lambda case: None

    def run(self, cases: Sequence[Case], job: CaseJob) -> Iterator[CaseOutput]:
        job.setup()
        for case in cases:
            self.on_dispatch(case)
            yield job(case)


def __getattr__(name: str):
    """``RayExecutor`` and ``require_ray`` from :mod:`harness.run.ray_executor`, imported on first use."""
    if name in ("RayExecutor", "require_ray"):
        from harness.run import ray_executor

        return getattr(ray_executor, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def make_executor(name: str, workers: int, timeout: float | None = None, *, address: str | None = None) -> Executor:
    """``--executor``, ``--workers`` and ``--timeout`` as an executor; bad values are a ConfigError.
    ``address``: the Ray cluster of ``--executor ray`` (default ``RAY_ADDRESS``, else a local Ray)."""
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
        from harness.run.ray_executor import RayExecutor

        return RayExecutor(workers, timeout, address)
    if address is not None:
        raise ConfigError("--ray-address needs --executor ray")
    return ProcessExecutor(workers, timeout)
