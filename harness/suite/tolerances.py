"""Tolerance tables: a suite's (or a stand-alone file's) ``[compare]`` and ``[[tolerances]]``,
read into the engine's :class:`~harness.comparing.tolerance.CompareConfig`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.validate import Where, read_toml

__all__ = ["compare_config_from", "load_tolerances"]

_TOLERANCE_KEYS = ("abs_tol", "direction", "gating", "metric", "rel_tol", "slice")


def compare_config_from(p: Path, raw: dict[str, Any]):
    """The ``[compare]`` table and ``[[tolerances]]`` array of a suite or tolerance file."""
    from harness.comparing.engine import CompareConfig, ToleranceRule
    from harness.measuring.metrics import METRICS

    w = Where(p)
    comp = w.table("compare", raw.get("compare", {}))
    cw = w.at("compare")
    cw.keys(comp, ("k", "spread_k"))
    # only the keys given: CompareConfig holds the defaults
    given = {key: cw.number(key, comp[key], 0, 100, lo_open=True, hi_open=True) for key in ("k", "spread_k")
             if key in comp}
    rules = []
    for i, t in enumerate(w.array_of_tables("tolerances", raw.get("tolerances", []))):
        tw = w.at(f"tolerances[{i}]")
        tw.keys(t, _TOLERANCE_KEYS)
        if t.get("metric") not in METRICS:
            raise tw.error("metric", f"unknown metric {t.get('metric')!r}; allowed: {', '.join(METRICS.names())}")
        try:
            rules.append(ToleranceRule(**t))
        except (TypeError, ValueError) as exc:
            raise w.error(f"tolerances[{i}]", str(exc)) from None
    return CompareConfig(**given, rules=tuple(rules))


def load_tolerances(path: str | Path):
    """A stand-alone tolerance file (``[compare]`` and ``[[tolerances]]``) for ``harness compare``."""
    p = Path(path)
    raw, _ = read_toml(p, "tolerance")
    Where(p).keys(raw, ("compare", "tolerances"))
    return compare_config_from(p, raw)
