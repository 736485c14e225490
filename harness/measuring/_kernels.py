"""Compiled kernels (numba) for the per-pixel work of ``measure`` that numpy can only do in many passes.

Imported only through :func:`harness.measuring.compiled.kernels`, which falls back to
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
#: squared gradient (forward differences, both axes) of Y, Cb, Cr; then, per block grid and
#: channel (grid-major), the squared differences straddling that grid's block boundaries.
N_CELL_MAPS = 10


@njit(cache=True, fastmath=True, nogil=True)
def cell_maps(ycc, means, stride, ncy, ncx, grids, out):  # pragma: no cover - compiled; tested through maps
    """Add the per-pixel maps of ``ycc`` ``(3, H, W)`` float32, summed over the grid's cells (``stride``
    px, the last row/column of cells taking the remainder), to ``out`` ``(N_CELL_MAPS + 3 len(grids),
    ncy, ncx)`` float64.

    Every row adds each map into a float32 accumulator per column (plain element-wise
    loops over the row, which LLVM vectorises); at the end of a row of cells the columns are
    summed cell by cell into ``out`` and the accumulators cleared.  A block-grid difference
    is a horizontal one at ``x = g-1 (mod g)`` or a vertical one at ``y = g-1 (mod g)``,
    neither past the image's edge.
    """
    _, h, w = ycc.shape
    ng = grids.shape[0]
    nk = N_CELL_MAPS + 3 * ng
    acc = np.zeros((nk, w), np.float32)
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
        for j in range(ng):
            if y % grids[j] == grids[j] - 1 and y < h - 1:  # a row of block boundaries
                base = N_CELL_MAPS + 3 * j
                for x in range(w):
                    e0, e1, e2 = n0[x] - r0[x], n1[x] - r1[x], n2[x] - r2[x]
                    acc[base, x] += e0 * e0
                    acc[base + 1, x] += e1 * e1
                    acc[base + 2, x] += e2 * e2
        for x in range(w - 1):  # horizontal differences: none beyond the last column
            d0, d1, d2 = r0[x + 1] - r0[x], r1[x + 1] - r1[x], r2[x + 1] - r2[x]
            acc[7, x] += d0 * d0
            acc[8, x] += d1 * d1
            acc[9, x] += d2 * d2
        for j in range(ng):  # ... and those across block boundaries, at x = g-1 (mod g) only
            base = N_CELL_MAPS + 3 * j
            for x in range(grids[j] - 1, w - 1, grids[j]):
                d0, d1, d2 = r0[x + 1] - r0[x], r1[x + 1] - r1[x], r2[x + 1] - r2[x]
                acc[base, x] += d0 * d0
                acc[base + 1, x] += d1 * d1
                acc[base + 2, x] += d2 * d2
        if y == h - 1 or ((y + 1) % stride == 0 and (y + 1) // stride < ncy):
            for k in range(nk):
                for cx in range(ncx):
                    x1 = (cx + 1) * stride if cx < ncx - 1 else w
                    s = 0.0
                    for x in range(cx * stride, x1):
                        s += acc[k, x]
                    out[k, cy, cx] += s
            acc[:] = 0.0


@njit(cache=True, fastmath=True, nogil=True)
def spectrum_sums(spec, weights, rows, first, runs, runs_at, col_wt, bp, radial):  # pragma: no cover - compiled
    """Add, for ``spec`` ``(C, H, 2 Wr)`` (an ``rfft2`` viewed as float32), ``sum |spec_c|² weights[b]`` to ``bp`` ``(C, n_w)``
    float64 and, for channel 0, ``sum |spec_0|² col_wt`` per radial bin ``bins`` (``(H, Wr)`` int, -1 for
    none) to ``radial`` float64: band powers and the radial spectrum from one read of the spectrum.
    The bins come as runs ``runs`` ``(n, 3)`` (first column, end column, bin) of each row ``y``:
    ``runs[runs_at[y]:runs_at[y + 1]]``.

    ``rows`` ``(n_w, H)`` bool says which spectrum rows hold a nonzero weight of each kind (the
    others are skipped); the weighted sums start at channel ``first`` (earlier rows of ``bp`` are
    left as they are).  Each row is summed in float32 (at most ``Wr`` terms) and added to float64.
    """
    nc, h, wr2 = spec.shape  # float32 view: real and imaginary parts interleaved
    wr = wr2 // 2
    nw = weights.shape[0]
    p = np.empty((nc, wr), np.float32)
    for y in range(h):
        for c in range(nc):
            row = spec[c, y]
            for x in range(wr):
                p[c, x] = row[2 * x] * row[2 * x] + row[2 * x + 1] * row[2 * x + 1]
        for b in range(nw):
            if not rows[b, y]:  # a band is an annulus: most rows of the low bands hold none of it
                continue
            wb = weights[b, y]
            for c in range(first, nc):
                pc = p[c]
                s = np.float32(0.0)
                for x in range(wr):
                    s += pc[x] * wb[x]
                bp[c, b] += s
        p0 = p[0]
        for i in range(runs_at[y], runs_at[y + 1]):  # a row crosses each annulus in one run of columns
            s = np.float32(0.0)
            for x in range(runs[i, 0], runs[i, 1]):
                s += p0[x] * col_wt[x]
            radial[runs[i, 2]] += s


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


@njit(cache=True, fastmath=True, nogil=True)
def peak_candidates(spec, k_bg, scale4, floor, ys, xs, p3_out, over_out):  # pragma: no cover - compiled
    """:func:`harness.measuring.metrics.spectral.periodic_power`'s candidate search, fused.

    ``spec`` ``(H, Wr)`` is the windowed ``rfft2``.  Its power is laid into a plane padded by 3
    (rows wrap, columns repeat the ends); ``P3`` (3x3 sums) and the 7x7 sums come from
    separable sums of neighbours; ``over = P3 + k_bg (outer - P3)``.  A coefficient is a
    candidate when ``over + scale4 sqrt(P3) > 0``, ``P3 > floor`` and it is a maximum of its
    3x3 neighbourhood.  Writes the candidates' rows, columns, ``P3`` and ``over`` to the
    output arrays (each at least ``H Wr`` long) and returns how many there are.
    """
    h, wr = spec.shape
    r = 3
    hp, wp = h + 2 * r, wr + 2 * r
    pad = np.empty((hp, wp), np.float32)
    for y in range(h):
        for x in range(wr):
            z = spec[y, x]
            pad[y + r, x + r] = z.real * z.real + z.imag * z.imag
    for i in range(r):
        for x in range(wr):
            pad[i, x + r] = pad[h + i, x + r]  # rows wrap
            pad[h + r + i, x + r] = pad[r + i, x + r]
    for y in range(hp):
        for i in range(r):
            pad[y, i] = pad[y, r]  # columns repeat the ends
            pad[y, wr + r + i] = pad[y, wr + r - 1]
    s3 = np.empty((hp, wr), np.float32)  # 3-sums along each padded row, centred on x + r
    s7 = np.empty((hp, wr), np.float32)
    for y in range(hp):
        for x in range(wr):
            a = pad[y, x + 2] + pad[y, x + 3] + pad[y, x + 4]
            s3[y, x] = a
            s7[y, x] = a + pad[y, x] + pad[y, x + 1] + pad[y, x + 5] + pad[y, x + 6]
    n = 0
    p3 = np.empty(wr, np.float32)
    ov = np.empty(wr, np.float32)
    for y in range(h):
        for x in range(wr):
            a = s3[y + 2, x] + s3[y + 3, x] + s3[y + 4, x]
            o = s7[y, x] + s7[y + 1, x] + s7[y + 2, x] + s7[y + 3, x] + s7[y + 4, x] + s7[y + 5, x] + s7[y + 6, x]
            p3[x] = a
            ov[x] = a + k_bg * (o - a)
        for x in range(wr):
            a = p3[x]
            if a > floor and ov[x] + scale4 * np.sqrt(a) > 0.0:
                c = pad[y + r, x + r]
                if (c >= pad[y + r - 1, x + r - 1] and c >= pad[y + r - 1, x + r] and c >= pad[y + r - 1, x + r + 1]
                        and c >= pad[y + r, x + r - 1] and c >= pad[y + r, x + r + 1]
                        and c >= pad[y + r + 1, x + r - 1] and c >= pad[y + r + 1, x + r]
                        and c >= pad[y + r + 1, x + r + 1]):
                    ys[n] = y
                    xs[n] = x
                    p3_out[n] = a
                    over_out[n] = ov[x]
                    n += 1
    return n


@njit(cache=True, fastmath=True, nogil=True)
def rgb_to_ycc(img, scale, out):  # pragma: no cover - compiled; tested through context
    """``img`` ``(H, W, 3)`` (any real dtype) times ``scale`` (float32) → ``out`` ``(3, H, W)`` float32
    ``Y, Cb, Cr``: :func:`harness.measuring.channels.planes_to_ycc`'s float32 operations, straight from
    the interleaved input (fastmath may fuse a multiply and an add: a last-bit difference)."""
    h, w, _ = img.shape
    c0, c1, c2 = np.float32(0.299), np.float32(0.587), np.float32(0.114)
    kb, kr = np.float32(0.564), np.float32(0.713)
    for y in range(h):
        for x in range(w):
            r = np.float32(img[y, x, 0]) * scale
            g = np.float32(img[y, x, 1]) * scale
            b = np.float32(img[y, x, 2]) * scale
            v = c0 * r
            v += c1 * g
            v += c2 * b
            out[0, y, x] = v
            out[1, y, x] = kb * (b - v)
            out[2, y, x] = kr * (r - v)


@njit(cache=True, fastmath=True, nogil=True)
def hann_spectrum(spec, w, out):  # pragma: no cover - compiled; tested through spectral
    """``out`` ``(H, Wr)`` complex64: the ``rfft2`` of the image of ``spec`` (its ``rfft2``, width ``w``)
    less its mean, times a periodic Hann window on both axes, formed in the frequency domain.

    The periodic Hann window ``(1 - cos(2 pi n / N)) / 2`` has three DFT taps, ``-1/4, 1/2, -1/4``:
    windowing is a 3-tap convolution along each axis (rows wrap; a column beyond the half
    plane is the conjugate of its mirror, ``X[ky, kx] = conj(X[-ky, w - kx])``).  The DC term
    is left out (the mean removed).
    """
    h, wr = spec.shape
    t = np.empty((h, wr), np.complex64)  # along the rows first
    for y in range(h):
        a, b, c = spec[(y - 1) % h], spec[y], spec[(y + 1) % h]
        ty = t[y]
        for x in range(wr):
            ty[x] = 0.5 * b[x] - 0.25 * (a[x] + c[x])
    dc = spec[0, 0]  # the mean is left out: take the DC term back out of the three rows it reached
    t[0, 0] -= 0.5 * dc
    t[1 % h, 0] += 0.25 * dc
    t[h - 1, 0] += 0.25 * dc
    for y in range(h):
        ny = (h - y) % h
        ty, o = t[y], out[y]
        for x in range(1, wr - 1):
            o[x] = 0.5 * ty[x] - 0.25 * (ty[x - 1] + ty[x + 1])
        if wr == 1:
            continue
        o[0] = 0.5 * ty[0] - 0.25 * (np.conj(t[ny, 1]) + ty[1])
        x = wr - 1
        o[x] = 0.5 * ty[x] - 0.25 * (ty[x - 1] + np.conj(t[ny, w - (x + 1)]))
