"""Baselines: per-case JSON documents of slice values under a sha256 manifest, written under a lock.

:mod:`.document` defines what one file holds; :mod:`.store` maps a suite's cases to files in
its folder, reads them and is the entry to verify and bake; :mod:`.manifest` holds the sha256
manifest and checks the folder against it; :mod:`.bake` writes (locking, write order, crash
recovery).
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
