"""The mean 8- and 16-px cell of luma: what a micro-tiling pattern adds, for ``Measurement.meta``.

A pattern ``t`` that repeats every ``p`` px -- a VAE decoder's 8-px latent grid, a block
codec's, a tiled stage's -- is the same in every ``p x p`` cell of the image.  Averaging luma
over the pixels of each phase ``(y mod p, x mod p)`` keeps it whole and averages the content
down: the *mean cell*::

    M_p[i, j] = mean { Y[y, x] : y = i, x = j (mod p) } - mean Y        (code values)

(over the largest top-left part of the image that holds whole 16-px cells -- whole 8-px cells
for images too small for those: the pattern is anchored at the origin, as a latent grid is).
The content leaves its own mean cell, the same on both sides of a paired comparison, so the
difference of two mean cells is the pattern one side added (:mod:`harness.comparing.grid`):
+-1 LSB over an 8-px cell reads its own 0.5 LSB² even on an image that already carries an 8-px
JPEG grid, where spectral peaks would add or cancel.

``periodic`` (spectral peaks) remains the check for patterns of any period; this one knows where
to look.  Benign noise of variance ``s²`` per pixel moves each phase mean by ``s / sqrt(n)``
(``n = H W / p²`` pixels a phase).  The cells are rounded to 5 decimals (1e-5 code values, far
below that noise).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from harness.measuring.context import Context

__all__ = ["GRID_PERIODS", "MIN_CELLS", "mean_cell", "grid_cells"]

GRID_PERIODS: tuple[int, ...] = (8, 16)
MIN_CELLS = 4  # fewer than 4 x 4 cells: no mean cell (the content would not average down)


def mean_cell(y: np.ndarray, p: int) -> np.ndarray | None:
    """``M_p`` of luma ``y`` ``(H, W)``, shape ``(p, p)``; None for images under ``MIN_CELLS * p`` px a side."""
    h, w = y.shape
    ny, nx = h // p, w // p
    if ny < MIN_CELLS or nx < MIN_CELLS:
        return None
    # rows first in the image's dtype (one pass over the pixels), then the p columns in float64
    rows = np.add.reduce(y[: ny * p, : nx * p].reshape(ny, p, nx * p), axis=0)
    cell = rows.reshape(p, nx, p).sum(axis=1, dtype=np.float64) / (ny * nx)
    return cell - cell.mean()


def grid_cells(ctx: Context) -> dict[str, dict[str, list[float]]]:
    """``{"grid_cells": {"8": [...], "16": [...]}}``: each mean cell row-major, for ``Measurement.meta``.

    The 8-px cell is the mean of the 16-px cell's four quadrants where the image holds enough
    16-px cells (the same pixels, one pass instead of two).
    """
    cells: dict[int, np.ndarray] = {}
    big = max(GRID_PERIODS)
    top = mean_cell(ctx.y, big)
    for p in GRID_PERIODS:
        if top is not None and big % p == 0:
            k = big // p
            cells[p] = top.reshape(k, p, k, p).mean(axis=(0, 2))
        elif (cell := mean_cell(ctx.y, p)) is not None:
            cells[p] = cell
    return {"grid_cells": {str(p): np.round(c, 5).ravel().tolist() for p, c in cells.items()}}
