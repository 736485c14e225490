"""How the isolating pool (:mod:`harness.run.workers`) starts its worker processes.

Start method: ``forkserver`` (override with ``HARNESS_START_METHOD=fork|spawn|forkserver``).
``fork`` copies a parent that may hold threads (OpenCV, OpenBLAS, torch/OpenMP pools, pytest
plugins): a child can deadlock on a lock a vanished thread held, and every later fork copies
whatever the parent accumulated, open run-folder locks included.  ``spawn`` is safe but re-imports
numpy/scipy/skimage/OpenCV in every worker and every replacement (about 1 s each here).
``forkserver`` forks workers from a clean single-threaded server that imported those once
(:data:`PRELOAD`): a replacement after a crash costs tens of milliseconds, not a second.

:func:`prewarm` (``harness run``, once it has read its suite) and :func:`start_prewarmed` (the
run's first case that the case memo does not hold) start that server as soon as a case must
execute, so its imports (1-2 s of CPU) overlap the memo's look-ups and the replayed cases instead
of delaying the first case, and a run recorded entirely from the memo never starts it.  Where the
memo holds no case at all (a cold cache, ``--no-cache``: ``harness run`` checks) every case must
execute, and ``prewarm(..., start=True)`` starts the server at once, while the run still plans.
"""

from __future__ import annotations

import os
import signal
import sys
import types
from contextlib import contextmanager
from typing import Iterator

__all__ = ["PRELOAD", "START_METHOD", "SERVER_MARK", "death_reason", "without_main", "context", "prewarm",
           "start_prewarmed"]

#: What the fork server imports once, so each worker starts warm (a missing one is skipped).  Not
#: OpenCV (it starts a thread at import) nor torch (thread pools, and most runs never need it), nor
#: scipy.stats (about half of the server's start-up, and only the driver's distribution judging uses
#: it: workers execute and measure, they never judge).  :mod:`harness.run.warmup` (last) loads the
#: measuring kernels once for every worker.
PRELOAD = ["harness.run.workers", "harness.run.worker", "harness.measuring.driver",
           "harness.run.measure_cache", "harness.suite.vectors", "harness.imageio",
           "harness.stages.detect", "harness.stages.mask", "harness.stages.inpaint",
           "harness.stages.denoise", "harness.stages.upscale", "skimage.io",
           "skimage.color", "skimage.restoration", "PIL.Image", "harness.run.warmup"]
START_METHOD = os.environ.get("HARNESS_START_METHOD", "forkserver")


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


#: Set in the environment while a fork server may start (:func:`without_main`): the server reads it
#: (:mod:`harness.run.warmup`) to know it is one.  Workers never see it (they adopt the run's
#: environment, taken before).
SERVER_MARK = "HARNESS_FORK_SERVER"


@contextmanager
def without_main() -> Iterator[None]:
    """Start a worker (or the fork server) without the parent's ``__main__``: multiprocessing would
    re-run the parent's script in every worker (spawn/forkserver), which breaks a script that calls
    ``run_suite`` without an ``if __name__ == "__main__"`` guard and costs an import at best.
    Workers never need it: backends are imported by name, the job holds only harness objects.
    A fork server started meanwhile finds :data:`SERVER_MARK` in its environment."""
    main = sys.modules.get("__main__")
    sys.modules["__main__"] = types.ModuleType("__main__")
    marked = SERVER_MARK not in os.environ
    if marked:
        os.environ[SERVER_MARK] = "1"
    try:
        yield
    finally:
        if marked:
            os.environ.pop(SERVER_MARK, None)
        if main is not None:
            sys.modules["__main__"] = main


def context():
    """The multiprocessing context of :data:`START_METHOD` (spawn where it is not available)."""
    import multiprocessing as mp

    method = START_METHOD if START_METHOD in mp.get_all_start_methods() else "spawn"
    ctx = mp.get_context(method)
    if method == "forkserver":
        ctx.set_forkserver_preload(PRELOAD)
    return ctx


_WANTED: list[bool] = []  # [True] once prewarm asked for the fork server and it has not started yet


def prewarm(threads: int, *, start: bool = False) -> None:
    """Get ready to start the fork server: ``threads`` applied now, the server started by
    :func:`start_prewarmed` (a no-op for other start methods); ``start``: now (the caller knows a case
    must execute: the run's case memo holds no case).

    ``threads``: the run's thread count (:func:`harness.threads.set_threads`): the server inherits
    this process's environment, and the BLAS/OpenMP libraries it loads read their thread counts
    from it once, for every worker forked from it.  The start itself waits for the run to know that
    a case must execute (:mod:`harness.run.case_memo` calls :func:`start_prewarmed` at its first
    miss): a run whose every case comes from the memo never pays the server's imports (1-2 s of CPU
    on a machine that may have little to spare)."""
    from harness.threads import set_threads

    if context().get_start_method() != "forkserver":
        return
    set_threads(threads)
    _WANTED[:] = [True]
    if start:
        start_prewarmed()


def start_prewarmed() -> bool:
    """Start the fork server :func:`prewarm` asked for, now (it imports :data:`PRELOAD` in the
    background while this process goes on); True when this call started it."""
    if not _WANTED:
        return False
    _WANTED.clear()
    from multiprocessing import forkserver

    with without_main():
        forkserver.ensure_running()
    return True
