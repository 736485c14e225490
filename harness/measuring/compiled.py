"""Whether ``measure`` runs its per-pixel loops compiled: :func:`kernels` hands out :mod:`._kernels`.

numba is optional.  Without it (or with ``HARNESS_NUMPY_MAPS=1``) every caller takes its
numpy path, which computes the same sums in whole-array passes -- slower (``harness
bench`` then misses its target), never different beyond float32 rounding; the tests run
both paths against each other.  The first call imports numba (about 0.3 s) and loads the
kernels' machine code from numba's on-disk cache, compiling it (a few seconds, once per
installation and argument type) only when the cache has none.
"""

from __future__ import annotations

import os
from types import ModuleType

__all__ = ["kernels", "NUMPY_ENV"]

NUMPY_ENV = "HARNESS_NUMPY_MAPS"  # set to 1: use the numpy paths even where numba is installed

_KERNELS: ModuleType | bool | None = None


def kernels() -> ModuleType | None:
    """The compiled kernels module, or None where numba is missing or :data:`NUMPY_ENV` is 1."""
    global _KERNELS
    if os.environ.get(NUMPY_ENV) == "1":
        return None  # read on every call: a test (or a caller) may set it and clear it again
    if _KERNELS is None:
        try:
            from harness.measuring import _kernels
        except ImportError:
            _KERNELS = False
        else:
            _KERNELS = _kernels
    return _KERNELS or None
