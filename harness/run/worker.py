"""The worker side of the isolating pool (:mod:`harness.run.workers`): one process that runs
cases for its parent, dies with it, ignores SIGINT, and says which stage it is in."""

from __future__ import annotations

import os
import signal
import sys
import threading
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Iterator

from harness.run.case import CaseOutput

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

    from harness.run.job import CaseJob

__all__ = ["worker_main", "where_in", "WORKER_NAME", "WHERE_BYTES"]

WORKER_NAME = "harness-worker"  # a worker's process name (Linux: /proc/PID/comm)
WHERE_BYTES = 240  # the shared buffer in which a worker says where it is (stage, backend)
_TICK = 0.1  # the worker watchdog's period: parent checks and stage samples

def _die_with_parent() -> None:
    """Ask the kernel to SIGKILL this process when its parent dies, and name it ``harness-worker``
    (``ps``, ``/proc/PID/comm``): Linux only, elsewhere a no-op."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG = 1
        libc.prctl(15, ctypes.c_char_p(WORKER_NAME.encode()), 0, 0, 0)  # PR_SET_NAME = 15
    except (OSError, AttributeError):
        pass


def _adopt(setup: dict[str, Any]) -> None:
    """Take the run process's working directory, environment and import path."""
    env = setup["env"]
    for k in [k for k in os.environ if k not in env]:
        del os.environ[k]
    os.environ.update(env)
    try:
        os.chdir(setup["cwd"])
    except OSError:
        pass
    sys.path[:] = list(setup["sys_path"]) + [p for p in sys.path if p not in setup["sys_path"]]


def where_in(frame) -> str:
    """What a worker is doing, from its main thread's stack: ``stage denoise (backend 'tv')``,
    ``measure``, ... (the outermost recognised frame: a backend that calls another backend is
    still the stage it was called for); "" when nothing is recognised."""
    chain = []
    while frame is not None:
        chain.append(frame)
        frame = frame.f_back
    for f in reversed(chain):  # outermost first
        code = f.f_code
        fn = code.co_filename.replace(os.sep, "/")
        name = code.co_name
        if "/harness/" not in fn:
            continue
        try:
            if name == "run_stage" and fn.endswith("/stages/base.py"):
                b = f.f_locals.get("backend")
                return f"stage {getattr(b, 'stage', '?')} (backend {getattr(b, 'name', '?')!r})"
            if name == "build_backend" and fn.endswith("/stages/base.py"):
                loc = f.f_locals
                return f"stage {loc.get('stage', '?')} (loading backend {loc.get('name', '?')!r})"
        except Exception:  # noqa: BLE001 - a sample is best effort
            return ""
        if name == "generate_base" and fn.endswith("/run/generation.py"):
            return "stage generate"
        if "/harness/measuring/" in fn:
            return "measure"
        if name == "save_png":
            return "saving artifacts"
        if "/harness/suite/vectors/" in fn:
            return "vector rendering"
    return ""


class _Where:
    """What the worker's main thread is doing, in shared memory the parent reads after a timeout
    or a crash.  ``P`` + text: pinned by execute_case's stage hook on entry to a stage (exact, even for a
    crash on the stage's first instruction); ``S`` + text: sampled from the stack by the
    watchdog every 0.1 s between stages (exact for a hang, possibly stale for a crash)."""

    def __init__(self, buf: Any) -> None:
        self.buf = buf
        self.lock = threading.Lock()
        self.pinned: str | None = None

    def _put(self, kind: bytes, text: str) -> None:
        self.buf.value = kind + text.encode("utf-8", "replace")[:WHERE_BYTES - 2]

    def pin(self, text: str) -> bool:
        with self.lock:
            if self.pinned is not None:  # a backend calling another backend: the outer stage it is
                return False
            self.pinned = text
            self._put(b"P", text)
            return True

    @contextmanager
    def at(self, text: str) -> Iterator[None]:
        """Pin ``text`` (the stage and backend) while a backend loads or runs."""
        mine = self.pin(text)
        try:
            yield
        finally:
            if mine:
                self.unpin()

    def unpin(self) -> None:
        with self.lock:
            self.pinned = None
            self._put(b"S", "")

    def sample(self, text: str) -> None:
        with self.lock:
            if self.pinned is None:
                self._put(b"S", text)


def _watch(lifeline: Connection, ppid: int, where: _Where, main_ident: int) -> None:
    """The worker's watchdog thread: exit when the parent is gone; sample what the main thread does."""
    while True:
        try:
            if lifeline.poll(_TICK):  # the parent never writes: readable means EOF, the parent is gone
                os._exit(70)
        except (EOFError, OSError):
            os._exit(70)
        if os.getppid() != ppid:
            os._exit(70)
        if where.pinned is not None:
            continue
        frame = sys._current_frames().get(main_ident)
        text = where_in(frame) if frame is not None else ""
        del frame
        where.sample(text)


def worker_main(conn: Connection, lifeline: Connection, where: Any, job: CaseJob, setup: dict[str, Any]) -> None:
    """A worker process: set up once, then run the cases it is sent, one at a time."""
    import faulthandler

    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    faulthandler.enable(all_threads=False)  # a crashing backend's Python stack goes to the run's stderr
    ppid = os.getppid()
    tracker = _Where(where)
    threading.Thread(target=_watch, args=(lifeline, ppid, tracker, threading.main_thread().ident),
                     name="harness-watchdog", daemon=True).start()
    _adopt(setup)
    job.setup()
    conn.send(("ready", os.getpid()))
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if msg[0] != "case":  # ("case", case[, run_dir]) or ("stop",)
            return
        case = msg[1]
        out = job(case, stage_hook=tracker.at, run_dir=msg[2] if len(msg) > 2 else None)
        try:
            conn.send(("done", out))
        except (EOFError, OSError):
            return
        except Exception as exc:  # noqa: BLE001 - e.g. a result that does not pickle
            conn.send(("done", CaseOutput(case.id, None, out.stages, out.timings, out.artifacts, {},
                                          f"the case's result could not be sent back: {type(exc).__name__}: {exc}")))
