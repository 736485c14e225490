"""Region sums of a large image's maps without the crop's whole map stack: :class:`RegionSink`.

:func:`harness.measuring.maps.region_sums` sums the ``K`` per-pixel maps over the mask
regions with one float32 matrix product ``(K, n) @ (n, R)`` of the crop's map stack.  For a
mask whose crop is the whole image that stack is ``K = 11`` image planes (3.7 float32 RGB
copies).  The sink stands in for the stack: it takes the maps as they are made, a few rows
at a time, and multiplies each group at once.  Row ``k`` of a BLAS product does not depend on
the other rows as long as there are at least two (one row goes through a matrix-vector kernel
that sums in another order), so a lone row is paired with a copy of itself: the sums are the
whole stack's, bit for bit (``tests/measuring/test_memory.py`` holds both paths to it).
"""

from __future__ import annotations

import numpy as np

__all__ = ["RegionSink", "region_operand", "with_complement"]


def region_operand(members: tuple[np.ndarray, ...], n: int, complement: int | None) -> np.ndarray:
    """The ``(n, R)`` float32 operand that sums ``(K, n)`` maps over the regions ``members`` (crop-local bool
    maps), with a last all-ones column for the crop's total where a ``complement`` region is finished later."""
    reg = np.stack([m.reshape(-1) for m in members] + ([np.ones(n, bool)] if complement is not None else []))
    return reg.T.astype(np.float32)


def with_complement(out: np.ndarray, totals: np.ndarray, complement: int | None) -> np.ndarray:
    """``(K, R)`` float64 region sums from the product's float32 ``out``: region ``complement`` (if any) also
    gets everything beyond the crop, ``totals`` (the whole-image sums) minus the crop's (the last column)."""
    out = out.astype(np.float64)
    if complement is not None:
        out[:, complement] += totals - out[:, -1]
        out = out[:, :-1]
    return out


class RegionSink:
    """Accepts ``sink[rows] = maps`` like a ``(n_maps, h, w)`` float32 stack of the crop, and
    :meth:`finish` returns what :func:`~harness.measuring.maps.region_sums` of that stack would."""

    def __init__(self, n_maps: int, shape: tuple[int, int], members: tuple[np.ndarray, ...],
                 complement: int | None) -> None:
        self._reg = region_operand(members, shape[0] * shape[1], complement)  # region_sums' operand
        self._out = np.zeros((n_maps, self._reg.shape[1]), np.float32)
        self._done = np.zeros(n_maps, bool)
        self._pending: int | None = None  # the row waiting in _pair[0] for a second one
        self._pair: np.ndarray | None = None  # (2, h, w): lone rows are multiplied two at a time
        self._shape = shape
        self._complement = complement

    def __setitem__(self, rows: int | list[int], maps: np.ndarray) -> None:
        if isinstance(rows, (int, np.integer)):
            if self._pair is None:
                self._pair = np.empty((2,) + self._shape, np.float32)
            if self._pending is None:
                self._pending = int(rows)
                self._pair[0] = maps  # copied: the producer lets its plane go
                return
            self._pair[1] = maps
            self._product([self._pending, int(rows)], self._pair)
            self._pending = None
            return
        rows = list(rows)
        if len(rows) == 1:
            self[rows[0]] = maps[0]
        else:
            self._product(rows, np.asarray(maps, np.float32))

    def _product(self, rows: list[int], maps: np.ndarray) -> None:
        sub = np.ascontiguousarray(maps).reshape(len(rows), -1)
        self._out[rows] = sub @ self._reg
        self._done[rows] = True

    def finish(self, totals: np.ndarray) -> np.ndarray:
        """The ``(n_maps, R)`` float64 region sums; ``totals`` the whole-image sums (for the complement)."""
        if self._pending is not None:  # a lone last row: with a copy of itself, as two rows
            self._pair[1] = self._pair[0]
            self._out[self._pending] = (self._pair.reshape(2, -1) @ self._reg)[0]
            self._done[self._pending] = True
            self._pending = None
        self._pair = None
        if not self._done.all():
            raise RuntimeError(f"region sums lack map rows {np.flatnonzero(~self._done).tolist()}")
        return with_complement(self._out, totals, self._complement)
