"""SIGINT and SIGTERM during a run: :class:`RunInterrupted`, raised where a case record cannot be
torn (see :mod:`harness.run.runner`)."""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

if TYPE_CHECKING:
    from harness.report.schema import Report

__all__ = ["RunInterrupted", "SignalGuard"]


class RunInterrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM stopped the run; its partial report (``complete: false``) is written."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.run_dir: Path | None = None
        self.report: Report | None = None

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


class SignalGuard:
    """SIGINT/SIGTERM raise :class:`RunInterrupted` in the main thread, but never while a case is
    being recorded (:meth:`deferred`): then they wait until it is.  A second signal raises at once."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.depth = 0
        self.held = False
        self.saved: dict[int, Any] = {}

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # signals are only delivered to the main thread
        for sig in (signal.SIGINT, signal.SIGTERM):
            self.saved[sig] = signal.getsignal(sig)
            signal.signal(sig, self._handle)

    def restore(self) -> None:
        for sig, handler in self.saved.items():
            signal.signal(sig, handler)
        self.saved.clear()

    def _handle(self, signum: int, frame) -> None:
        first = self.signum is None
        if first:
            self.signum = signum
        if self.held:
            return
        if self.depth == 0 or not first:
            raise RunInterrupted(signum)

    @contextmanager
    def deferred(self) -> Iterator[None]:
        self.depth += 1
        try:
            yield
        finally:
            self.depth -= 1
        if self.depth == 0 and self.signum is not None and not self.held:
            raise RunInterrupted(self.signum)

    def hold(self) -> None:
        """From now on signals are only noted: the report is being written."""
        self.held = True
