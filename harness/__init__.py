"""harness: regression and quality testing for production image pipelines.

The public API (everything else is private and may move)::

    measure(image, mask=None, *, anchors=None, tile=None, ring=8) -> Measurement
    compare(baseline, candidate, *, mask=None, config=None)     -> list[Check]    (images or Measurements)
    compare_paired / compare_distribution / compare_paths        the engine's modes, and files/directories
    load_project(start=None) -> Project                          where a project's folders are
    load_suite(name_or_path=None, *, project=None) -> Suite
    run_suite(suite, *, project=None, ...) -> (Report, run_dir)

and, for backend authors (a class with a frozen ``Params`` dataclass, or a plain function
``f(image, ctx, **params)``; see README "Plugging in your own model")::

    BackendBase, StageContext, StageResult, spec, register

Imports are lazy so ``import harness`` and ``harness --help`` stay fast; type checkers see
the real names through the ``TYPE_CHECKING`` block below (the package ships ``py.typed``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = [
    # measuring
    "measure", "Measurement", "MetricValues", "METRICS",
    # comparing
    "compare", "compare_paired", "compare_distribution", "compare_paths", "Check", "CompareConfig",
    "ToleranceRule",
    # projects and suites
    "load_project", "Project", "load_suite", "run_suite", "Suite",
    # backend authors
    "BackendBase", "StageContext", "StageResult", "spec", "register",
    # errors
    "HarnessError", "InputError", "ConfigError", "BaselineError", "StageError",
]

_LAZY = {
    "measure": "harness.measuring.driver",
    "Measurement": "harness.measuring.result",
    "MetricValues": "harness.measuring.result",
    "METRICS": "harness.measuring.metrics",
    "compare": "harness.comparing.engine",
    "compare_paired": "harness.comparing.engine",
    "compare_distribution": "harness.comparing.distribution",
    "Check": "harness.comparing.engine",
    "CompareConfig": "harness.comparing.tolerance",
    "ToleranceRule": "harness.comparing.tolerance",
    "compare_paths": "harness.comparing.files",
    "load_project": "harness.project",
    "Project": "harness.project",
    "load_suite": "harness.suite.suites",
    "Suite": "harness.suite.suites",
    "run_suite": "harness.run.runner",
    "BackendBase": "harness.stages.base",
    "StageContext": "harness.stages.base",
    "StageResult": "harness.stages.base",
    "spec": "harness.stages.base",
    "register": "harness.stages.base",
    "HarnessError": "harness.errors",
    "InputError": "harness.errors",
    "ConfigError": "harness.errors",
    "BaselineError": "harness.errors",
    "StageError": "harness.errors",
}

if TYPE_CHECKING:  # what type checkers and IDEs see; at run time the names load on first use
    from harness.comparing.distribution import compare_distribution
    from harness.comparing.engine import Check, compare, compare_paired
    from harness.comparing.files import compare_paths
    from harness.comparing.tolerance import CompareConfig, ToleranceRule
    from harness.errors import BaselineError, ConfigError, HarnessError, InputError, StageError
    from harness.measuring.driver import measure
    from harness.measuring.metrics import METRICS
    from harness.measuring.result import Measurement, MetricValues
    from harness.run.runner import run_suite
    from harness.stages.base import BackendBase, StageContext, StageResult, register, spec
    from harness.suite.suites import Suite, load_suite
    from harness.project import Project, load_project


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'harness' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
