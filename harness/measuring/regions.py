"""Mask regions: ``inside``, ``ring`` and ``outside`` a mask (and ``edge`` for the seam metrics).

Soft masks are *thresholded* at ``mask_threshold`` (0.5) for region
membership.  ``inside`` is the thresholded mask; ``ring`` is the band of pixels
outside the mask within ``ring`` px of it (Euclidean distance), where fills
meet original content and where over-dilated fills and seams show; ``outside``
is everything farther away.  ``edge`` (inside pixels within ``ring`` px of the
border) is used by the seam metrics.

**Where the work is done.**  Everything but ``outside`` lies within ``ring`` px
of the mask, so the distance transforms run only on a *crop*: the bounding box
of the mask grown by :func:`crop_margin` px (``max(ring, EXACT_DEPTH_PX) + 1``)
and clipped to the image.  This is exact, not an approximation: a pixel outside
the crop is more than the margin away from every mask pixel (so it is
``outside``), the distance of a crop pixel to the nearest mask pixel is found
inside the crop (the whole mask is there), and the distance of a mask pixel to
the nearest non-mask pixel is too (the projection of any pixel beyond the crop
onto the crop's rim is a nearer non-mask pixel, or the image border).  Region
membership is therefore exactly the whole-image definition above.

On the crop, distances are needed only up to ``R = max(ring, EXACT_DEPTH_PX)``
px, so instead of a full Euclidean distance transform :func:`bounded_sq_distance`
takes, for every pixel, the least ``dy² + gx(y + dy)²`` over ``|dy| <= R``, ``gx``
being the horizontal distance to the nearest site in that row (two running
maxima).  That is exact wherever the distance is at most ``R`` (the nearest
site then lies within ``R`` rows) and above ``R`` everywhere else, which is
all that ``ring``, ``edge`` and the seam shells ask.  The signed distance map
:attr:`Regions.depth` is therefore exact wherever ``|depth| <= R`` and
``+-inf`` beyond.  A mask spread over the whole image makes the crop the whole
image.

:meth:`Regions.boxes` gives each region's pixel box ``[x0, y0, x1, y1]`` (the
bounding box of its pixels, exclusive ends) -- ``border`` being ``edge | ring``,
where the seam metrics measure -- which ``Measurement.meta["region_boxes"]``
records so that a check on a region can say where it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

__all__ = ["REGIONS", "Regions", "make_regions", "bbox", "crop_margin", "bounded_sq_distance", "EXACT_DEPTH_PX"]

REGIONS: tuple[str, ...] = ("inside", "ring", "outside")
# the signed distance is exact at least this far from the border (the seam metrics' shells need 4 px)
EXACT_DEPTH_PX = 4


def crop_margin(ring: int) -> int:
    """Pixels the crop extends beyond the mask's bounding box (see the module docstring)."""
    return max(int(ring), EXACT_DEPTH_PX) + 1


@dataclass(frozen=True, eq=False)
class Regions:
    """Region maps derived from a mask (see the module docstring).

    The ``*_c`` arrays are ``crop``-local (``crop = (y0, y1, x0, x1)``, exclusive
    ends); the whole-image maps ``inside``, ``ring``, ``outside``, ``edge`` and
    ``depth`` are built from them on first use.
    """

    shape: tuple[int, int]
    crop: tuple[int, int, int, int]
    inside_c: np.ndarray  # bool, crop-local
    ring_c: np.ndarray
    edge_c: np.ndarray  # inside pixels within ``ring_px`` of the border
    depth_c: np.ndarray  # signed distance to the border: > 0 outside, < 0 inside (px, float32; +-inf beyond R)
    ring_px: int
    threshold: float
    coverage: float  # fraction of pixels inside

    @property
    def window(self) -> tuple[slice, slice]:
        """``(rows, cols)`` slices of the crop in the image."""
        y0, y1, x0, x1 = self.crop
        return slice(y0, y1), slice(x0, x1)

    @cached_property
    def outside_c(self) -> np.ndarray:
        return ~(self.inside_c | self.ring_c)

    def _full(self, local: np.ndarray, fill) -> np.ndarray:
        out = np.full(self.shape, fill, dtype=local.dtype)
        out[self.window] = local
        return out

    @cached_property
    def inside(self) -> np.ndarray:
        return self._full(self.inside_c, False)

    @cached_property
    def ring(self) -> np.ndarray:
        return self._full(self.ring_c, False)

    @cached_property
    def outside(self) -> np.ndarray:
        return self._full(self.outside_c, True)

    @cached_property
    def edge(self) -> np.ndarray:
        return self._full(self.edge_c, False)

    @cached_property
    def depth(self) -> np.ndarray:
        """Whole-image signed distance (float32): exact within ``max(ring, EXACT_DEPTH_PX)`` px, ``+-inf`` beyond."""
        return self._full(self.depth_c, np.float32(np.inf))

    @cached_property
    def counts(self) -> tuple[int, int, int]:
        """Pixels ``inside``, in the ``ring`` and ``outside``."""
        n_in, n_ring = int(self.inside_c.sum()), int(self.ring_c.sum())
        return n_in, n_ring, self.shape[0] * self.shape[1] - n_in - n_ring

    def stack(self) -> np.ndarray:
        """``(3, H, W)`` float32 indicator maps in ``REGIONS`` order."""
        return np.stack([self.inside, self.ring, self.outside]).astype(np.float32)

    def boxes(self) -> dict[str, list[int]]:
        """Pixel box of ``inside``, ``ring``, ``outside`` and ``border`` (edge | ring); empty ones left out."""
        y0, _, x0, _ = self.crop
        out: dict[str, list[int]] = {}
        for name, m in (("inside", self.inside_c), ("ring", self.ring_c), ("border", self.edge_c | self.ring_c)):
            b = bbox(m)
            if b is not None:
                out[name] = [b[0] + x0, b[1] + y0, b[2] + x0, b[3] + y0]
        if (b := self._outside_box()) is not None:
            out["outside"] = b
        out = {k: out[k] for k in ("inside", "ring", "outside", "border") if k in out}
        return out

    def _outside_box(self) -> list[int] | None:
        # every pixel beyond the crop is outside: only the crop's own rows/columns need a look
        h, w = self.shape
        y0, y1, x0, x1 = self.crop
        oc = self.outside_c
        rows = np.ones(h, bool)
        rows[y0:y1] = (x1 - x0 < w) | oc.any(axis=1)
        cols = np.ones(w, bool)
        cols[x0:x1] = (y1 - y0 < h) | oc.any(axis=0)
        r, c = np.flatnonzero(rows), np.flatnonzero(cols)
        if r.size == 0 or c.size == 0:
            return None
        return [int(c[0]), int(r[0]), int(c[-1]) + 1, int(r[-1]) + 1]


def bbox(m: np.ndarray) -> list[int] | None:
    """``[x0, y0, x1, y1]`` (exclusive ends) of the true pixels of a ``(H, W)`` bool map; None if there are none."""
    rows = np.flatnonzero(m.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(m.any(axis=0))
    return [int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1]


def bounded_sq_distance(sites: np.ndarray, r: int) -> np.ndarray:
    """Squared Euclidean distance (int32) of every pixel to the nearest ``True`` of ``sites`` ``(..., h, w)``.

    Exact wherever it is at most ``r²``; elsewhere some value above ``r²``.
    There are no sites beyond the array (as ``scipy.ndimage.distance_transform_edt``
    has it: the distance there is to the nearest zero *in* the array).  Leading
    axes are separate maps, done together (fewer, larger numpy calls).
    """
    h, w = sites.shape[-2:]
    from harness.measuring.compiled import kernels

    if (k := kernels()) is not None:
        flat = np.ascontiguousarray(sites.reshape(-1, h, w), dtype=np.bool_)
        out = np.empty(flat.shape, np.int32)
        k.bounded_sq_distance(flat, int(r), out)
        return out.reshape(sites.shape)
    big = r + 1
    x = np.arange(w, dtype=np.int32)
    left = np.maximum.accumulate(np.where(sites, x, -(w + big)), axis=-1)  # nearest site at or left of x
    right = np.minimum.accumulate(np.where(sites, x, 2 * w + big)[..., ::-1], axis=-1)[..., ::-1]
    gx = np.minimum(np.minimum(x - left, right - x), big)
    # every value below is at most big² + r² (exact integers): int16 where that fits, for half the traffic
    small = big * big + r * r <= np.iinfo(np.int16).max
    g2 = gx.astype(np.int16) if small else gx
    g2 = g2 * g2
    d2 = g2.copy()
    tmp = np.empty_like(g2)
    for dy in range(1, min(r, h - 1) + 1):
        np.add(g2[..., :-dy, :], dy * dy, out=tmp[..., :-dy, :])
        np.minimum(d2[..., dy:, :], tmp[..., :-dy, :], out=d2[..., dy:, :])
        np.add(g2[..., dy:, :], dy * dy, out=tmp[..., dy:, :])
        np.minimum(d2[..., :-dy, :], tmp[..., dy:, :], out=d2[..., :-dy, :])
    return d2.astype(np.int32, copy=False)


def make_regions(mask: np.ndarray, *, ring: int = 8, threshold: float = 0.5) -> Regions:
    """Cut a ``(H, W)`` mask (soft values in [0, 1]) into inside / ring / outside; ``ring`` in px.

    Raises ``ValueError`` for an empty mask or one that leaves nothing outside.
    """
    if ring < 1:
        raise ValueError(f"ring width must be >= 1 px, got {ring}")
    inside = mask >= threshold
    h, w = inside.shape
    b = bbox(inside)
    if b is None:
        raise ValueError(f"mask is empty (no pixel >= {threshold})")
    bx0, by0, bx1, by1 = b
    m = crop_margin(ring)
    y0, y1, x0, x1 = max(by0 - m, 0), min(by1 + m, h), max(bx0 - m, 0), min(bx1 + m, w)
    inside_c = inside[y0:y1, x0:x1]
    n_in = int(np.count_nonzero(inside_c))
    if n_in == h * w:
        raise ValueError("mask covers the whole image: nothing is left outside it")
    r = m - 1  # max(ring, EXACT_DEPTH_PX)
    # squared distance of outside pixels to the nearest inside pixel, and of inside pixels to the
    # nearest outside one (exact up to r on the crop; see the module docstring)
    d2_out, d2_in = bounded_sq_distance(np.stack([inside_c, ~inside_c]), r)
    r2 = ring * ring
    ring_c = (~inside_c) & (d2_out <= r2)
    edge_c = inside_c & (d2_in <= r2)
    d2 = np.where(inside_c, d2_in, d2_out)
    depth_c = np.where(d2 <= r * r, np.sqrt(d2.astype(np.float32)), np.float32(np.inf))
    np.negative(depth_c, out=depth_c, where=inside_c)
    return Regions((h, w), (y0, y1, x0, x1), inside_c, ring_c, edge_c, depth_c.astype(np.float32), ring, threshold,
                   n_in / (h * w))
