"""Mask regions: ``inside``, ``ring`` and ``outside`` a mask (and ``edge`` for the seam metrics).

Soft masks are *thresholded* at ``mask_threshold`` (0.5) for region
membership.  ``inside`` is the thresholded mask; ``ring`` is the band of pixels
outside the mask within ``ring`` px of it (Euclidean distance), where fills
meet original content and where over-dilated fills and seams show; ``outside``
is everything farther away.  ``edge`` (inside pixels within ``ring`` px of the
border) is used by the seam metrics.

:meth:`Regions.boxes` gives each region's pixel box ``[x0, y0, x1, y1]`` (the
bounding box of its pixels, exclusive ends) -- ``border`` being ``edge | ring``,
where the seam metrics measure -- which ``Measurement.meta["region_boxes"]``
records so that a check on a region can say where it is.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["REGIONS", "Regions", "make_regions", "bbox"]

REGIONS: tuple[str, ...] = ("inside", "ring", "outside")


@dataclass(frozen=True)
class Regions:
    """Boolean ``(H, W)`` region maps derived from a mask (see the module docstring)."""

    inside: np.ndarray
    ring: np.ndarray
    outside: np.ndarray
    edge: np.ndarray  # inside pixels within ``ring_px`` of the border
    depth: np.ndarray  # signed distance to the border: > 0 outside, < 0 inside (px, float32)
    ring_px: int
    threshold: float
    coverage: float  # fraction of pixels inside

    def stack(self) -> np.ndarray:
        """``(3, H, W)`` float32 indicator maps in ``REGIONS`` order."""
        return np.stack([self.inside, self.ring, self.outside]).astype(np.float32)

    def boxes(self) -> dict[str, list[int]]:
        """Pixel box of ``inside``, ``ring``, ``outside`` and ``border`` (edge | ring); empty ones left out."""
        maps = {"inside": self.inside, "ring": self.ring, "outside": self.outside, "border": self.edge | self.ring}
        return {name: b for name, m in maps.items() if (b := bbox(m)) is not None}


def bbox(m: np.ndarray) -> list[int] | None:
    """``[x0, y0, x1, y1]`` (exclusive ends) of the true pixels of a ``(H, W)`` bool map; None if there are none."""
    rows = np.flatnonzero(m.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(m.any(axis=0))
    return [int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1]


def make_regions(mask: np.ndarray, *, ring: int = 8, threshold: float = 0.5) -> Regions:
    """Cut a ``(H, W)`` mask (soft values in [0, 1]) into inside / ring / outside; ``ring`` in px.

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
