"""Baselines: per-case JSON documents of slice values under a sha256 manifest, written under a lock.

:mod:`.document` defines what one file holds; :mod:`.store` reads, verifies and bakes a suite's
folder (layout, locking, write order and crash recovery are described there).
"""

from harness.suite.baselines.document import (
    SCHEMA_VERSION,
    BakeChange,
    Baseline,
    BaselineWriteError,
    StoreCheck,
    baseline_document,
    stable_environment,
)
from harness.suite.baselines.store import BaselineStore

__all__ = [
    "SCHEMA_VERSION",
    "BakeChange",
    "Baseline",
    "BaselineStore",
    "BaselineWriteError",
    "StoreCheck",
    "baseline_document",
    "stable_environment",
]
