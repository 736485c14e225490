"""The result of measuring one image: named slice values with their noise floors."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator

import numpy as np

__all__ = ["MetricValues", "Measurement"]


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
                    "values": [_round(v) for v in mv.values.tolist()],
                    "std": [_round(v, 3) for v in mv.std.tolist()],
                    "bias": [_round(v, 3) for v in mv.bias.tolist()],
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


def _round(v: float, digits: int = 7) -> float:
    # Values keep 7 significant digits, far below any tolerance; noise floors
    # (std, bias) are estimates and keep 3.  Baselines stay small.
    if v == 0.0 or not np.isfinite(v):
        return v
    return float(f"{v:.{digits}g}")
