"""The result of measuring one image: named slice values with their noise floors."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import Any, Iterator, Mapping, Sequence

import numpy as np

from harness.measuring.slices import slice_location
from harness.measuring.tiles import tile_boxes, tile_names

Box = tuple[int, int, int, int]

__all__ = ["MetricValues", "Measurement", "Box", "floor_std"]


@dataclass(frozen=True)
class MetricValues:
    """All slices of one metric: parallel arrays of value, noise ``std`` and noise ``bias``."""

    slices: tuple[str, ...]
    values: np.ndarray
    std: np.ndarray
    bias: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.slices)
        for name in ("values", "std", "bias"):
            arr = np.asarray(getattr(self, name), dtype=np.float64).ravel()
            if arr.shape != (n,):
                raise ValueError(f"{name} has {arr.size} entries for {n} slices")
            object.__setattr__(self, name, arr)

    def __len__(self) -> int:
        return len(self.slices)

    def get(self, slice_name: str) -> float:
        return float(self.values[self.slices.index(slice_name)])


@dataclass(frozen=True)
class Measurement:
    """Every slice value of one image, as returned by :func:`harness.measure`.

    ``metrics`` maps a metric name (see :data:`harness.measuring.metrics.METRICS`) to its
    :class:`MetricValues`; ``meta`` records how it was measured (shape, tile,
    ring, lsb, mask coverage) so that two measurements can be checked for
    comparability.
    """

    metrics: dict[str, MetricValues]
    meta: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, metric: str) -> MetricValues:
        return self.metrics[metric]

    def __iter__(self) -> Iterator[str]:
        return iter(self.metrics)

    def value(self, metric: str, slice_name: str) -> float:
        return self.metrics[metric].get(slice_name)

    def __len__(self) -> int:
        return sum(len(m) for m in self.metrics.values())

    def box(self, slice_name: str) -> Box | None:
        """Pixel box ``(x0, y0, x1, y1)`` of a spatial slice (exclusive ends); None for a whole-image slice."""
        return self.boxes((slice_name,))[0]

    def boxes(self, slices: Sequence[str]) -> list[Box | None]:
        """:meth:`box` of each slice.

        Tile boxes follow from ``meta`` (``height``, ``width``, ``stride``,
        ``tiles``); region boxes come from ``meta["region_boxes"]``, which older
        measurements lack (their regions get no box).  A slice naming both a tile
        and a region gets the intersection.
        """
        key = self._box_key
        if key is None:
            return [None] * len(slices)
        return list(_boxes_for(tuple(slices), key))

    def box_locations(self) -> frozenset[tuple[str, str]]:
        """The ``("tile", "r0c0")`` / ``("region", "ring")`` locations this measurement has boxes for."""
        key = self._box_key
        return frozenset(_box_table(key)) if key is not None else frozenset()

    @cached_property
    def _box_key(self) -> tuple | None:
        """A hashable digest of the meta that boxes depend on (None: no box at all)."""
        meta = self.meta
        grid = None
        try:
            grid = (int(meta["height"]), int(meta["width"]), int(meta["stride"]), *(int(x) for x in meta["tiles"]))
            if len(grid) != 5:
                grid = None
        except (KeyError, TypeError, ValueError):
            grid = None
        regions: list[tuple[str, Box]] = []
        found = meta.get("region_boxes")
        if isinstance(found, dict):
            for name, b in found.items():
                try:
                    x0, y0, x1, y1 = (int(v) for v in b)
                except (TypeError, ValueError):
                    continue
                regions.append((str(name), (x0, y0, x1, y1)))
        sub = None
        try:
            if "sub_stride" in meta:
                sub = (int(meta["height"]), int(meta["width"]), int(meta["sub_stride"]),
                       *(int(x) for x in meta["sub_tiles"]))
                if len(sub) != 5:
                    sub = None
        except (KeyError, TypeError, ValueError):
            sub = None
        if grid is None and sub is None and not regions:
            return None
        return grid, tuple(sorted(regions)), sub

    def records(self) -> Iterator[tuple[str, str, float, float, float]]:
        """Yield ``(metric, slice, value, std, bias)`` for every slice."""
        for name, mv in self.metrics.items():
            for s, v, sd, b in zip(mv.slices, mv.values.tolist(), mv.std.tolist(), mv.bias.tolist()):
                yield name, s, v, sd, b

    def to_frame(self):
        """A pandas DataFrame with columns ``metric, slice, value, std, bias``."""
        import pandas as pd

        return pd.DataFrame.from_records(list(self.records()), columns=["metric", "slice", "value", "std", "bias"])

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: ``{"meta": {...}, "metrics": {name: {"slices", "values", "std", "bias"}}}``."""
        return {
            "meta": dict(self.meta),
            "metrics": {
                name: {
                    "slices": list(mv.slices),
                    "values": [round_value(v) for v in mv.values.tolist()],
                    "std": [round_value(v, 3) for v in mv.std.tolist()],
                    "bias": [round_value(v, 3) for v in mv.bias.tolist()],
                }
                for name, mv in self.metrics.items()
            },
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Measurement":
        """Inverse of :meth:`to_dict`; raises ``ValueError`` on a malformed document."""
        try:
            metrics = {
                name: MetricValues(tuple(d["slices"]), np.asarray(d["values"], np.float64),
                                   np.asarray(d["std"], np.float64), np.asarray(d["bias"], np.float64))
                for name, d in data["metrics"].items()
            }
            return cls(metrics, dict(data.get("meta", {})))
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"malformed measurement document ({type(exc).__name__}: {exc})") from None


def floor_std(m: Measurement, spread: Mapping[str, Mapping[str, float]] | None) -> Measurement:
    """``m`` with each slice's ``std`` raised to at least its calibrated ``spread[metric][slice]``
    (``harness bake --calibrate``); slices and metrics without one keep theirs.  Returns ``m``
    itself when there is nothing to floor."""
    if not spread:
        return m
    metrics = dict(m.metrics)
    changed = False
    for name, mv in m.metrics.items():
        floors = spread.get(name)
        if not floors:
            continue
        f = np.array([floors.get(s, 0.0) for s in mv.slices], np.float64)
        f = np.where(np.isfinite(f), f, 0.0)
        if np.any(f > mv.std):
            metrics[name] = MetricValues(mv.slices, mv.values, np.maximum(mv.std, f), mv.bias)
            changed = True
    return Measurement(metrics, m.meta) if changed else m


@lru_cache(maxsize=64)
def _box_table(key: tuple) -> dict[tuple[str, str], Box]:
    grid, regions, sub = key
    table: dict[tuple[str, str], Box] = {}
    for g, prefix in ((grid, ""), (sub, "sub:")):
        if g is None:
            continue
        h, w, stride, rows, cols = g
        boxes = tile_boxes(h, w, stride) if h > 0 and w > 0 and stride > 0 else ()
        if len(boxes) == rows * cols:  # a grid :func:`harness.measuring.tiles.make_grid` builds for that image
            table.update((("tile", prefix + t), b) for t, b in zip(tile_names(rows, cols), boxes))
    table.update((("region", name), b) for name, b in regions)
    return table


@lru_cache(maxsize=256)
def _boxes_for(slices: tuple[str, ...], key: tuple) -> tuple[Box | None, ...]:
    table = _box_table(key)
    out: list[Box | None] = []
    for s in slices:
        tile, region = slice_location(s)
        if tile is None and region is None:
            out.append(None)
        elif region is None:
            out.append(table.get(("tile", tile)))
        elif tile is None:
            out.append(table.get(("region", region)))
        else:
            out.append(_intersect(table.get(("tile", tile)), table.get(("region", region))))
    return tuple(out)


def _intersect(a: Box | None, b: Box | None) -> Box | None:
    if a is None or b is None:
        return a or b
    box = (max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3]))
    return box if box[0] < box[2] and box[1] < box[3] else None


def round_value(v: float, digits: int = 7) -> float:
    # Values keep 7 significant digits, far below any tolerance; noise floors
    # (std, bias) are estimates and keep 3.  Baselines stay small.
    if v == 0.0 or not np.isfinite(v):
        return v
    return float(f"{v:.{digits}g}")
