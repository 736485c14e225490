"""Tiles: the half-overlapping grid over which local slices (``tile=rIcJ``) are measured.

A grid of ``tile``-pixel squares with stride ``tile/2`` (half-overlapping), so
that any local defect up to ``tile/2`` across lies wholly inside one tile.  The
default tile (:func:`auto_tile`) is 64 px, a quarter of the short side for
images under 256 px; ``tile=64`` suits 256-1024 px images (7x7 to 31x31 tiles).

The image is cut into ``stride``-pixel *cells*; a tile is 2x2 cells.  The last
row/column of cells absorbs the remainder when the image size is not a multiple
of the stride.  Tile ``rIcJ`` starts at pixel ``(I*stride, J*stride)``; tiles
are numbered row-major.  Its pixel box (:func:`tile_boxes`) is
``[x0, y0, x1, y1]`` (``x1``, ``y1`` exclusive): ``tile`` px wide, or up to the
image border for the last row/column of tiles -- a pure function of the image
size and the stride, which ``Measurement.meta`` records, so boxes need not be stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

__all__ = ["Grid", "make_grid", "auto_tile", "sub_tile", "tile_names", "cell_sizes", "tile_boxes"]


@lru_cache(maxsize=64)
def tile_names(rows: int, cols: int) -> tuple[str, ...]:
    """Tile labels ``r0c0, r0c1, ...`` in row-major order (the order of :meth:`Grid.tile_sums`)."""
    return tuple(f"r{r}c{c}" for r in range(rows) for c in range(cols))


@dataclass(frozen=True)
class Grid:
    """Half-overlapping tile grid; see the module docstring."""

    height: int
    width: int
    tile: int
    stride: int
    row_starts: np.ndarray  # cell starts along y (px)
    col_starts: np.ndarray  # cell starts along x (px)
    rows: int  # tiles along y
    cols: int  # tiles along x

    @property
    def names(self) -> tuple[str, ...]:
        return tile_names(self.rows, self.cols)

    def cell_sums(self, maps: np.ndarray) -> np.ndarray:
        """Sum ``(K, H, W)`` maps over cells → ``(K, n_cells_y, n_cells_x)`` float64.

        Full cells are summed through a reshape (much faster than ``reduceat``);
        the remainder rows/columns are added to the last cell.  Each partial sum
        covers at most ``stride`` values in float32 before going to float64.
        """
        k = maps.shape[0]
        s, ny, nx = self.stride, self.row_starts.size, self.col_starts.size
        if self.height >= s:
            rows = maps[:, : ny * s].reshape(k, ny, s, self.width).sum(axis=2, dtype=np.float32)
            if self.height > ny * s:
                rows[:, -1] += maps[:, ny * s:].sum(axis=1, dtype=np.float32)
        else:  # image smaller than one stride: a single cell
            rows = maps.sum(axis=1, keepdims=True, dtype=np.float32)
        rows = rows.astype(np.float64)
        if self.width >= s:
            out = rows[:, :, : nx * s].reshape(k, rows.shape[1], nx, s).sum(axis=3)
            if self.width > nx * s:
                out[:, :, -1] += rows[:, :, nx * s:].sum(axis=2)
        else:
            out = rows.sum(axis=2, keepdims=True)
        return out

    def tile_sums(self, maps: np.ndarray) -> np.ndarray:
        """Sum ``(K, H, W)`` maps over tiles → ``(K, rows*cols)`` float64 (row-major)."""
        return self.tile_sums_from_cells(self.cell_sums(maps))

    @staticmethod
    def tile_sums_from_cells(c: np.ndarray) -> np.ndarray:
        """Combine ``(K, ny, nx)`` cell sums into half-overlapping tile sums ``(K, rows*cols)``."""
        if c.shape[1] > 1:
            c = c[:, :-1] + c[:, 1:]
        if c.shape[2] > 1:
            c = c[:, :, :-1] + c[:, :, 1:]
        return c.reshape(c.shape[0], -1)

    def tile_counts(self) -> np.ndarray:
        """Number of pixels in each tile, ``(rows*cols,)`` float64."""
        return _tile_counts(self)

    @property
    def boxes(self) -> tuple[tuple[int, int, int, int], ...]:
        """Pixel box ``(x0, y0, x1, y1)`` of every tile (exclusive ends), in :attr:`names` order."""
        return tile_boxes(self.height, self.width, self.stride)


def _tile_counts(grid: Grid) -> np.ndarray:
    ry = np.diff(np.append(grid.row_starts, grid.height)).astype(np.float64)
    rx = np.diff(np.append(grid.col_starts, grid.width)).astype(np.float64)
    if ry.size > 1:
        ry = ry[:-1] + ry[1:]
    if rx.size > 1:
        rx = rx[:-1] + rx[1:]
    return np.outer(ry, rx).ravel()


@lru_cache(maxsize=64)
def cell_sizes(height: int, width: int, stride: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Heights and widths (px) of the cells a grid of ``stride`` cuts the image into.

    Every cell is ``stride`` px but the last of each row/column, which absorbs the
    remainder (the layout :func:`make_grid` builds and :meth:`Grid.cell_sums` sums).
    """
    def sizes(n: int) -> tuple[int, ...]:
        k = max(n // stride, 1)
        return (stride,) * (k - 1) + (n - stride * (k - 1),)

    return sizes(height), sizes(width)


@lru_cache(maxsize=64)
def tile_boxes(height: int, width: int, stride: int) -> tuple[tuple[int, int, int, int], ...]:
    """``(x0, y0, x1, y1)`` of every tile, row-major (exclusive ends); see the module docstring.

    Tile ``rIcJ`` covers cells ``I..I+1`` by ``J..J+1`` (one cell where the image
    holds only one), so it ends at the far side of its second cell: ``tile`` px
    on, or the image border for the last row/column of tiles.
    """
    def spans(cells: tuple[int, ...]) -> list[tuple[int, int]]:
        ends = np.cumsum(cells).tolist()
        starts = [0] + ends[:-1]
        if len(cells) == 1:
            return [(0, ends[0])]
        return [(starts[i], ends[i + 1]) for i in range(len(cells) - 1)]

    ry, rx = cell_sizes(height, width, stride)
    return tuple((x0, y0, x1, y1) for y0, y1 in spans(ry) for x0, x1 in spans(rx))


def auto_tile(height: int, width: int, largest: int = 64) -> int:
    """Default tile size in px: 64, or a quarter of the short side for images under 256 px.

    A local defect of a few per cent of the image must fill a good part of one
    tile; on a 128 px image a 64 px tile would dilute it fourfold.
    """
    side = min(height, width) // 4
    return int(max(16, min(largest, side - side % 2)))


def sub_tile(tile: int) -> int | None:
    """The finer tile of the top bands' sub-grid: half of ``tile`` (even, >= 8), or None below 16 px.

    A 32-px window -- the size at which a change is judged visible -- fills at
    least 9/16 of the sub-tile that covers it best, against 1/4 of a 64-px
    tile, so fine-texture damage is diluted far less (see
    :func:`harness.measuring.metrics.spectral.band_power`).
    """
    sub = (tile // 2) - (tile // 2) % 2
    return sub if sub >= 8 else None


@lru_cache(maxsize=32)
def make_grid(height: int, width: int, tile: int = 64) -> Grid:
    """Build the tile grid for an image; ``tile`` (px) shrinks to fit small images."""
    if tile < 8 or tile % 2:
        raise ValueError(f"tile must be an even number of pixels >= 8, got {tile}")
    tile = min(tile, height - height % 2, width - width % 2)
    stride = tile // 2
    ny = max(height // stride, 1)
    nx = max(width // stride, 1)
    row_starts = np.arange(ny) * stride
    col_starts = np.arange(nx) * stride
    return Grid(height, width, tile, stride, row_starts, col_starts, max(ny - 1, 1), max(nx - 1, 1))
