"""The shared, precomputed state of one measurement: :func:`prepare` builds it once per image.

Several metrics need the same expensive intermediates -- the luma/chroma
spectrum, the band-passed luma, the tile grid and mask regions, and the sums of
per-pixel maps over every tile and region -- so :func:`prepare` computes each
exactly once and the metric functions (``harness.measuring.metrics.*``) read
them from a :class:`Context`.

The per-pixel maps (the rows of :data:`MAPS` and :data:`GRAD_MAPS`) are made
a few at a time in scratch planes and summed over the tile grid's cells while
they are still in cache; mask regions and anchors are summed over their
bounding box only.  The order of the maps and of every sum is fixed, so that
the float64 sums are the same, bit for bit, from one run to the next.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from harness.measuring.bands import BAND_CENTERS, BAND_NAMES, band_images
from harness.measuring.channels import rgb_to_ycc
from harness.measuring.inputs import as_code_values, check_mask
from harness.measuring.metrics.noise import BENIGN_LSB
from harness.measuring.regions import REGIONS, Regions, bbox, make_regions
from harness.measuring.slices import SliceLayout
from harness.measuring.tiles import Grid, auto_tile, make_grid, sub_tile

__all__ = ["Context", "SliceSums", "DiffSums", "SubSums", "MAPS", "GRAD_MAPS", "BLOCK_GRIDS", "SUB_BANDS", "prepare",
           "DEFAULT_RING", "DEFAULT_MASK_THRESHOLD"]

DEFAULT_RING = 8  # px
DEFAULT_MASK_THRESHOLD = 0.5

# Rows of the summed per-pixel map stack (all float32, code values or code²).
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
# Difference maps (code²), summed over the whole image and the tiles only (not over mask regions):
# squared forward differences, horizontal at (y, x) = c[y, x+1] - c[y, x] plus vertical, zero where
# the neighbour lies beyond the image.  ``grid8_y``/``grid16_y`` keep only the differences that
# straddle an 8-px (16-px) block boundary: x = 7 (mod 8) horizontally, y = 7 (mod 8) vertically.
# Bands also measured on the finer sub-grid: fine texture is where small, local damage shows first.
SUB_BANDS: tuple[str, ...] = ("high", "top")
_SUB_ROWS = slice(BAND_NAMES.index(SUB_BANDS[0]), BAND_NAMES.index(SUB_BANDS[-1]) + 1)  # adjacent bands
GRAD_MAPS: dict[str, int] = {"grad_y": 0, "grid8_y": 1, "grid16_y": 2, "grad_cb": 3, "grad_cr": 4}
_N_GRAD = len(GRAD_MAPS)
BLOCK_GRIDS: tuple[int, ...] = (8, 16)


@dataclass(frozen=True)
class SliceSums:
    """Per-pixel maps summed over every location of a :class:`SliceLayout`.

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


@dataclass(frozen=True, eq=False)
class Context:
    """Everything the metric functions share for one image (read-only; see the module docstring)."""

    ycc: np.ndarray  # (3, H, W) float32 Y, Cb, Cr in code values
    spec: np.ndarray  # (3, H, W//2+1) complex: rfft2 of ycc
    y_mean: np.float32  # mean luma, as float32 (centres the y map and the mean-colour metric)
    c_mean: np.ndarray  # (2,) float32 image means of Cb and Cr (centre the cb2, cr2 maps)
    lsb: float  # one quantisation step in code values
    sigma: float  # benign noise std in code values (noise.BENIGN_LSB * lsb)
    grid: Grid
    regions: Regions | None  # None without a mask
    anchors: np.ndarray | None  # (H, W) bool; None without anchors or when none is set
    layout: SliceLayout
    sums: SliceSums
    diffs: DiffSums
    sub: SubSums | None  # the top bands on the finer sub-grid; None for tiles under 16 px
    ring: int
    mask_threshold: float

    @property
    def shape(self) -> tuple[int, int]:
        return self.ycc.shape[1], self.ycc.shape[2]

    @property
    def y(self) -> np.ndarray:
        """Luma ``(H, W)`` float32 in code values."""
        return self.ycc[0]

    def meta(self) -> dict[str, Any]:
        """How the image was measured (shape, tile grid, lsb, mask coverage): ``Measurement.meta``.

        With a mask or anchors, ``region_boxes`` maps each region (``inside``,
        ``ring``, ``outside``, ``border``, ``anchor``) to its pixel box ``[x0, y0,
        x1, y1]``; tile boxes follow from ``height``, ``width`` and ``stride``
        (:func:`harness.measuring.tiles.tile_boxes`) and are not stored.
        """
        h, w = self.shape
        meta: dict[str, Any] = {
            "height": h,
            "width": w,
            "tile": self.grid.tile,
            "stride": self.grid.stride,
            "tiles": [self.grid.rows, self.grid.cols],
            "lsb": self.lsb,
            "sigma": self.sigma,
            "bands": {b: c for b, c in zip(BAND_NAMES, BAND_CENTERS)},
        }
        if self.sub is not None:
            meta.update({"sub_tile": self.sub.grid.tile, "sub_stride": self.sub.grid.stride,
                         "sub_tiles": [self.sub.grid.rows, self.sub.grid.cols]})
        if self.regions is not None:
            meta.update({"ring": self.ring, "mask_threshold": self.mask_threshold,
                         "mask_coverage": self.regions.coverage})
        if self.anchors is not None:
            meta["anchor_px"] = int(self.anchors.sum())
        boxes = self.regions.boxes() if self.regions is not None else {}
        if self.anchors is not None and (box := bbox(self.anchors)) is not None:
            boxes["anchor"] = box
        if boxes:
            meta["region_boxes"] = boxes
        return meta


@lru_cache(maxsize=32)
def _layout(rows: int, cols: int, regions: tuple[str, ...]) -> SliceLayout:
    # one instance per layout, so its cached ``local`` and the metric name caches are built once
    return SliceLayout(rows, cols, regions)


def prepare(image: Any, mask: Any = None, *, anchors: Any = None, tile: int | None = None,
            ring: int = DEFAULT_RING, mask_threshold: float = DEFAULT_MASK_THRESHOLD,
            lsb: float | None = None) -> Context:
    """Validate the inputs and compute what the metrics share; arguments as for :func:`harness.measure`.

    One forward FFT for the three channels, one inverse FFT per band (luma
    only), and a single pass of tile and region sums over the map stack.

    Raises ``ValueError`` for a bad image, mask, anchors or tile size.
    """
    import scipy.fft as sfft

    rgb, lsb_code = as_code_values(image, lsb)
    h, w = rgb.shape[:2]
    sigma = BENIGN_LSB * lsb_code
    regions = None
    if mask is not None:
        regions = make_regions(check_mask(mask, (h, w)), ring=ring, threshold=mask_threshold)
    anchor_map = None
    if anchors is not None:
        anchor_map = check_mask(anchors, (h, w)) >= 0.5
        if not anchor_map.any():
            anchor_map = None  # nothing to protect: no anchor slices
    region_names = (REGIONS if regions is not None else ()) + (("anchor",) if anchor_map is not None else ())

    ycc = rgb_to_ycc(rgb)
    spec = sfft.rfft2(ycc, axes=(-2, -1), workers=1)
    y_mean = ycc[0].mean()
    # image means from the DC coefficients (exact sums): they centre the squared maps
    c_mean = (spec[:, 0, 0].real / (h * w)).astype(np.float32)
    grid = make_grid(h, w, tile if tile is not None else auto_tile(h, w))
    bands = band_images(spec[0], (h, w))
    sums, diffs, sub = _slice_sums(ycc, bands, y_mean, c_mean[1:], grid, regions, anchor_map)
    return Context(ycc, spec, y_mean, c_mean[1:], lsb_code, sigma, grid, regions, anchor_map,
                   _layout(grid.rows, grid.cols, region_names), sums, diffs, sub, ring, mask_threshold)


def _slice_sums(ycc: np.ndarray, bands: np.ndarray, y_mean: np.float32, c_mean: np.ndarray, grid: Grid,
                regions: Regions | None, anchor_map: np.ndarray | None
                ) -> tuple[SliceSums, DiffSums, SubSums | None]:
    """Build every row of :data:`MAPS` and :data:`GRAD_MAPS`; sum it over the whole image, the tiles, the regions.

    The maps are made a few at a time by :func:`_emit_maps` (the four squared
    bands, in place; two scratch planes; the three gradient maps together) and
    summed over the cells while they are still in cache: fewer, larger numpy
    calls, the same float32 values and the same order of every float32 sum.
    Mask regions and anchors are summed on their bounding box only: the
    :data:`MAPS` rows are copied there and reduced by :func:`_region_sums`.
    ``bands`` is consumed: it is squared in place.
    """
    h, w = ycc.shape[1:]
    n_maps = _N_MAPS + _N_GRAD
    ncy, ncx = grid.row_starts.size, grid.col_starts.size
    cells = np.empty((n_maps, ncy, ncx))
    # where regions are summed: each crop collects the MAPS rows
    crops: list[tuple[tuple[int, int, int, int], np.ndarray]] = []
    if regions is not None:
        crops.append((_region_crop(regions.crop, h, w), None))
    if anchor_map is not None:
        x0, y0, x1, y1 = bbox(anchor_map)
        crops.append(((y0, y1, x0, x1), None))
    crops = [(box, np.empty((_N_MAPS, box[1] - box[0], box[3] - box[2]), np.float32)) for box, _ in crops]
    sub_grid = make_grid(h, w, st) if (st := sub_tile(grid.tile)) is not None else None
    sub_sums = None

    def emit(k: int | list[int], m: np.ndarray) -> None:
        """Sum the maps ``m`` ``(n, H, W)`` (rows ``k``: the first row, or a list) over the cells and the crops."""
        rows = list(range(k, k + m.shape[0])) if isinstance(k, int) else k
        cells[rows] = grid.cell_sums(m)
        if rows[0] < _N_MAPS:
            for (y0, y1, x0, x1), stack in crops:
                stack[rows] = m[:, y0:y1, x0:x1]

    band_sq = np.multiply(bands, bands, out=bands)  # in place: the band images serve nothing else
    if sub_grid is not None:
        sub_sums = sub_grid.tile_sums(band_sq[_SUB_ROWS])
    chroma_grid = _emit_maps(ycc, band_sq, y_mean, c_mean, emit)

    glob = cells.sum(axis=(1, 2))[:, None]  # (K, 1): the whole image from the cells, not a second pass
    tiles = grid.tile_sums_from_cells(cells)  # (K, T)
    local = np.concatenate([glob, tiles], axis=1)
    parts = [local[:_N_MAPS]]
    counts = [np.array([float(h * w)]), grid.tile_counts()]
    i = 0
    if regions is not None:
        box, stack = crops[i]
        i += 1
        members = _crop_members(regions, box)
        parts.append(_region_sums(stack, glob[:_N_MAPS, 0], members, complement=2 if box != (0, h, 0, w) else None))
        counts.append(np.array(regions.counts, dtype=np.float64))
    if anchor_map is not None:
        (y0, y1, x0, x1), stack = crops[i]
        parts.append(_region_sums(stack, glob[:_N_MAPS, 0], (anchor_map[y0:y1, x0:x1],)))
        counts.append(np.array([float(np.count_nonzero(anchor_map))]))
    sums = np.concatenate(parts, axis=1)  # (K, S) for S = 1 + T (+ R)
    n = np.concatenate(counts)
    n_all, n_grid = _diff_counts(grid.height, grid.width, grid.tile)
    diffs = DiffSums(local[_N_MAPS:], n_all, n_grid, chroma_grid)
    sub = None
    if sub_sums is not None:
        sn = sub_grid.tile_counts()
        sub = SubSums(sub_grid, sub_sums / sn, sn)
    return SliceSums(sums, n, sums / np.maximum(n, 1.0)), diffs, sub


def _emit_maps(ycc: np.ndarray, band_sq: np.ndarray, y_mean: np.float32, c_mean: np.ndarray, emit) -> np.ndarray:
    """Make every row of :data:`MAPS` and :data:`GRAD_MAPS` and hand it to ``emit(row(s), maps (n, H, W))``.

    Returns the chroma block-grid sums of :func:`_diff_maps`.
    """
    h, w = ycc.shape[1:]
    emit(MAPS["band_sq"].start, band_sq)
    two = np.empty((2, h, w), dtype=np.float32)
    yc = np.subtract(ycc[0], np.float32(y_mean), out=two[0])
    emit(MAPS["y"], yc[None])
    emit(MAPS["y2"], np.multiply(yc, yc, out=yc)[None])
    cb, cr = ycc[1], ycc[2]
    emit(MAPS["cb"], ycc[1:3])  # cb, cr: adjacent rows of MAPS
    chroma = np.multiply(cb, cb, out=two[0])
    chroma += np.square(cr, out=two[1])
    emit(MAPS["chroma"], np.sqrt(chroma, out=chroma)[None])
    # cb2, cr2: adjacent rows of MAPS
    centred = np.subtract(ycc[1:3], c_mean.astype(np.float32)[:, None, None], out=two)
    emit(MAPS["cb2"], np.multiply(centred, centred, out=centred))
    return _diff_maps(ycc, lambda names, m: emit([_N_MAPS + GRAD_MAPS[n] for n in names], m), two)


def _region_crop(crop: tuple[int, int, int, int], h: int, w: int) -> tuple[int, int, int, int]:
    """Where the mask regions are summed: their crop, or the whole image when the crop holds over half of it.

    Beyond the crop everything is ``outside``, whose sum is then the whole image's
    minus the crop's: a difference taken only where ``outside`` keeps at least
    half the image, so it cannot cancel.
    """
    y0, y1, x0, x1 = crop
    return (0, h, 0, w) if 2 * (y1 - y0) * (x1 - x0) > h * w else crop


def _crop_members(regions: Regions, box: tuple[int, int, int, int]) -> tuple[np.ndarray, ...]:
    """``inside``, ``ring`` and ``outside`` on ``box`` (the regions' crop, or the whole image)."""
    if box == regions.crop:
        return regions.inside_c, regions.ring_c, regions.outside_c
    return regions.inside, regions.ring, regions.outside


def _region_sums(stack: np.ndarray, totals: np.ndarray, members: tuple[np.ndarray, ...],
                 complement: int | None = None) -> np.ndarray:
    """Sums ``(K, R)`` of the crop's maps ``stack`` ``(K, h, w)`` over regions given by crop-local bool maps.

    Region ``complement`` (if any) also holds every pixel beyond the crop: its
    sum is the crop's share plus ``totals`` (the whole-image sums) minus the
    crop's sums (see :func:`_region_crop`).
    """
    k = stack.shape[0]
    # regions are arbitrary shapes: one (K, n) @ (n, R) product sums every map over every region
    sub = stack.reshape(k, -1).astype(np.float64)
    beyond = complement is not None
    reg = np.stack([m.reshape(-1) for m in members] + ([np.ones(sub.shape[1], bool)] if beyond else []))
    out = sub @ reg.T.astype(np.float64)
    if beyond:
        out[:, complement] += totals - out[:, -1]
        out = out[:, :-1]
    return out


def _diff_maps(ycc: np.ndarray, emit, two: np.ndarray) -> np.ndarray:
    """Make the :data:`GRAD_MAPS` rows and hand them to ``emit(names, maps)``; ``two`` is ``(2, H, W)`` scratch.

    The three channels go through each step together.  Returns ``(2, len(BLOCK_GRIDS))``
    float64: for Cb and Cr, the whole-image sum of the squared differences
    straddling each grid's block boundaries.
    """
    _, h, w = ycc.shape
    g = np.empty((3, h, w), dtype=np.float32)
    # horizontal differences on the flat array (one contiguous pass); those that would
    # span the end of a row have no neighbour: zero
    flat = g.reshape(-1)
    np.subtract(ycc.reshape(-1)[1:], ycc.reshape(-1)[:-1], out=flat[:-1])
    g[:, :, -1] = 0.0
    np.multiply(g, g, out=g)  # dx²
    dy = np.subtract(ycc[:, 1:], ycc[:, :-1])
    np.multiply(dy, dy, out=dy)  # dy²
    on = two if two.shape[0] == len(BLOCK_GRIDS) else np.empty((len(BLOCK_GRIDS), h, w), dtype=np.float32)
    on.fill(0.0)
    for i, grid in enumerate(BLOCK_GRIDS):
        on[i, :, grid - 1:w - 1:grid] = g[0, :, grid - 1:w - 1:grid]
        on[i, grid - 1:h - 1:grid] += dy[0, grid - 1::grid]
    emit([f"grid{grid}_y" for grid in BLOCK_GRIDS], on)
    chroma_grid = np.zeros((2, len(BLOCK_GRIDS)))
    for ch in (1, 2):
        for j, grid in enumerate(BLOCK_GRIDS):
            chroma_grid[ch - 1, j] = (float(g[ch, :, grid - 1:w - 1:grid].sum(dtype=np.float64))
                                      + float(dy[ch, grid - 1::grid].sum(dtype=np.float64)))
    g[:, :-1] += dy
    emit(["grad_y", "grad_cb", "grad_cr"], g)
    return chroma_grid


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
    for a in (per,):
        a.setflags(write=False)
    return per[0], {g: per[i] for i, g in enumerate(BLOCK_GRIDS, start=1)}
