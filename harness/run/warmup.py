"""Imported by the pool's fork server (:data:`harness.run.workerstart.PRELOAD`, last): pay once, in
the server, the first-use costs every worker would otherwise pay again.

The measuring kernels (:mod:`harness.measuring._kernels`) are compiled once and cached on disk,
yet a new process still imports numba and loads every kernel's machine code from that cache on its
first ``measure`` (0.5-1.5 s of CPU per worker here, more than the measurement).  Measuring one
small synthetic image here does it once; the forked workers inherit the loaded kernels.  numba's
compiler runs on this thread only (no parallel kernels, so no threading layer starts): forking
after it is as safe as forking after numpy.

Never raises: a failure here only means each worker warms up on its own, as before.

The server also leaves quickly (:func:`exit_quickly`): when the run's process is gone it exits at
once, without tearing down numba, skimage and the rest one module at a time (0.1 s here).  It
holds the run's stderr, so a caller that reads that pipe to its end (CI, ``harness bench``) waited
for that teardown after the run had finished.
"""

from __future__ import annotations

import os
import sys

__all__ = ["warm_measuring", "exit_quickly"]


def warm_measuring() -> bool:
    """Measure a 64² image with a mask and anchors (every kernel and code path of ``measure``);
    True when it ran."""
    try:
        import numpy as np

        from harness.measuring.driver import measure

        rng = np.random.default_rng(0)
        image = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
        mask = np.zeros((64, 64), np.float32)
        mask[16:32, 16:40] = 1.0
        anchors = np.zeros((64, 64), np.float32)
        anchors[40:56, 8:24] = 1.0
        measure(image, mask, anchors=anchors, tile=16, ring=4)
        return True
    except Exception:  # noqa: BLE001 - best effort (see the module doc)
        return False


def exit_quickly() -> bool:
    """In the fork server only (its environment holds :data:`~harness.run.workerstart.SERVER_MARK`,
    taken out here): exit with ``os._exit(0)`` after flushing stdio, as the first thing at exit.
    The server has nothing to clean up (its workers were reaped; they themselves never run exit
    handlers: a forked child ends in ``os._exit``).  True when registered."""
    import atexit

    from harness.run.workerstart import SERVER_MARK

    if os.environ.pop(SERVER_MARK, None) != "1":
        return False
    atexit.register(_exit_now)  # registered last, so it runs first
    return True


def _exit_now() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001 - a closed stream: nothing to flush
            pass
    os._exit(0)


warm_measuring()
exit_quickly()
