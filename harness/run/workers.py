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

Start method: ``forkserver`` (override with ``HARNESS_START_METHOD=fork|spawn|forkserver``).
``fork`` copies a parent that may hold threads (OpenCV, OpenBLAS, torch/OpenMP pools, pytest
plugins): a child can deadlock on a lock a vanished thread held, and every later fork copies
whatever the parent accumulated, open run-folder locks included.  ``spawn`` is safe but re-imports
numpy/scipy/skimage/OpenCV in every worker and every replacement (about 1 s each here).
``forkserver`` forks workers from a clean single-threaded server that imported those once
(:data:`PRELOAD`): a replacement after a crash costs tens of milliseconds, not a second.  A
worker then adopts the parent's working directory, environment and ``sys.path`` (what ``fork``
used to give it) before :meth:`CaseJob.setup` (project pythonpath, thread counts) as before.

No orphans: a worker asks the kernel for SIGKILL when its parent dies (Linux
``prctl(PR_SET_PDEATHSIG)``; its parent is the fork server, which exits when the run's process
does), and its watchdog thread exits the process when the parent's end of its private
"lifeline" pipe closes or its parent pid changes: whichever comes first, within 0.1 s.
Workers ignore SIGINT: a Ctrl-C reaches the whole process group, and the run's process decides
(it kills the workers and writes the partial report).
"""

from __future__ import annotations

import os
import signal
import sys
import time
import types
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

from harness.run.case import CaseOutput
from harness.run.worker import WHERE_BYTES, WORKER_NAME, where_in, worker_main

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

    from harness.run.executors import CaseJob
    from harness.suite.suites import Case

__all__ = ["IsolatingExecutor", "START_METHOD", "PRELOAD", "WORKER_NAME", "death_reason", "where_in"]

#: What the fork server imports once, so each worker starts warm (a missing one is skipped).  Not
#: OpenCV (it starts a thread at import) nor torch (thread pools, and most runs never need it).
PRELOAD = ["harness.run.workers", "harness.run.worker", "harness.measuring.driver", "harness.suite.vectors", "harness.imageio",
           "harness.stages.detect", "harness.stages.mask", "harness.stages.inpaint",
           "harness.stages.denoise", "harness.stages.upscale", "scipy.stats", "skimage.io",
           "skimage.color", "skimage.restoration", "PIL.Image"]
START_METHOD = os.environ.get("HARNESS_START_METHOD", "forkserver")
_STARTUP_TIMEOUT = 120.0  # a worker that is not ready by then counts as failing to start
_MAX_START_FAILURES = 3  # consecutive failures to start a worker: the remaining cases error


# ======================================================================================= the parent


def death_reason(exitcode: int | None) -> str:
    """``killed by SIGSEGV``, ``exited with code 3``."""
    if exitcode is None:
        return "vanished"
    if exitcode < 0:
        try:
            return f"killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exited with code {exitcode}"


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


@contextmanager
def _without_main() -> Iterator[None]:
    """Start a worker without the parent's ``__main__``: multiprocessing would re-run the parent's
    script in every worker (spawn/forkserver), which breaks a script that calls ``run_suite``
    without an ``if __name__ == "__main__"`` guard and costs an import at best.  Workers never
    need it: backends are imported by name, the job holds only harness objects."""
    main = sys.modules.get("__main__")
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        if main is not None:
            sys.modules["__main__"] = main


def _context():
    import multiprocessing as mp

    method = START_METHOD if START_METHOD in mp.get_all_start_methods() else "spawn"
    ctx = mp.get_context(method)
    if method == "forkserver":
        ctx.set_forkserver_preload(PRELOAD)
    return ctx


class IsolatingExecutor:
    """``--workers N`` local worker processes (N >= 1), isolating each case (see the module doc).

    ``timeout``: seconds one case may run (None: no limit).  ``say``: where the pool reports a
    retry or a replaced worker (the runner's progress lines).
    """

    name = "process"

    def __init__(self, workers: int, timeout: float | None = None) -> None:
        self.workers = workers
        self.timeout = timeout
        self.say: Callable[[str], None] = lambda s: None

    # -- one slot
    def _start(self, ctx, job: CaseJob, setup: dict[str, Any]) -> _Slot:
        conn, child_conn = ctx.Pipe(duplex=True)
        life_r, life_w = ctx.Pipe(duplex=False)
        where = ctx.RawArray("c", WHERE_BYTES)
        proc = ctx.Process(target=worker_main, args=(child_conn, life_r, where, job, setup),
                           name="harness-worker", daemon=True)
        with _without_main():
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

    @staticmethod
    def _lost(case: Case, error: str) -> CaseOutput:
        return CaseOutput(case.id, None, {}, {}, {}, {"pipeline": case.pipeline.as_dict(), "seed": case.seed}, error)

    def run(self, cases: Sequence[Case], job: CaseJob) -> Iterator[CaseOutput]:
        from multiprocessing.connection import wait

        if not cases:
            return
        ctx = _context()
        setup = {"cwd": os.getcwd(), "env": dict(os.environ), "sys_path": list(sys.path)}
        queue: deque[tuple[Case, int]] = deque((c, 0) for c in cases)
        first_crash: dict[str, str] = {}
        slots: list[_Slot] = []
        start_failures = 0
        finished = False
        try:
            for _ in range(min(self.workers, len(cases))):
                slots.append(self._start(ctx, job, setup))
            while queue or any(s.case is not None or s.reserved for s in slots):
                now = time.monotonic()
                for s in slots:  # dispatch
                    if s.ready and s.case is None and (s.reserved or queue):
                        case, crashes = s.reserved or queue.popleft()
                        s.reserved = None
                        s.where.value = b""
                        s.conn.send(("case", case))
                        s.case, s.crashes = case, crashes
                        s.deadline = now + self.timeout if self.timeout else None
                deadlines = [s.deadline for s in slots if s.case is not None and s.deadline is not None]
                deadlines += [s.started + _STARTUP_TIMEOUT for s in slots if not s.ready]
                wait_for = max(0.0, min(deadlines) - now) if deadlines else None
                ready = set(wait([s.conn for s in slots] + [s.proc.sentinel for s in slots], timeout=wait_for))
                outs: list[CaseOutput] = []
                replace: list[_Slot] = []
                for s in slots:
                    msg, eof = None, False
                    if s.conn in ready or s.proc.sentinel in ready:
                        try:
                            if s.conn.poll():
                                msg = s.conn.recv()
                        except (EOFError, OSError):
                            eof = True
                    if msg is not None and msg[0] == "ready":
                        s.ready, start_failures = True, 0
                        continue
                    if msg is not None and msg[0] == "done":
                        out: CaseOutput = msg[1]
                        if s.case is not None and s.case.id in first_crash:
                            out.config = {**(out.config or {}),
                                          "retried": f"{first_crash[s.case.id]}; passed in a fresh worker"}
                        s.case, s.deadline = None, None
                        outs.append(out)
                        continue
                    if not eof and s.proc.sentinel not in ready and s.proc.is_alive():
                        continue
                    # the worker died
                    doing = s.doing(exact=True)
                    code = self._drop(s)
                    replace.append(s)
                    if s.case is None:
                        if not s.ready:
                            start_failures += 1
                            self.say(f"worker failed to start ({death_reason(code)})")
                        continue
                    case, why = s.case, f"worker {death_reason(code)}"
                    where = doing or "this case"
                    if s.crashes == 0:
                        first_crash[case.id] = f"{why} in {where}"
                        self.say(f"retry {case.id}: {why} in {where}; running it again in a fresh worker")
                        s.reserved, s.case = (case, 1), None
                    else:
                        first = first_crash.get(case.id, why)
                        again = f"{why} again" + ("" if first == f"{why} in {where}" else f" in {where}")
                        outs.append(self._lost(case, f"{first}; retried once in a fresh worker: {again}"))
                        s.case = None
                now = time.monotonic()
                for s in slots:  # deadlines
                    if s in replace:
                        continue
                    if s.case is not None and s.deadline is not None and now >= s.deadline:
                        if s.conn.poll():  # its result came in just now: take it on the next round
                            continue
                        doing = s.doing() or f"case {s.case.id}"
                        self._drop(s)
                        replace.append(s)
                        outs.append(self._lost(s.case, f"timed out after {self.timeout:g} s in {doing}; "
                                                       "its worker was killed"))
                        s.case = None
                    elif not s.ready and now - s.started >= _STARTUP_TIMEOUT:
                        self._drop(s)
                        replace.append(s)
                        start_failures += 1
                        self.say(f"worker not ready after {_STARTUP_TIMEOUT:g} s: killed")
                for s in replace:  # a fresh worker for a dead or killed one, while there is work for it
                    slots.remove(s)
                    if start_failures >= _MAX_START_FAILURES:
                        if s.reserved:
                            queue.appendleft(s.reserved)
                        continue
                    busy = sum(x.case is not None or x.reserved is not None for x in slots)
                    if s.reserved or len(slots) < min(self.workers, len(queue) + busy):
                        new = self._start(ctx, job, setup)
                        new.reserved = s.reserved
                        slots.append(new)
                if start_failures >= _MAX_START_FAILURES and not any(s.ready for s in slots):
                    reason = f"worker processes failed to start {start_failures} times in a row"
                    for s in slots:
                        if s.reserved:
                            queue.appendleft(s.reserved)
                            s.reserved = None
                    while queue:
                        outs.append(self._lost(queue.popleft()[0], reason))
                yield from outs
            finished = True
        finally:
            if finished:  # a graceful stop: let workers leave on their own, briefly
                for s in slots:
                    try:
                        s.conn.send(("stop",))
                    except (OSError, ValueError):
                        pass
                end = time.monotonic() + 2.0
                for s in slots:
                    s.proc.join(max(0.0, end - time.monotonic()))
            for s in slots:
                self._drop(s)
