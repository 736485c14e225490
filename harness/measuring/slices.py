"""Slices: what a slice is, how its name is spelled, and the order local slices come in.

A *slice* is one place a metric is measured: a frequency band
(:mod:`harness.measuring.bands`), a location -- the whole image, a tile
(:mod:`harness.measuring.tiles`) or a mask region
(:mod:`harness.measuring.regions`) -- and a channel
(:mod:`harness.measuring.channels`).  Every metric reports on the same slices,
and slice names are stable strings (``band=high tile=r3c5 region=ring ch=Y``)
that baselines store, so :func:`slice_name` is the one place that spells them.
Each metric module builds the names of its own slices with it.

A slice at a tile or a region is *spatial*: :func:`slice_location` picks its
location out of the name, and ``Measurement.boxes`` turns that into the pixel
box ``[x0, y0, x1, y1]`` of the measured image.  Whole-image slices (no
``tile=`` or ``region=``) have no box: a box marks a local finding.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property, lru_cache

from harness.measuring.tiles import tile_names

__all__ = ["slice_name", "slice_location", "SliceLayout"]


def slice_name(*, band: str | None = None, tile: str | None = None, region: str | None = None,
               ch: str | None = None, **extra: str) -> str:
    """The canonical, stable slice string: ``band=.. tile=.. region=.. ch=..`` in that order.

    Extra keys follow in the order given (``d=+1``, ``f=0.0221``); with no key
    at all the slice is the whole image, ``all``.
    """
    parts = []
    for key, value in (("band", band), ("tile", tile), ("region", region), ("ch", ch), *extra.items()):
        if value is not None:
            parts.append(f"{key}={value}")
    return " ".join(parts) if parts else "all"


@lru_cache(maxsize=8192)
def slice_location(name: str) -> tuple[str | None, str | None]:
    """``(tile, region)`` of a slice name, each None when absent: ``("r3c5", None)``, ``(None, "ring")``.

    A sub-tile (``sub=r7c9``, the finer grid of the top bands, see
    :func:`harness.measuring.tiles.sub_tile`) reads as tile ``"sub:r7c9"``.
    """
    tile = region = None
    for part in str(name).split(" "):
        if part.startswith("tile="):
            tile = part[5:]
        elif part.startswith("region="):
            region = part[7:]
        elif part.startswith("sub=") and tile is None:
            tile = "sub:" + part[4:]
    return tile, region


@dataclass(frozen=True)
class SliceLayout:
    """The local slices of one measurement, in the column order of the summed maps.

    Column 0 is the whole image, then ``rows x cols`` tiles (row-major), then
    the named regions (``inside, ring, outside`` with a mask, ``anchor`` with
    anchors).  Hashable, so metric modules can cache their slice names per layout.
    """

    rows: int
    cols: int
    regions: tuple[str, ...] = ()

    @property
    def tiles(self) -> tuple[str, ...]:
        return tile_names(self.rows, self.cols)

    @cached_property
    def local(self) -> tuple[dict[str, str], ...]:
        """:func:`slice_name` keywords of every local slice: ``{"tile": "r0c0"}``, ..., ``{"region": "ring"}``."""
        return tuple({"tile": t} for t in self.tiles) + tuple({"region": r} for r in self.regions)

    def __len__(self) -> int:
        """Number of local slices (tiles + regions), without the whole image."""
        return self.rows * self.cols + len(self.regions)
