"""Per-pixel maps summed over the tile grid, the mask regions and the anchors: what the local metrics read.

:func:`local_sums` turns the channels and the squared band images of one image
into the sums of :data:`MAPS` (over the whole image, every tile and every
region) and of :data:`GRAD_MAPS` (whole image and tiles).  Each map is summed
over the grid's *cells* while it is still in cache and the tiles are put
together from the cells; a map that is a plain channel is not copied first (its
cells are summed from the channel itself), and the block-grid differences are
summed on the rows and columns that hold them, not as whole planes that are
mostly zero.  Mask regions and anchors are summed on their bounding box only:
the :data:`MAPS` rows are copied there and reduced by :func:`region_sums`.

Sums are float64 from the cells up; inside a cell a float32 partial sum covers
one grid stride of values, so a tile's sum carries a relative rounding error
near 1e-7 -- far below any tolerance.  The channels are summed centred on their
image means, so that a flat tile's contrast (its sum of squares less its squared
sum) does not drown in float32 rounding; chroma gets its mean back afterwards, in
float64.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable

import numpy as np

from harness.measuring.bands import BAND_NAMES
from harness.measuring.compiled import kernels
from harness.measuring.region_sink import RegionSink, region_operand, with_complement
from harness.measuring.regions import Regions, bbox
from harness.measuring.tiles import Grid, make_grid, sub_tile

__all__ = ["MAPS", "GRAD_MAPS", "SUB_BANDS", "BLOCK_GRIDS", "SliceSums", "DiffSums", "SubSums", "local_sums",
           "region_sums"]

# Rows of the summed per-pixel map stack (code values or code²).
_NB = len(BAND_NAMES)
MAPS: dict[str, int | slice] = {
    "band_sq": slice(0, _NB),  # squared band-passed luma, one row per band
    "y": _NB,  # luma minus its image mean (centred so that sums of y and y² do not cancel)
    "y2": _NB + 1,  # square of the centred luma
    "cb": _NB + 2,
    "cr": _NB + 3,
    "chroma": _NB + 4,  # |(Cb, Cr)| per pixel
    "cb2": _NB + 5,  # square of Cb minus its image mean (for chroma contrast; centred like y2)
    "cr2": _NB + 6,
}
_N_MAPS = _NB + 7
_YCC_ROWS = [MAPS["y"], MAPS["cb"], MAPS["cr"]]  # the channels (summed centred; chroma's mean added back)
_SQ_ROWS = [MAPS["y2"], MAPS["cb2"], MAPS["cr2"]]  # their centred squares
# Bands also measured on the finer sub-grid: fine texture is where small, local damage shows first.
SUB_BANDS: tuple[str, ...] = ("high", "top")
_SUB_ROWS = slice(BAND_NAMES.index(SUB_BANDS[0]), BAND_NAMES.index(SUB_BANDS[-1]) + 1)  # adjacent bands
assert _SUB_ROWS.stop == _NB
# Difference maps (code²), summed over the whole image and the tiles only (not over mask regions):
# squared forward differences, horizontal at (y, x) = c[y, x+1] - c[y, x] plus vertical, zero where
# the neighbour lies beyond the image.  ``grid8_y``/``grid16_y`` keep only the differences that
# straddle an 8-px (16-px) block boundary: x = 7 (mod 8) horizontally, y = 7 (mod 8) vertically.
GRAD_MAPS: dict[str, int] = {"grad_y": 0, "grid8_y": 1, "grid16_y": 2, "grad_cb": 3, "grad_cr": 4}
_N_GRAD = len(GRAD_MAPS)
# the rows of the cell sums that _kernels.cell_maps (or _pixel_maps) makes, in its order
_KERNEL_ROWS = _YCC_ROWS + _SQ_ROWS + [MAPS["chroma"]] + [_N_MAPS + GRAD_MAPS[n] for n in ("grad_y", "grad_cb", "grad_cr")]
BLOCK_GRIDS: tuple[int, ...] = (8, 16)  # each a multiple of the first (see _on_grid_cells)


@dataclass(frozen=True)
class SliceSums:
    """Per-pixel maps summed over every location of a :class:`~harness.measuring.slices.SliceLayout`.

    ``sums`` is ``(K, S)`` float64 with ``S = 1 + len(layout)``: column 0 is the
    whole image, then tiles, then regions; ``n`` is ``(S,)`` pixels per column
    (a region's pixel count may be 0); ``means`` is ``sums / max(n, 1)``.
    """

    sums: np.ndarray
    n: np.ndarray
    means: np.ndarray

    def total(self, name: str) -> np.ndarray:
        """Sums of map ``name`` (a key of :data:`MAPS`): ``(S,)``, or ``(n_bands, S)`` for ``band_sq``."""
        return self.sums[MAPS[name]]

    def mean(self, name: str) -> np.ndarray:
        """Means of map ``name`` (a key of :data:`MAPS`) per location, shaped like :meth:`total`."""
        return self.means[MAPS[name]]


@dataclass(frozen=True)
class DiffSums:
    """The :data:`GRAD_MAPS` summed over the whole image (column 0) and every tile.

    ``sums`` is ``(len(GRAD_MAPS), 1 + T)`` float64; ``n_all`` counts the
    differences (horizontal plus vertical) per column, ``n_grid[g]`` those on
    the ``g``-px block grid; ``chroma_grid`` is ``(2, len(BLOCK_GRIDS))``: the
    whole-image on-grid sums for Cb and Cr.
    """

    sums: np.ndarray
    n_all: np.ndarray
    n_grid: dict[int, np.ndarray]
    chroma_grid: np.ndarray

    def total(self, name: str) -> np.ndarray:
        """Sums of difference map ``name`` (a key of :data:`GRAD_MAPS`): ``(1 + T,)``."""
        return self.sums[GRAD_MAPS[name]]


@dataclass(frozen=True)
class SubSums:
    """Band power of the :data:`SUB_BANDS` on the sub-grid (:func:`harness.measuring.tiles.sub_tile`).

    ``means`` is ``(len(SUB_BANDS), T_sub)`` mean squared band-passed luma per
    sub-tile (row-major), ``n`` the pixels per sub-tile.
    """

    grid: Grid
    means: np.ndarray
    n: np.ndarray


def local_sums(ycc: np.ndarray, band_sq: np.ndarray | Iterable[tuple[int, np.ndarray]], means: np.ndarray,
               grid: Grid, regions: Regions | None, anchor_map: np.ndarray | None
               ) -> tuple[SliceSums, DiffSums, SubSums | None]:
    """Sum every row of :data:`MAPS` and :data:`GRAD_MAPS` over the whole image, the tiles and the regions.

    ``ycc`` is ``(3, H, W)`` float32 (C-contiguous), ``band_sq`` the ``(n_bands, H, W)``
    float32 squared band images -- or ``(band, (H, W) image)`` pairs, each summed and let go before
    the next is read (:func:`harness.measuring.bands.iter_band_images`: a large image's bands
    never stand as one stack) -- and ``means`` ``(3,)`` float32: the image means of Y, Cb and Cr
    that centre the luma sums and the squared maps.
    """
    h, w = ycc.shape[1:]
    cells = np.empty((_N_MAPS + _N_GRAD, grid.row_starts.size, grid.col_starts.size))
    streamed = not isinstance(band_sq, np.ndarray)
    crops = _crops(regions, anchor_map, h, w, streamed)
    sub = _band_cells(band_sq if streamed else enumerate(band_sq), grid, crops, cells)
    for box, stack in crops:
        _crop_maps(ycc, means, box, stack)
    k = kernels()
    if k is not None:
        out = np.zeros((k.N_CELL_MAPS + 3 * len(BLOCK_GRIDS),) + cells.shape[1:])
        k.cell_maps(ycc, means, grid.stride, cells.shape[1], cells.shape[2], np.array(BLOCK_GRIDS), out)
        cells[_KERNEL_ROWS] = out[:k.N_CELL_MAPS]
        on = out[k.N_CELL_MAPS:].reshape(len(BLOCK_GRIDS), 3, *cells.shape[1:]).transpose(1, 0, 2, 3)
    else:
        _pixel_maps(ycc, means, grid, cells)
        on = _on_grid_cells(ycc, grid)  # (3, len(BLOCK_GRIDS), ncy, ncx)
    for i, b in enumerate(BLOCK_GRIDS):
        cells[_N_MAPS + GRAD_MAPS[f"grid{b}_y"]] = on[0, i]

    glob = cells.sum(axis=(1, 2))[:, None]  # (K, 1): the whole image from the cells, not a second pass
    local = np.concatenate([glob, grid.tile_sums_from_cells(cells)], axis=1)
    parts = [local[:_N_MAPS]]
    counts = [np.array([float(h * w)]), grid.tile_counts()]
    for (box, stack), (members, complement, n) in zip(crops, _members(regions, anchor_map, crops, h, w)):
        if isinstance(stack, RegionSink):
            parts.append(stack.finish(glob[:_N_MAPS, 0]))
        else:
            parts.append(region_sums(stack, glob[:_N_MAPS, 0], members, complement))
        counts.append(n)
    sums = np.concatenate(parts, axis=1)  # (K, S) for S = 1 + T (+ R)
    n = np.concatenate(counts)
    # the channels were summed centred (no float32 cancellation): chroma gets its mean back
    sums[[MAPS["cb"], MAPS["cr"]]] += n[None, :] * means[1:, None].astype(np.float64)
    n_all, n_grid = _diff_counts(grid.height, grid.width, grid.tile)
    diffs = DiffSums(local[_N_MAPS:], n_all, n_grid, on[1:].sum(axis=(2, 3)))
    return SliceSums(sums, n, sums / np.maximum(n, 1.0)), diffs, sub


def _crops(regions: Regions | None, anchor_map: np.ndarray | None, h: int, w: int, streamed: bool = False
           ) -> list[tuple[tuple[int, int, int, int], np.ndarray | RegionSink]]:
    """Where regions are summed, ``(y0, y1, x0, x1)``, each with an empty ``(len(MAPS rows), h, w)`` stack --
    or, ``streamed`` (a large image), a :class:`RegionSink` for the mask regions in place of their stack."""
    boxes = []
    if regions is not None:
        boxes.append(_region_crop(regions.crop, h, w))
    if anchor_map is not None:
        x0, y0, x1, y1 = bbox(anchor_map)
        boxes.append((y0, y1, x0, x1))
    out: list[tuple[tuple[int, int, int, int], np.ndarray | RegionSink]] = []
    for i, box in enumerate(boxes):
        shape = (box[1] - box[0], box[3] - box[2])
        if streamed and i == 0 and regions is not None:
            members, complement, _ = _members(regions, None, [(box, None)], h, w)[0]
            out.append((box, RegionSink(_N_MAPS, shape, members, complement)))
        else:
            out.append((box, np.empty((_N_MAPS,) + shape, np.float32)))
    return out


def _members(regions: Regions | None, anchor_map: np.ndarray | None, crops: list, h: int, w: int
             ) -> list[tuple[tuple[np.ndarray, ...], int | None, np.ndarray]]:
    """Per crop: its regions as crop-local bool maps, which of them also holds everything beyond the
    crop (``outside``, when the crop is not the whole image), and the regions' pixel counts."""
    out = []
    boxes = iter(box for box, _ in crops)
    if regions is not None:
        box = next(boxes)
        if box == regions.crop:
            members = (regions.inside_c, regions.ring_c, regions.outside_c)
        else:
            members = (regions.inside, regions.ring, regions.outside)
        out.append((members, 2 if box != (0, h, 0, w) else None, np.array(regions.counts, dtype=np.float64)))
    if anchor_map is not None:
        y0, y1, x0, x1 = next(boxes)
        out.append(((anchor_map[y0:y1, x0:x1],), None, np.array([float(np.count_nonzero(anchor_map))])))
    return out


def _region_crop(crop: tuple[int, int, int, int], h: int, w: int) -> tuple[int, int, int, int]:
    """Where the mask regions are summed: their crop, or the whole image when the crop holds over half of it.

    Beyond the crop everything is ``outside``, whose sum is then the whole image's
    minus the crop's: a difference taken only where ``outside`` keeps at least
    half the image, so it cannot cancel.
    """
    y0, y1, x0, x1 = crop
    return (0, h, 0, w) if 2 * (y1 - y0) * (x1 - x0) > h * w else crop


def region_sums(stack: np.ndarray, totals: np.ndarray, members: tuple[np.ndarray, ...],
                complement: int | None = None) -> np.ndarray:
    """Sums ``(K, R)`` of the crop's maps ``stack`` ``(K, h, w)`` over regions given by crop-local bool maps.

    Region ``complement`` (if any) also holds every pixel beyond the crop: its
    sum is the crop's share plus ``totals`` (the whole-image sums) minus the
    crop's sums (see :func:`_region_crop`).
    """
    k = stack.shape[0]
    # regions are arbitrary shapes: one (K, n) @ (n, R) product sums every map over every region
    sub = stack.reshape(k, -1)
    # float32 products (the maps are float32): BLAS blocks the sums, so the rounding stays near 1e-6
    return with_complement(sub @ region_operand(members, sub.shape[1], complement), totals, complement)


def _band_cells(bands: Iterable[tuple[int, np.ndarray]], grid: Grid, crops: list, cells: np.ndarray
                ) -> SubSums | None:
    """Sum each squared band image over ``grid``'s cells into ``cells[b]`` (the :data:`SUB_BANDS` over the
    sub-grid's cells too, folded into ``grid``'s where the grids nest) and copy it into the crops; return the
    sub-grid sums (None where the tile has no sub-tile).  One band at a time: a sum over cells reduces each
    band on its own, so the numbers are those of the whole stack."""
    st = sub_tile(grid.tile)
    sub_grid = make_grid(grid.height, grid.width, st) if st is not None else None
    sub_cells = []
    for b, plane in bands:
        m = plane[None]
        summed = None
        if sub_grid is not None and _SUB_ROWS.start <= b < _SUB_ROWS.stop:
            sub_cells.append(sub_grid.cell_sums(m))
            summed = _fold_cells(sub_cells[-1], sub_grid, grid)
        cells[b] = (grid.cell_sums(m) if summed is None else summed)[0]
        for (y0, y1, x0, x1), stack in crops:
            stack[b] = plane[y0:y1, x0:x1]
        del m, plane
    if sub_grid is None:
        return None
    sn = sub_grid.tile_counts()
    return SubSums(sub_grid, sub_grid.tile_sums_from_cells(np.concatenate(sub_cells)) / sn, sn)


def _fold_cells(cells: np.ndarray, fine: Grid, grid: Grid) -> np.ndarray | None:
    """Sums over ``grid``'s cells from sums ``(K, ny, nx)`` over ``fine``'s, when every cell of ``grid`` is
    a block of ``fine``'s: a stride twice the fine one, so cell ``k`` is fine cells ``2k, 2k+1`` (the last
    one also any remainder cell).  None when the grids do not nest: sum the maps themselves."""
    if fine.stride * 2 != grid.stride or fine.row_starts.size < 2 * grid.row_starts.size \
            or fine.col_starts.size < 2 * grid.col_starts.size:
        return None
    rows = np.add.reduceat(cells, np.arange(0, 2 * grid.row_starts.size, 2), axis=1)
    return np.add.reduceat(rows, np.arange(0, 2 * grid.col_starts.size, 2), axis=2)


def _pixel_maps(ycc: np.ndarray, means: np.ndarray, grid: Grid, cells: np.ndarray) -> None:
    """Fill the ``_KERNEL_ROWS`` of ``cells`` with numpy: what :func:`._kernels.cell_maps` computes, in
    whole-plane passes (the three channels through each step together)."""
    scratch = np.empty_like(ycc)
    centred = np.subtract(ycc, means[:, None, None], out=scratch)
    cells[_YCC_ROWS] = grid.cell_sums(centred)
    cells[_SQ_ROWS] = grid.cell_sums(np.square(centred, out=centred))
    chroma = np.square(ycc[1:3], out=scratch[:2])
    np.add(chroma[0], chroma[1], out=chroma[0])
    cells[MAPS["chroma"]] = grid.cell_sums(np.sqrt(chroma[:1], out=chroma[:1]))[0]
    g = np.empty_like(ycc)
    # horizontal differences on the flat array (one contiguous pass); those that would
    # span the end of a row have no neighbour: zero
    np.subtract(ycc.reshape(-1)[1:], ycc.reshape(-1)[:-1], out=g.reshape(-1)[:-1])
    g[:, :, -1] = 0.0
    np.square(g, out=g)  # dx²
    dy = np.subtract(ycc[:, 1:], ycc[:, :-1], out=scratch[:, :-1])
    g[:, :-1] += np.square(dy, out=dy)
    cells[[_N_MAPS + GRAD_MAPS[n] for n in ("grad_y", "grad_cb", "grad_cr")]] = grid.cell_sums(g)


def _crop_maps(ycc: np.ndarray, means: np.ndarray, box: tuple[int, int, int, int], stack: np.ndarray | RegionSink
               ) -> None:
    """The channel rows of :data:`MAPS` (centred channels, their squares, chroma) on the crop ``box``."""
    y0, y1, x0, x1 = box
    c = ycc[:, y0:y1, x0:x1]
    if isinstance(stack, RegionSink):  # the same numbers, a channel at a time in two planes
        pair = np.empty((2,) + c.shape[1:], np.float32)
        for ch in range(3):
            np.square(np.subtract(c[ch], means[ch], out=pair[0]), out=pair[1])
            stack[[_YCC_ROWS[ch], _SQ_ROWS[ch]]] = pair
        np.add(np.square(c[1], out=pair[0]), np.square(c[2], out=pair[1]), out=pair[0])
        stack[MAPS["chroma"]] = np.sqrt(pair[0], out=pair[0])
        return
    centred = np.subtract(c, means[:, None, None])
    stack[_YCC_ROWS] = centred
    stack[_SQ_ROWS] = np.square(centred, out=centred)
    stack[MAPS["chroma"]] = np.sqrt(np.square(c[1]) + np.square(c[2]))


def _on_grid_cells(ycc: np.ndarray, grid: Grid) -> np.ndarray:
    """Per channel and block grid, the squared differences across block boundaries summed over each cell:
    ``(C, len(BLOCK_GRIDS), ncy, ncx)`` float64 from ``ycc`` ``(C, H, W)``.

    Only the differences on the finest grid are formed -- from strided views, an eighth of
    the plane -- and summed along the other axis cell by cell; the coarser grids'
    boundaries are every ``g / BLOCK_GRIDS[0]``-th of them.  A boundary difference at
    ``x = g-1 (mod g)`` then joins the cell holding ``x`` through a small indicator product.
    """
    h, w = grid.height, grid.width
    b0 = BLOCK_GRIDS[0]
    dx = np.subtract(ycc[:, :, b0::b0], ycc[:, :, b0 - 1:w - 1:b0])  # x = b0-1 (mod b0), x < w-1
    dy = np.subtract(ycc[:, b0::b0], ycc[:, b0 - 1:h - 1:b0])
    across = _row_cells(np.square(dx, out=dx), grid)  # (C, ncy, boundaries along x)
    down = _col_cells(np.square(dy, out=dy), grid)  # (C, boundaries along y, ncx)
    out = []
    for b in BLOCK_GRIDS:
        j = b // b0  # x = b-1 (mod b) is every j-th of x = b0-1 (mod b0)
        out.append(across[:, :, j - 1::j] @ _indicator(w, grid.stride, b).T
                   + _indicator(h, grid.stride, b) @ down[:, j - 1::j])
    return np.stack(out, axis=1)


def _row_cells(a: np.ndarray, grid: Grid) -> np.ndarray:
    """``(C, H, n)`` → ``(C, ncy, n)`` float64: rows summed cell by cell (the last cell takes the remainder).

    As :meth:`Grid.cell_sums`: float32 partial sums over one stride, then float64.
    """
    c, h, n = a.shape
    s, ny = grid.stride, grid.row_starts.size
    if h < s:
        return a.sum(axis=1, keepdims=True, dtype=np.float32).astype(np.float64)
    out = a[:, :ny * s].reshape(c, ny, s, n).sum(axis=2, dtype=np.float32).astype(np.float64)
    out[:, -1] += a[:, ny * s:].sum(axis=1, dtype=np.float32)
    return out


def _col_cells(a: np.ndarray, grid: Grid) -> np.ndarray:
    """``(C, m, W)`` → ``(C, m, ncx)`` float64: columns summed cell by cell (the last cell takes the remainder)."""
    c, m, w = a.shape
    s, nx = grid.stride, grid.col_starts.size
    if w < s:
        return a.sum(axis=2, keepdims=True, dtype=np.float32).astype(np.float64)
    out = a[:, :, :nx * s].reshape(c, m, nx, s).sum(axis=3, dtype=np.float32).astype(np.float64)
    out[:, :, -1] += a[:, :, nx * s:].sum(axis=2, dtype=np.float32)
    return out


@lru_cache(maxsize=64)
def _indicator(n: int, stride: int, step: int) -> np.ndarray:
    """``(n_cells, m)`` float64: 1 where the block boundary ``x_j = step (j + 1) - 1`` (``x_j < n - 1``, the
    ones a forward difference reaches) lies in cell ``c`` of a grid of ``stride`` over ``n`` px
    (the last cell absorbs the remainder, as :func:`harness.measuring.tiles.make_grid` cuts it)."""
    k = max(n // stride, 1)
    cell = np.minimum(np.arange(step - 1, n - 1, step) // stride, k - 1)
    out = (cell[None, :] == np.arange(k)[:, None]).astype(np.float64)
    out.setflags(write=False)
    return out


@lru_cache(maxsize=32)
def _diff_counts(h: int, w: int, tile: int) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """Differences per location (whole image, then tiles): all of them, and those on each block grid."""
    grid = make_grid(h, w, tile)
    ind = np.zeros((1 + len(BLOCK_GRIDS), h, w), dtype=np.float32)
    ind[0, :, :-1] = 1.0
    ind[0, :-1] += 1.0
    for i, g in enumerate(BLOCK_GRIDS, start=1):
        ind[i, :, g - 1:w - 1:g] = 1.0
        ind[i, g - 1:h - 1:g] += 1.0
    cells = grid.cell_sums(ind)
    per = np.concatenate([cells.sum(axis=(1, 2))[:, None], grid.tile_sums_from_cells(cells)], axis=1)
    per.setflags(write=False)
    return per[0], {g: per[i] for i, g in enumerate(BLOCK_GRIDS, start=1)}
