"""Compiled kernels (numba) for the per-pixel work of ``measure`` that numpy can only do in many passes.

Imported only through :func:`harness.measuring.maps.kernels`, which falls back to
the numpy code when numba is not installed (the numpy code is also the reference
the kernels are tested against: ``tests/measuring/test_maps.py``).  Each kernel is
compiled on first use and cached on disk (``cache=True``: numba writes the machine
code beside this file, or to its user-wide cache when this directory is read-only),
so a new process loads it instead of compiling it.

``fastmath`` lets LLVM reorder the float32 sums inside one cell row so that it can
vectorise them: a partial sum covers at most two grid strides of values, as the
numpy path's does, so the rounding is of the same size (about 1e-7 relative).
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["cell_maps", "N_CELL_MAPS"]

#: Rows of :func:`cell_maps`' output: centred Y, Cb, Cr; their squares; chroma |(Cb, Cr)|;
#: squared gradient (forward differences, both axes) of Y, Cb, Cr.
N_CELL_MAPS = 10


@njit(cache=True, fastmath=True, nogil=True)
def cell_maps(ycc, means, stride, ncy, ncx, out):  # pragma: no cover - compiled; tested through maps
    """Add the :data:`N_CELL_MAPS` per-pixel maps of ``ycc`` ``(3, H, W)`` float32, summed over the grid's
    cells (``stride`` px, the last row/column of cells taking the remainder), to ``out``
    ``(N_CELL_MAPS, ncy, ncx)`` float64.

    Every row adds each map into a float32 accumulator per column (a plain element-wise
    loop over the row, which LLVM vectorises); at the end of a row of cells the columns are
    summed cell by cell into ``out`` and the accumulators cleared.
    """
    _, h, w = ycc.shape
    acc = np.zeros((10, w), np.float32)
    m0, m1, m2 = means[0], means[1], means[2]
    for y in range(h):
        cy = min(y // stride, ncy - 1)
        yn = y + 1 if y + 1 < h else y  # the last row has no vertical neighbour: difference 0
        r0, r1, r2 = ycc[0, y], ycc[1, y], ycc[2, y]
        n0, n1, n2 = ycc[0, yn], ycc[1, yn], ycc[2, yn]
        for x in range(w):
            v0, v1, v2 = r0[x], r1[x], r2[x]
            c0, c1, c2 = v0 - m0, v1 - m1, v2 - m2
            acc[0, x] += c0
            acc[1, x] += c1
            acc[2, x] += c2
            acc[3, x] += c0 * c0
            acc[4, x] += c1 * c1
            acc[5, x] += c2 * c2
            acc[6, x] += np.sqrt(v1 * v1 + v2 * v2)
            e0, e1, e2 = n0[x] - v0, n1[x] - v1, n2[x] - v2
            acc[7, x] += e0 * e0
            acc[8, x] += e1 * e1
            acc[9, x] += e2 * e2
        for x in range(w - 1):  # horizontal differences: none beyond the last column
            d0, d1, d2 = r0[x + 1] - r0[x], r1[x + 1] - r1[x], r2[x + 1] - r2[x]
            acc[7, x] += d0 * d0
            acc[8, x] += d1 * d1
            acc[9, x] += d2 * d2
        if y == h - 1 or ((y + 1) % stride == 0 and (y + 1) // stride < ncy):
            for k in range(10):
                for cx in range(ncx):
                    x1 = (cx + 1) * stride if cx < ncx - 1 else w
                    s = 0.0
                    for x in range(cx * stride, x1):
                        s += acc[k, x]
                    out[k, cy, cx] += s
            acc[:] = 0.0
