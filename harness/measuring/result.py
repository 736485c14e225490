"""The result of measuring one image: named slice values with their noise floors."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import Any, Iterator, Mapping, Sequence

import numpy as np

from harness.measuring.slices import slice_location
from harness.measuring.tiles import tile_boxes, tile_names

Box = tuple[int, int, int, int]

__all__ = ["MetricValues", "Measurement", "Box", "floor_std", "round_value", "round_values"]


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
                    "values": round_values(mv.values),
                    "std": round_values(mv.std, 3),
                    "bias": round_values(mv.bias, 3),
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


_EXACT_POW10 = 22  # 10**k is exact in float64 for 0 <= k <= 22
_HALF_MARGIN = 1e-6  # |x - half-integer| below this: the float product cannot settle the rounding
_MAX_DIGITS = 8  # |v * 10**s| < 10**8: its error (< 5e-8 after two roundings) stays far below the margin


def round_values(values: np.ndarray, digits: int = 7) -> list[float]:
    """``[round_value(v, digits) for v in values]`` bit for bit, vectorised (a measurement has ~15k
    values: the scalar loop cost ~15 ms per case on the worker).

    ``round_value`` formats ``v`` to ``digits`` significant digits (correctly rounded, ties to even,
    on v's exact binary value) and parses that decimal back (correctly rounded).  Here, with
    ``s = digits - 1 - floor(log10|v|)``: ``m = rint(v * 10**s)`` is that decimal's integer
    mantissa and ``m / 10**s`` (``m * 10**-s``) the nearest float64 to it, both exact operations on
    exact operands when ``|s| <= 22``.  ``v * 10**s`` itself is rounded (relative error <= 2**-53,
    twice where ``10**s`` is inexact: < 5e-8 absolute at ``|m| <= 10**8``), so a product within
    :data:`_HALF_MARGIN` of a half-integer, ``|s| > 22``, zero, a non-finite value and ``digits`` above
    :data:`_MAX_DIGITS` go through :func:`round_value`."""
    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size == 0:
        return []
    if not 1 <= digits <= _MAX_DIGITS:
        return [round_value(x, digits) for x in v.tolist()]
    with np.errstate(all="ignore"):
        a = np.abs(v)
        ok = np.isfinite(v) & (a > 0)
        s = np.zeros(v.shape, np.int64)
        s[ok] = digits - 1 - np.floor(np.log10(a[ok])).astype(np.int64)
        ok &= np.abs(s) <= _EXACT_POW10 + 1
        s = np.where(ok, s, 0)
        # log10 may be off by one near a power of ten: settle s so that 10**(d-1) <= |v| * 10**s < 10**d
        for _ in range(2):
            y = a * _pow10(s)
            s = s + (y < 10.0 ** (digits - 1)) - (y >= 10.0 ** digits)
        ok &= np.abs(s) <= _EXACT_POW10
        s = np.where(ok, s, 0)
        y = v * _pow10(s)
        frac = np.abs(y - np.floor(y) - 0.5)
        ok &= frac > _HALF_MARGIN
        m = np.rint(y)
        out = np.where(s >= 0, m / _pow10(np.maximum(s, 0)), m * _pow10(np.maximum(-s, 0)))
    result = out.tolist()
    if not ok.all():
        for i in np.flatnonzero(~ok).tolist():
            result[i] = round_value(v[i].item(), digits)
    return result


def _pow10(k: np.ndarray) -> np.ndarray:
    """``10.0 ** k`` elementwise for integer ``k`` (exact for 0 <= k <= 22; 1/10**-k for k < 0 is not
    used where exactness matters)."""
    return np.power(10.0, k.astype(np.float64))
