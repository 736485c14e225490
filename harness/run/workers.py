"""The isolating worker pool: every case runs in a child process, so one case cannot take the run down.

One long-lived worker per slot (model loading is amortised across its cases); a worker is
replaced only after it crashed or was killed for a timeout:

* a case that runs past ``timeout`` seconds: its worker is killed (SIGKILL) and the case is an
  ``error`` "timed out after 5 s in stage denoise (backend 'x')" (the stage is what the worker's
  watchdog thread last saw on the main thread's stack); timeouts are not retried;
* a worker that dies mid-case (segfault, ``os._exit``, ``kill -9``, the OOM killer): the case is
  retried once in a fresh worker, then an ``error`` naming the signal or exit code;
* the other slots never notice: each slot is one :class:`multiprocessing.Process` and one duplex
  :func:`multiprocessing.Pipe`, and the parent waits on every pipe and process sentinel at once
  (:func:`multiprocessing.connection.wait`, with the nearest deadline as its timeout).
  ``concurrent.futures.ProcessPoolExecutor`` cannot do this: one dead worker breaks its pool and
  fails every pending future.

Start method and the fork server: :mod:`harness.run.workerstart` (``forkserver``; ``harness run``
starts it early, :func:`~harness.run.workerstart.prewarm`).  A worker adopts the
parent's working directory, environment and ``sys.path`` (what ``fork`` used to give it) before
:meth:`CaseJob.setup` (project pythonpath, thread counts).

An idle worker takes the next case of a pipeline no other worker is running, else of a (vector,
pipeline) none runs, else the next case: a pipeline's models then load in one worker rather than in
each, and a chunk of batched seeds (one vector and pipeline: a batch-capable generator renders the
chunk once and caches every seed of it) is not rendered by two workers at once.  Model-heavy
pipelines go first, and to the worker holding their models (:mod:`harness.run.case_order`).

No orphans: a worker asks the kernel for SIGKILL when its parent dies (Linux
``prctl(PR_SET_PDEATHSIG)``; its parent is the fork server, which exits when the run's process
does), and its watchdog thread exits the process when the parent's end of its private
"lifeline" pipe closes or its parent pid changes: whichever comes first, within 0.1 s.
Workers ignore SIGINT: a Ctrl-C reaches the whole process group, and the run's process decides
(it kills the workers and writes the partial report).
"""

from __future__ import annotations

import itertools
import os
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

from harness.run.case import CaseOutput
from harness.run.case_order import heavy_first, pick
from harness.run.worker import WHERE_BYTES, WORKER_NAME, where_in, worker_main
from harness.run.workerstart import PRELOAD, START_METHOD, context, death_reason, without_main

if TYPE_CHECKING:
    from multiprocessing.connection import Connection
    from pathlib import Path

    from harness.run.job import CaseJob
    from harness.suite.suites import Case

__all__ = ["IsolatingExecutor", "WorkerPool", "START_METHOD", "PRELOAD", "WORKER_NAME", "death_reason", "where_in"]

_STARTUP_TIMEOUT = 120.0  # a worker that is not ready by then counts as failing to start
_MAX_START_FAILURES = 3  # consecutive failures to start a worker: the remaining cases error


# ======================================================================================= the parent


@dataclass
class _Slot:
    proc: Any
    conn: Connection
    lifeline: Connection  # the parent's end; held open while the worker lives
    where: Any  # shared bytes: what the worker's main thread is doing
    started: float
    ready: bool = False
    case: Case | None = None
    crashes: int = 0  # how often this case already crashed a worker
    deadline: float | None = None
    reserved: tuple[Case, int] | None = None  # a crashed case, retried in this fresh worker first
    models: set[str] = field(default_factory=set)  # what its cases loaded (harness.run.case_order)
    dropped: bool = False
    exitcode: int | None = None

    def doing(self, *, exact: bool = False) -> str:
        """What the worker was doing ("" when unknown); ``exact``: only a pinned stage (for a crash)."""
        try:
            raw = bytes(self.where.value)
        except Exception:  # noqa: BLE001
            return ""
        if not raw or (exact and raw[:1] != b"P"):
            return ""
        return raw[1:].decode("utf-8", "replace")


class _Batch:
    """The cases of one :meth:`WorkerPool.run` call not yet handed out, and their first crashes."""

    def __init__(self, cases: Sequence[Case], run_dir: Path | None) -> None:
        self.models: dict[str, frozenset[str]] = {}  # pipeline -> its models (harness.run.case_order)
        self.queue: deque[tuple[Case, int]] = deque((c, 0) for c in heavy_first(cases, self.models))  # (case, crashes)
        self.first_crash: dict[str, str] = {}  # case id -> why its first worker died
        self.run_dir = run_dir

    def message(self, case: Case) -> tuple:
        return ("case", case) if self.run_dir is None else ("case", case, self.run_dir)

    def take(self, busy: set[tuple[str, str]], mine: set[str] = frozenset(),
             others: set[str] = frozenset()) -> tuple[Case, int]:
        """The next case for an idle worker (:func:`harness.run.case_order.pick`): ``busy``, the
        (vector, pipeline) the other workers run; ``mine``/``others``: the models loaded here/there."""
        none: frozenset[str] = frozenset()  # an item queued from outside (the pipelined executor's)
        queued = [(_group(c), self.models.get(c.pipeline.name, none)) for c, _ in itertools.islice(self.queue, 257)]
        i = pick(queued, busy, mine, others)
        item = self.queue[i]
        del self.queue[i]
        return item


def _group(case: Case) -> tuple[str, str]:
    return case.vector, case.pipeline.name


def _lost(case: Case, error: str) -> CaseOutput:
    return CaseOutput(case.id, None, {}, {}, {}, {"pipeline": case.pipeline.as_dict(), "seed": case.seed}, error)


class WorkerPool:
    """Long-lived isolating worker processes for one :class:`CaseJob` (see the module doc).

    :meth:`run` executes a batch of cases and may be called again (``harness run`` calls it once;
    a pytest session once per item, keeping its workers, their loaded models and stage caches
    between items); :meth:`close` stops the workers.  ``timeout``: seconds one case may run
    (None: no limit).  ``say``: where the pool reports a retry or a replaced worker.
    """

    def __init__(self, workers: int, timeout: float | None, job: CaseJob,
                 say: Callable[[str], None] | None = None) -> None:
        self.workers = workers
        self.timeout = timeout
        self.job = job
        self.say: Callable[[str], None] = say or (lambda s: None)
        self.on_dispatch: Callable[[Any], None] = lambda item: None  # each item handed to a worker
        self.slots: list[_Slot] = []
        self.start_failures = 0  # consecutive failures to start a worker
        self._ctx = None

    # -- one slot
    def _start(self) -> _Slot:
        if self._ctx is None:
            self._ctx = context()
        ctx = self._ctx
        # the worker adopts what fork would have given it (see the module doc)
        setup = {"cwd": os.getcwd(), "env": dict(os.environ), "sys_path": list(sys.path)}
        conn, child_conn = ctx.Pipe(duplex=True)
        life_r, life_w = ctx.Pipe(duplex=False)
        where = ctx.RawArray("c", WHERE_BYTES)
        proc = ctx.Process(target=worker_main, args=(child_conn, life_r, where, self.job, setup),
                           name="harness-worker", daemon=True)
        with without_main():
            proc.start()
        child_conn.close()
        life_r.close()
        return _Slot(proc, conn, life_w, where, time.monotonic())

    @staticmethod
    def _drop(slot: _Slot) -> int | None:
        """Kill (if alive) and reap the slot's worker; its exit code (idempotent)."""
        if slot.dropped:
            return slot.exitcode
        slot.dropped = True
        if slot.proc.is_alive():
            slot.proc.kill()
        slot.proc.join(5)
        for c in (slot.conn, slot.lifeline):
            try:
                c.close()
            except OSError:
                pass
        slot.exitcode = slot.proc.exitcode
        try:
            slot.proc.close()
        except ValueError:  # still running after SIGKILL and 5 s (uninterruptible sleep): leave it
            pass
        return slot.exitcode

    # -- a batch
    def run(self, cases: Sequence[Case], run_dir: Path | None = None) -> Iterator[CaseOutput]:
        """Execute ``cases`` (artifacts under ``run_dir``, default the job's); yield each output as
        it lands.  A case whose worker hangs or crashes comes back as that case's error."""
        if not cases:
            return
        batch = _Batch(cases, run_dir)
        self.start_failures = 0
        while len(self.slots) < min(self.workers, len(cases)):
            self.slots.append(self._start())
        finished = False
        try:
            while batch.queue or any(s.case is not None or s.reserved for s in self.slots):
                yield from self._round(batch)
            finished = True
        finally:
            if not finished:  # abandoned mid-batch: a busy worker would answer for a case nobody awaits
                for s in [s for s in self.slots if s.case is not None or s.reserved]:
                    self._drop(s)
                    self.slots.remove(s)

    def _round(self, batch: _Batch) -> list[CaseOutput]:
        """Hand out work, wait for the first message, death or deadline, and act on what came."""
        self._dispatch(batch)
        ready = self._wait()
        outs: list[CaseOutput] = []
        replace: list[_Slot] = []
        for s in self.slots:
            if self._receive(s, ready, batch, outs):
                replace.append(s)
        self._deadlines(outs, replace)
        self._replace(replace, batch)
        self._give_up_if_stuck(batch, outs)
        if outs:  # the freed workers start their next case while the caller records these
            self._dispatch(batch)
        return outs

    def _dispatch(self, batch: _Batch) -> None:
        now = time.monotonic()
        for s in self.slots:
            if s.ready and s.case is None and (s.reserved or batch.queue):
                busy = {_group(x.case) for x in self.slots if x.case is not None}
                others = set().union(*(x.models for x in self.slots if x is not s))
                case, crashes = s.reserved or batch.take(busy, s.models, others)
                s.models |= batch.models.get(case.pipeline.name, frozenset())
                s.reserved = None
                s.where.value = b""
                s.conn.send(batch.message(case))
                self.on_dispatch(case)
                s.case, s.crashes = case, crashes
                s.deadline = now + self.timeout if self.timeout else None

    def _wait(self) -> set:
        """Wait on every pipe and process sentinel at once, until the nearest deadline."""
        from multiprocessing.connection import wait

        now = time.monotonic()
        deadlines = [s.deadline for s in self.slots if s.case is not None and s.deadline is not None]
        deadlines += [s.started + _STARTUP_TIMEOUT for s in self.slots if not s.ready]
        wait_for = max(0.0, min(deadlines) - now) if deadlines else None
        return set(wait([s.conn for s in self.slots] + [s.proc.sentinel for s in self.slots], timeout=wait_for))

    def _receive(self, s: _Slot, ready: set, batch: _Batch, outs: list[CaseOutput]) -> bool:
        """Take the slot's message, if any; True when its worker died (and must be replaced)."""
        msg, eof = None, False
        if s.conn in ready or s.proc.sentinel in ready:
            try:
                if s.conn.poll():
                    msg = s.conn.recv()
            except (EOFError, OSError):
                eof = True
        if msg is not None and msg[0] == "ready":
            s.ready, self.start_failures = True, 0
            return False
        if msg is not None and msg[0] == "done":
            out: CaseOutput = msg[1]
            if s.case is not None and s.case.id in batch.first_crash:
                retried = f"{batch.first_crash[s.case.id]}; passed in a fresh worker"
                out.config = {**(out.config or {}), "retried": retried}
            s.case, s.deadline = None, None
            outs.append(out)
            return False
        if not eof and s.proc.sentinel not in ready and s.proc.is_alive():
            return False
        self._died(s, batch, outs)
        return True

    def _died(self, s: _Slot, batch: _Batch, outs: list[CaseOutput]) -> None:
        """The slot's worker died: its case is retried once in a fresh worker, then an error."""
        doing = s.doing(exact=True)
        code = self._drop(s)
        if s.case is None:
            if not s.ready:
                self.start_failures += 1
                self.say(f"worker failed to start ({death_reason(code)})")
            return
        case, why = s.case, f"worker {death_reason(code)}"
        where = doing or "this case"
        if s.crashes == 0:
            batch.first_crash[case.id] = f"{why} in {where}"
            self.say(f"retry {case.id}: {why} in {where}; running it again in a fresh worker")
            s.reserved, s.case = (case, 1), None
        else:
            first = batch.first_crash.get(case.id, why)
            again = f"{why} again" + ("" if first == f"{why} in {where}" else f" in {where}")
            outs.append(_lost(case, f"{first}; retried once in a fresh worker: {again}"))
            s.case = None

    def _deadlines(self, outs: list[CaseOutput], replace: list[_Slot]) -> None:
        """Kill a worker whose case ran past ``timeout``, or that did not start in time."""
        now = time.monotonic()
        for s in self.slots:
            if s in replace:
                continue
            if s.case is not None and s.deadline is not None and now >= s.deadline:
                if s.conn.poll():  # its result came in just now: take it on the next round
                    continue
                doing = s.doing() or f"case {s.case.id}"
                self._drop(s)
                replace.append(s)
                outs.append(_lost(s.case, f"timed out after {self.timeout:g} s in {doing}; its worker was killed"))
                s.case = None
            elif not s.ready and now - s.started >= _STARTUP_TIMEOUT:
                self._drop(s)
                replace.append(s)
                self.start_failures += 1
                self.say(f"worker not ready after {_STARTUP_TIMEOUT:g} s: killed")

    def _replace(self, replace: list[_Slot], batch: _Batch) -> None:
        """A fresh worker for a dead or killed one, while there is work for it."""
        for s in replace:
            self.slots.remove(s)
            if self.start_failures >= _MAX_START_FAILURES:
                if s.reserved:
                    batch.queue.appendleft(s.reserved)
                continue
            busy = sum(x.case is not None or x.reserved is not None for x in self.slots)
            if s.reserved or len(self.slots) < min(self.workers, len(batch.queue) + busy):
                new = self._start()
                new.reserved = s.reserved
                self.slots.append(new)

    def _give_up_if_stuck(self, batch: _Batch, outs: list[CaseOutput]) -> None:
        """Workers keep failing to start: every remaining case errors instead of looping."""
        if self.start_failures < _MAX_START_FAILURES or any(s.ready for s in self.slots):
            return
        reason = f"worker processes failed to start {self.start_failures} times in a row"
        for s in self.slots:
            if s.reserved:
                batch.queue.appendleft(s.reserved)
                s.reserved = None
        while batch.queue:
            outs.append(_lost(batch.queue.popleft()[0], reason))

    def close(self, *, graceful: bool = True, wait: bool = True) -> None:
        """Stop every worker: ``graceful`` lets idle ones leave on their own, briefly; then kill.

        ``wait=False`` (with ``graceful``): tell them to stop and return at once.  A worker told so
        has sent every result; what is left is its process's exit (unmapping its models: 0.1-0.3 s
        for smoke's), which need not delay the run's report.  It exits on the stop, or when its
        watchdog sees the lifeline closed; multiprocessing reaps it (a daemon) at this process's exit."""
        if graceful:
            for s in self.slots:
                try:
                    s.conn.send(("stop",))
                except (OSError, ValueError):
                    pass
            if not wait:
                for s in self.slots:
                    s.dropped = True  # leaving on its own: never killed now
                    for c in (s.conn, s.lifeline):
                        c.close()
                self.slots = []
                return
            end = time.monotonic() + 2.0
            for s in self.slots:
                s.proc.join(max(0.0, end - time.monotonic()))
        for s in self.slots:
            self._drop(s)
        self.slots = []



class IsolatingExecutor:
    """``--workers N`` local worker processes (N >= 1), isolating each case (see the module doc):
    a :class:`WorkerPool` for one batch of cases.

    ``timeout``: seconds one case may run (None: no limit).  ``say``: where the pool reports a
    retry or a replaced worker (the runner's progress lines); ``on_dispatch``: called with each case
    a worker starts (a crashed case again when retried).
    """

    name = "process"

    def __init__(self, workers: int, timeout: float | None = None) -> None:
        self.workers = workers
        self.timeout = timeout
        self.say: Callable[[str], None] = lambda s: None
        self.on_dispatch: Callable[[Case], None] = lambda case: None

    def run(self, cases: Sequence[Case], job: CaseJob) -> Iterator[CaseOutput]:
        if not cases:
            return
        pool = WorkerPool(self.workers, self.timeout, job, say=self.say)
        pool.on_dispatch = self.on_dispatch
        finished = False
        try:
            yield from pool.run(cases)
            finished = True
        finally:  # a finished batch: the workers leave on their own while the run writes its report
            pool.close(graceful=finished, wait=not finished)
