"""Imported by the pool's fork server (:data:`harness.run.workerstart.PRELOAD`, last): pay once, in
the server, the first-use costs every worker would otherwise pay again.

The measuring kernels (:mod:`harness.measuring._kernels`) are compiled once and cached on disk,
yet a new process still imports numba and loads every kernel's machine code from that cache on its
first ``measure`` (0.5-1.5 s of CPU per worker here, more than the measurement).  Measuring one
small synthetic image here does it once; the forked workers inherit the loaded kernels.  numba's
compiler runs on this thread only (no parallel kernels, so no threading layer starts): forking
after it is as safe as forking after numpy.

Never raises: a failure here only means each worker warms up on its own, as before.
"""

from __future__ import annotations

__all__ = ["warm_measuring"]


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


warm_measuring()
