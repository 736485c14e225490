"""The mean 8- and 16-px cell of luma: what a micro-tiling pattern adds, for ``Measurement.meta``.

A pattern ``t`` that repeats every ``p`` px -- a VAE decoder's 8-px latent grid, a block
codec's, a tiled stage's -- is the same in every ``p x p`` cell of the image.  Averaging luma
over the pixels of each phase ``(y mod p, x mod p)`` keeps it whole and averages the content
down: the *mean cell*::

    M_p[i, j] = mean { Y[y, x] : y = i, x = j (mod p) } - mean Y        (code values)

(over the largest top-left part of the image that holds whole cells: the pattern is anchored at
the origin, as a latent grid is).  The content leaves its own mean cell, the same on both
sides of a paired comparison, so the difference of two mean cells is the pattern one side
added (:mod:`harness.comparing.grid`): +-1 LSB over an 8-px cell reads its own 0.5 LSB² even
on an image that already carries an 8-px JPEG grid, where spectral peaks would add or cancel.

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
    cell = y[: ny * p, : nx * p].reshape(ny, p, nx, p).mean(axis=(0, 2), dtype=np.float64)
    return cell - cell.mean()


def grid_cells(ctx: Context) -> dict[str, dict[str, list[float]]]:
    """``{"grid_cells": {"8": [...], "16": [...]}}``: each mean cell row-major, for ``Measurement.meta``."""
    out: dict[str, list[float]] = {}
    for p in GRID_PERIODS:
        cell = mean_cell(ctx.y, p)
        if cell is not None:
            out[str(p)] = [round(v, 5) for v in cell.ravel().tolist()]
    return {"grid_cells": out}
