"""harness: regression and quality testing for production image pipelines.

Public API (imports are lazy so ``import harness`` and ``harness --help`` stay fast)::

    harness.measure(image, mask=None, *, tile=64, ring=8)  -> Measurement
    harness.compare_paired(baseline, candidate, config)   -> list[Check]
    harness.compare_distribution(baselines, candidates)   -> list[Check]
    harness.compare_paths(baseline_path, candidate_path)  -> CompareResult
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "measure",
    "Measurement",
    "MetricValues",
    "Check",
    "CompareConfig",
    "ToleranceRule",
    "compare_paired",
    "compare_distribution",
    "compare_paths",
    "METRICS",
    "HarnessError",
    "InputError",
    "ConfigError",
    "BaselineError",
    "StageError",
]

_LAZY = {
    "measure": "harness.measuring.driver",
    "Measurement": "harness.measuring.result",
    "MetricValues": "harness.measuring.result",
    "Check": "harness.comparing.engine",
    "CompareConfig": "harness.comparing.engine",
    "ToleranceRule": "harness.comparing.engine",
    "compare_paired": "harness.comparing.engine",
    "compare_distribution": "harness.comparing.engine",
    "compare_paths": "harness.comparing.files",
    "METRICS": "harness.measuring.metrics",
    "HarnessError": "harness.errors",
    "InputError": "harness.errors",
    "ConfigError": "harness.errors",
    "BaselineError": "harness.errors",
    "StageError": "harness.errors",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'harness' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
