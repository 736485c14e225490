"""The shared, precomputed state of one measurement: :func:`prepare` builds it once per image.

Several metrics need the same expensive intermediates -- the luma/chroma
spectrum, the band-passed luma, the tile grid and mask regions, and the sums of
per-pixel maps over every tile and region -- so :func:`prepare` computes each
exactly once and the metric functions (``harness.measuring.metrics.*``) read
them from a :class:`Context`.

The per-pixel maps (the rows of :data:`MAPS` and :data:`GRAD_MAPS`) and their
sums over tiles and regions are :mod:`harness.measuring.maps`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Callable

import numpy as np

from harness.measuring.bands import (BAND_CENTERS, BAND_NAMES, band_columns, band_filters, band_gains, band_images,
                                    iter_band_images)
from harness.measuring.channels import RGB_SLOTS, planes_to_ycc
from harness.measuring.inputs import as_code_planes, check_mask, checked_image
from harness.measuring.maps import (BLOCK_GRIDS, GRAD_MAPS, MAPS, SUB_BANDS, DiffSums, SliceSums, SubSums,
                                    local_sums)
from harness.measuring.metrics.noise import BENIGN_LSB
from harness.measuring.regions import REGIONS, Regions, bbox, make_regions
from harness.measuring.sizecache import is_large, size_scope
from harness.measuring.slices import SliceLayout
from harness.measuring.tiles import Grid, auto_tile, make_grid

__all__ = ["Context", "SliceSums", "DiffSums", "SubSums", "MAPS", "GRAD_MAPS", "BLOCK_GRIDS", "SUB_BANDS", "prepare",
           "DEFAULT_RING", "DEFAULT_MASK_THRESHOLD"]

DEFAULT_RING = 8  # px
# (spec, y, y_mean, sigma, memo) -> None: a large image's spectrum readers, see prepare
SpectrumReaders = Callable[[np.ndarray, np.ndarray, np.float32, float, dict], None]
DEFAULT_MASK_THRESHOLD = 0.5


@dataclass(frozen=True, eq=False)
class Context:
    """Everything the metric functions share for one image (read-only; see the module docstring)."""

    ycc: np.ndarray  # (3, H, W) float32 Y, Cb, Cr in code values
    spec: np.ndarray | None  # (3, H, W//2+1) complex: rfft2 of ycc; None for a large image (see _large_sums)
    y_mean: np.float32  # mean luma, as float32 (from the DC coefficient; centres the y map and the mean colour)
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
    # what a metric family computes once from the above for others to reuse (e.g. the spectral sums
    # of harness.measuring.metrics.spectral): keyed by the computing module's name for it
    memo: dict[str, Any] = field(default_factory=dict)

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


def _ycc(image: Any, lsb: float | None) -> tuple[np.ndarray, float]:
    """The validated image as ``(3, H, W)`` float32 ``Y, Cb, Cr`` code values, and one LSB in code values."""
    from harness.measuring.compiled import kernels

    if (k := kernels()) is None:
        planes, lsb_code = as_code_planes(image, lsb, slots=RGB_SLOTS, planes=4)
        return planes_to_ycc(planes), lsb_code
    arr, scale, lsb_code = checked_image(image, lsb)
    ycc = np.empty((3,) + arr.shape[:2], dtype=np.float32)
    k.rgb_to_ycc(np.ascontiguousarray(arr), np.float32(1.0) if scale is None else scale, ycc)
    return ycc, lsb_code


def prepare(image: Any, mask: Any = None, *, anchors: Any = None, tile: int | None = None,
            ring: int = DEFAULT_RING, mask_threshold: float = DEFAULT_MASK_THRESHOLD,
            lsb: float | None = None, readers: SpectrumReaders | None = None) -> Context:
    """Validate the inputs and compute what the metrics share; arguments as for :func:`harness.measure`.

    One forward FFT for the three channels, one inverse FFT per band (luma
    only), and a single pass of tile and region sums over the map stack.  A large image
    (:func:`~harness.measuring.sizecache.is_large`) streams its band images into the sums; there
    ``readers(spec, y, y_mean, sigma, memo)`` -- what the metrics read of the spectrum, put into
    ``Context.memo`` -- runs first, and then the context lets the spectrum go (``Context.spec`` None).

    Raises ``ValueError`` for a bad image, mask, anchors or tile size.
    """
    import scipy.fft as sfft

    ycc, lsb_code = _ycc(image, lsb)
    h, w = ycc.shape[1:]
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

    spec = sfft.rfft2(ycc, axes=(-2, -1), workers=1)
    # image means from the DC coefficients (sums): they centre the luma and the squared maps
    means = (spec[:, 0, 0].real / (h * w)).astype(np.float32)
    grid = make_grid(h, w, tile if tile is not None else auto_tile(h, w))
    memo: dict[str, Any] = {}
    if is_large(h, w):
        reader = None if readers is None else (lambda sp: readers(sp, ycc[0], means[0], sigma, memo))
        sums, diffs, sub = _large_sums(ycc, spec, means, grid, regions, anchor_map, reader)
        if readers is not None:
            spec = None  # let go: what the metrics read of it is in memo
    else:
        bands = band_images(spec[0], (h, w), squared=True)
        sums, diffs, sub = local_sums(ycc, bands, means, grid, regions, anchor_map)
    return Context(ycc, spec, means[0], means[1:], lsb_code, sigma, grid, regions, anchor_map,
                   _layout(grid.rows, grid.cols, region_names), sums, diffs, sub, ring, mask_threshold, memo)


def _large_sums(ycc: np.ndarray, spec: np.ndarray, means: np.ndarray, grid: Grid, regions: Regions | None,
                anchor_map: np.ndarray | None, readers: Callable[[np.ndarray], None] | None
                ) -> tuple[SliceSums, DiffSums, SubSums | None]:
    """:func:`local_sums` of a large image (:func:`harness.measuring.sizecache.is_large`), in the order
    that holds the fewest image-sized arrays at once, with the same numbers as the whole-stack path.

    Everything that reads the spectrum runs first -- ``readers(spec)`` (the caller's: the metrics'
    spectral sums and periodic peaks, into ``Context.memo``) and the band images, each squared band
    summed into the tiles and regions and let go before the next is formed -- so the spectrum can
    go before the metrics run.  The band filters are kept only while the readers run (:func:`size_scope`),
    every other spectral weight only while it is read.
    """
    h, w = ycc.shape[1:]
    with size_scope(band_filters) as scope:
        band_columns(h, w), band_gains(h, w)  # small, cached: read later, made while the filters are at hand
        if readers is not None:
            readers(spec)
        scope.drop(band_filters, h, w)  # each band's filter is made alone as it is applied
        return local_sums(ycc, iter_band_images(spec[0], (h, w), squared=True), means, grid, regions, anchor_map)
