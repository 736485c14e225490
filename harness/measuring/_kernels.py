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


@njit(cache=True, fastmath=True, nogil=True)
def spectrum_sums(spec, weights, bins, col_wt, bp, radial):  # pragma: no cover - compiled; tested through spectral
    """Add, for ``spec`` ``(C, H, Wr)`` (an ``rfft2``), ``sum |spec_c|² weights[b]`` to ``bp`` ``(C, n_w)``
    float64 and, for channel 0, ``sum |spec_0|² col_wt`` per radial bin ``bins`` (``(H, Wr)`` int, -1 for
    none) to ``radial`` float64: band powers and the radial spectrum from one read of the spectrum.

    Each row is summed in float32 (at most ``Wr`` terms) and added to float64.
    """
    nc, h, wr = spec.shape
    nw = weights.shape[0]
    p = np.empty((nc, wr), np.float32)
    for y in range(h):
        for c in range(nc):
            for x in range(wr):
                z = spec[c, y, x]
                p[c, x] = z.real * z.real + z.imag * z.imag
        for c in range(nc):
            for b in range(nw):
                s = np.float32(0.0)
                for x in range(wr):
                    s += p[c, x] * weights[b, y, x]
                bp[c, b] += s
        for x in range(wr):
            k = bins[y, x]
            if k >= 0:
                radial[k] += p[0, x] * col_wt[x]


@njit(cache=True, fastmath=True, nogil=True)
def bounded_sq_distance(sites, r, out):  # pragma: no cover - compiled; tested through regions
    """:func:`harness.measuring.regions.bounded_sq_distance` for ``sites`` ``(K, h, w)`` bool into ``out``
    ``(K, h, w)`` int32: the same two running sweeps per row and the same least ``dy² + gx²`` over
    ``|dy| <= r``, as loops (the row sweep is sequential; the column step runs along rows)."""
    k, h, w = sites.shape
    big = r + 1
    g2 = np.empty((h, w), np.int32)
    for m in range(k):
        for y in range(h):
            last = -(w + big)
            for x in range(w):  # nearest site at or left of x
                if sites[m, y, x]:
                    last = x
                g2[y, x] = min(x - last, big)
            last = 2 * w + big
            for x in range(w - 1, -1, -1):  # ... or right of it
                if sites[m, y, x]:
                    last = x
                d = min(last - x, g2[y, x])
                g2[y, x] = d * d
        for y in range(h):
            for x in range(w):
                out[m, y, x] = g2[y, x]
            for dy in range(1, min(r, h - 1) + 1):
                dd = dy * dy
                if y - dy >= 0:
                    for x in range(w):
                        out[m, y, x] = min(out[m, y, x], g2[y - dy, x] + dd)
                if y + dy < h:
                    for x in range(w):
                        out[m, y, x] = min(out[m, y, x], g2[y + dy, x] + dd)
