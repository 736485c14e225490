"""Where every metric is measured: frequency bands, tiles, mask regions, channels.

One module owns the geometry so that all metrics report on the same slices and
the slice names are stable strings (``band=high tile=r3c5 region=ring ch=Y``).

Bands
    Four octave bands on the radial frequency ``f`` (cycles per pixel), centred
    at 1/16, 1/8, 1/4 and 1/2 (Nyquist) and named ``low, mid, high, top``.  Each
    band filter is a raised cosine in ``log2 f`` one octave wide on either side,
    so neighbouring filters overlap and their *squares* sum to one: the bands
    form a tight frame and band energies add up to the image energy (Parseval),
    while each filter is smooth enough to stay spatially local (a sharp
    brick-wall band would ring into neighbouring tiles and mask regions).
    Frequencies above Nyquist on the diagonal belong to ``top``; those below
    1/16 that ``low`` does not cover form the ``base`` (shading), which is not
    reported as a band -- mean colour and contrast describe it.

Tiles
    A grid of ``tile``-pixel squares with stride ``tile/2`` (half-overlapping),
    so that any local defect up to ``tile/2`` across lies wholly inside one tile.
    The default tile (:func:`auto_tile`) is 64 px, a quarter of the short side
    for images under 256 px.
    The last row/column of cells absorbs the remainder when the image size is
    not a multiple of the stride.  Tile ``rIcJ`` starts at pixel
    ``(I*stride, J*stride)``.  Default ``tile=64`` suits 256-1024 px images
    (7x7 to 31x31 tiles).

Regions (with a mask)
    Soft masks are *thresholded* at ``mask_threshold`` (0.5) for region
    membership.  ``inside`` is the thresholded mask; ``ring`` is the band of
    pixels outside the mask within ``ring`` px of it (Euclidean distance),
    where fills meet original content and where over-dilated fills and seams
    show; ``outside`` is everything farther away.  ``edge`` (inside pixels
    within ``ring`` px of the border) is used by the seam metrics.

Channels
    ``Y, Cb, Cr`` (BT.601) computed on the stored code values, scaled to
    8-bit code values (0..255) so that all reported values are in familiar
    units whatever the bit depth.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

__all__ = [
    "BAND_NAMES",
    "BAND_CENTERS",
    "CHANNELS",
    "REGIONS",
    "Grid",
    "Regions",
    "band_filters",
    "band_gains",
    "radial_frequency",
    "make_grid",
    "auto_tile",
    "make_regions",
    "rgb_to_ycc",
    "slice_name",
]

BAND_NAMES: tuple[str, ...] = ("low", "mid", "high", "top")
BAND_CENTERS: tuple[float, ...] = (1 / 16, 1 / 8, 1 / 4, 1 / 2)
CHANNELS: tuple[str, ...] = ("Y", "Cb", "Cr")
REGIONS: tuple[str, ...] = ("inside", "ring", "outside")

# BT.601 luma and scaled colour differences: Cb, Cr span the same range as Y.
_Y = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def slice_name(*, band: str | None = None, tile: str | None = None, region: str | None = None,
               ch: str | None = None, **extra: str) -> str:
    """The canonical, stable slice string: ``band=.. tile=.. region=.. ch=..`` in that order."""
    parts = []
    for key, value in (("band", band), ("tile", tile), ("region", region), ("ch", ch), *extra.items()):
        if value is not None:
            parts.append(f"{key}={value}")
    return " ".join(parts) if parts else "all"


def rgb_to_ycc(rgb: np.ndarray) -> np.ndarray:
    """``(H, W, 3)`` float32 code values → ``(3, H, W)`` float32 ``Y, Cb, Cr``."""
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    y = _Y[0] * r + _Y[1] * g + _Y[2] * b
    cb = np.float32(0.564) * (b - y)
    cr = np.float32(0.713) * (r - y)
    return np.stack((y, cb, cr))


@lru_cache(maxsize=16)
def radial_frequency(h: int, w: int) -> np.ndarray:
    """Radial frequency (cycles/pixel, float64) on the ``rfft2`` grid of an ``h x w`` image."""
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    f = np.sqrt(fy * fy + fx * fx)
    f.setflags(write=False)
    return f


def _band_response(f: np.ndarray, center: float, is_top: bool) -> np.ndarray:
    with np.errstate(divide="ignore"):
        t = np.log2(np.maximum(f, 1e-12)) - np.log2(center)
    resp = np.where(np.abs(t) < 1.0, np.cos(0.5 * np.pi * t), 0.0)
    if is_top:
        resp = np.where(t >= 0.0, 1.0, resp)
    return resp


@lru_cache(maxsize=16)
def band_filters(h: int, w: int) -> np.ndarray:
    """Band amplitude responses on the ``rfft2`` grid: ``(n_bands, h, w//2+1)`` float32.

    Squares of the responses, plus the ``base`` residual, sum to one everywhere.
    """
    f = radial_frequency(h, w).astype(np.float64)
    filt = np.stack([_band_response(f, c, i == len(BAND_CENTERS) - 1) for i, c in enumerate(BAND_CENTERS)])
    filt[:, 0, 0] = 0.0  # the mean (DC) is never band energy
    out = filt.astype(np.float32)
    out.setflags(write=False)
    return out


@lru_cache(maxsize=16)
def rfft_weights(h: int, w: int) -> np.ndarray:
    """Multiplicity of each ``rfft2`` coefficient in the full spectrum (1 or 2)."""
    wt = np.full((h, w // 2 + 1), 2.0, dtype=np.float32)
    wt[:, 0] = 1.0
    if w % 2 == 0:
        wt[:, -1] = 1.0
    wt.setflags(write=False)
    return wt


@lru_cache(maxsize=16)
def band_gains(h: int, w: int) -> np.ndarray:
    """Fraction of white-noise power each band passes: ``mean |H_b|^2`` over the full plane."""
    filt = band_filters(h, w).astype(np.float64)
    wt = rfft_weights(h, w).astype(np.float64)
    return (filt**2 * wt).sum(axis=(1, 2)) / (h * w)


@dataclass(frozen=True)
class Grid:
    """Half-overlapping tile grid; see the module docstring."""

    height: int
    width: int
    tile: int
    stride: int
    row_starts: np.ndarray  # cell starts along y
    col_starts: np.ndarray  # cell starts along x
    rows: int  # tiles along y
    cols: int  # tiles along x

    @property
    def names(self) -> tuple[str, ...]:
        return _tile_names(self.rows, self.cols)

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


def _tile_counts(grid: Grid) -> np.ndarray:
    ry = np.diff(np.append(grid.row_starts, grid.height)).astype(np.float64)
    rx = np.diff(np.append(grid.col_starts, grid.width)).astype(np.float64)
    if ry.size > 1:
        ry = ry[:-1] + ry[1:]
    if rx.size > 1:
        rx = rx[:-1] + rx[1:]
    return np.outer(ry, rx).ravel()


@lru_cache(maxsize=64)
def _tile_names(rows: int, cols: int) -> tuple[str, ...]:
    return tuple(f"r{r}c{c}" for r in range(rows) for c in range(cols))


def auto_tile(height: int, width: int, largest: int = 64) -> int:
    """Default tile size: 64 px, or a quarter of the short side for images under 256 px.

    A local defect of a few per cent of the image must fill a good part of one
    tile; on a 128 px image a 64 px tile would dilute it fourfold.
    """
    side = min(height, width) // 4
    return int(max(16, min(largest, side - side % 2)))


@lru_cache(maxsize=32)
def make_grid(height: int, width: int, tile: int = 64) -> Grid:
    """Build the tile grid for an image; ``tile`` shrinks to fit small images."""
    if tile < 8 or tile % 2:
        raise ValueError(f"tile must be an even number of pixels >= 8, got {tile}")
    tile = min(tile, height - height % 2, width - width % 2)
    stride = tile // 2
    ny = max(height // stride, 1)
    nx = max(width // stride, 1)
    row_starts = np.arange(ny) * stride
    col_starts = np.arange(nx) * stride
    return Grid(height, width, tile, stride, row_starts, col_starts, max(ny - 1, 1), max(nx - 1, 1))


@dataclass(frozen=True)
class Regions:
    """Boolean region maps derived from a mask (see the module docstring)."""

    inside: np.ndarray
    ring: np.ndarray
    outside: np.ndarray
    edge: np.ndarray  # inside pixels within ``ring_px`` of the border
    depth: np.ndarray  # signed distance to the border: > 0 outside, < 0 inside (px)
    ring_px: int
    threshold: float
    coverage: float  # fraction of pixels inside

    def stack(self) -> np.ndarray:
        """``(3, H, W)`` float32 indicator maps in ``REGIONS`` order."""
        return np.stack([self.inside, self.ring, self.outside]).astype(np.float32)


def make_regions(mask: np.ndarray, *, ring: int = 8, threshold: float = 0.5) -> Regions:
    """Cut a ``(H, W)`` mask (soft values in [0, 1]) into inside / ring / outside.

    Raises ``ValueError`` for an empty mask or one that leaves nothing outside.
    """
    from scipy import ndimage

    if ring < 1:
        raise ValueError(f"ring width must be >= 1 px, got {ring}")
    inside = mask >= threshold
    n_in = int(inside.sum())
    if n_in == 0:
        raise ValueError(f"mask is empty (no pixel >= {threshold})")
    if n_in == inside.size:
        raise ValueError("mask covers the whole image: nothing is left outside it")
    # distance of outside pixels to the nearest inside pixel, and vice versa
    d_out = ndimage.distance_transform_edt(~inside)
    d_in = ndimage.distance_transform_edt(inside)
    ring_map = (~inside) & (d_out <= ring)
    outside = (~inside) & (d_out > ring)
    edge = inside & (d_in <= ring)
    depth = np.where(inside, -d_in, d_out).astype(np.float32)
    return Regions(inside, ring_map, outside, edge, depth, ring, threshold, n_in / inside.size)
