"""The shared, precomputed state of one measurement: :func:`prepare` builds it once per image.

Several metrics need the same expensive intermediates -- the luma/chroma
spectrum, the band-passed luma, the tile grid and mask regions, and the sums of
per-pixel maps over every tile and region -- so :func:`prepare` computes each
exactly once and the metric functions (``harness.measuring.metrics.*``) read
them from a :class:`Context`.

The per-pixel maps are summed over tiles and regions in a *single* pass over
one ``(K, H, W)`` stack: tile and region sums are the bulk of the local work,
and one strided reduction over K maps costs little more than over one.  The
stack order is fixed (the rows of :data:`MAPS`) so that the float64 sums are
the same, bit for bit, from one version to the next.
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
from harness.measuring.tiles import Grid, auto_tile, make_grid

__all__ = ["Context", "SliceSums", "MAPS", "prepare", "DEFAULT_RING", "DEFAULT_MASK_THRESHOLD"]

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
}
_N_MAPS = _NB + 5


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


@dataclass(frozen=True, eq=False)
class Context:
    """Everything the metric functions share for one image (read-only; see the module docstring)."""

    ycc: np.ndarray  # (3, H, W) float32 Y, Cb, Cr in code values
    spec: np.ndarray  # (3, H, W//2+1) complex: rfft2 of ycc
    y_mean: np.float32  # mean luma, as float32 (centres the y map and the mean-colour metric)
    lsb: float  # one quantisation step in code values
    sigma: float  # benign noise std in code values (noise.BENIGN_LSB * lsb)
    grid: Grid
    regions: Regions | None  # None without a mask
    anchors: np.ndarray | None  # (H, W) bool; None without anchors or when none is set
    layout: SliceLayout
    sums: SliceSums
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
    grid = make_grid(h, w, tile if tile is not None else auto_tile(h, w))
    sums = _slice_sums(ycc, band_images(spec[0], (h, w)), y_mean, grid, regions, anchor_map)
    return Context(ycc, spec, y_mean, lsb_code, sigma, grid, regions, anchor_map,
                   _layout(grid.rows, grid.cols, region_names), sums, ring, mask_threshold)


def _slice_sums(ycc: np.ndarray, bands: np.ndarray, y_mean: np.float32, grid: Grid,
                regions: Regions | None, anchor_map: np.ndarray | None) -> SliceSums:
    """Build the :data:`MAPS` stack and sum it over the whole image, the tiles and the regions."""
    h, w = ycc.shape[1:]
    yc = ycc[0] - np.float32(y_mean)
    cb, cr = ycc[1], ycc[2]
    maps = np.empty((_N_MAPS, h, w), dtype=np.float32)
    np.multiply(bands, bands, out=maps[MAPS["band_sq"]])
    maps[MAPS["y"]] = yc
    np.multiply(yc, yc, out=maps[MAPS["y2"]])
    maps[MAPS["cb"]] = cb
    maps[MAPS["cr"]] = cr
    np.sqrt(cb * cb + cr * cr, out=maps[MAPS["chroma"]])

    cells = grid.cell_sums(maps)
    glob = cells.sum(axis=(1, 2))[:, None]  # (K, 1): the whole image from the cells, not a second pass
    tiles = grid.tile_sums_from_cells(cells)  # (K, T)
    parts = [glob, tiles]
    counts = [np.array([float(h * w)]), grid.tile_counts()]
    stacks = ([regions.stack()] if regions is not None else []) + (
        [anchor_map[None].astype(np.float32)] if anchor_map is not None else [])
    if stacks:
        # regions are arbitrary shapes: one (K, HW) @ (HW, R) product sums every map over every region
        reg = np.concatenate(stacks).reshape(sum(s.shape[0] for s in stacks), -1).astype(np.float64)
        parts.append(maps.reshape(_N_MAPS, -1).astype(np.float64) @ reg.T)
        counts.append(reg.sum(axis=1))
    sums = np.concatenate(parts, axis=1)  # (K, S) for S = 1 + T (+ R)
    n = np.concatenate(counts)
    return SliceSums(sums, n, sums / np.maximum(n, 1.0))
