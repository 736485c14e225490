"""A baseline document: what one case's baseline file holds, its types, and how it is written.

Documents are reproducible: a baseline keeps only what identifies how its values were made
and is stable across runs (:func:`stable_environment`), never a git sha, a path, a run id or
a time, so re-baking an unchanged case leaves its file byte-identical.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.measuring.result import round_value as _round  # no last-digit churn in the files
from harness.errors import BaselineError
from harness.measuring.result import Measurement

__all__ = ["SCHEMA_VERSION", "MANIFEST", "LOCK", "STABLE_ENVIRONMENT", "Baseline", "BakeChange", "StoreCheck",
           "BaselineWriteError", "stable_environment", "baseline_document", "spread_by_slice", "images_of"]


SCHEMA_VERSION = 1
MANIFEST = "MANIFEST.json"
LOCK = ".lock"

# What of a run's environment a baseline records: what changes the bits, and is the same
# for every run on one setup.  (Not git_sha, paths, suite file, executor, workers, seeds,
# -k, python patch level or the kernel's platform string.)
STABLE_ENVIRONMENT = ("device", "threads", "threads_applied", "machine", "versions")
# harness's own version is left out: it does not change the values by itself (a change
# that does shows in them) and would rewrite every baseline at each release.
_UNRECORDED_VERSIONS = ("harness",)


@dataclass
class Baseline:
    case_id: str
    measurement: Measurement
    stages: dict[str, float]
    environment: dict[str, Any]
    pipeline: dict[str, Any]
    # calibrated spread (`harness bake --calibrate`): {metric: {slice: std}}; empty when not
    # calibrated.  ``measurement``'s std is already floored by it (see store.load).
    spread: dict[str, dict[str, float]] = field(default_factory=dict)
    # a distribution group's bake-time self-check (harness.comparing.selfcheck.SelfCheck.record),
    # the same on every seed of the group; empty when none was made
    selfcheck: dict[str, Any] = field(default_factory=dict)
    # reference images: {stage: "sha256:<64 hex>"} of the baked case's stage images, objects of the
    # image store (harness.run.store); {} when none were recorded (an older baseline)
    images: dict[str, str] = field(default_factory=dict)


@dataclass
class BakeChange:
    case_id: str
    # per case: "new" | "changed" | "unchanged" | "skipped" | "removed";
    # found in the folder: "recovered" (an interrupted bake's write, now recorded), "cleaned"
    # (a temp file, deleted), "stray" (not in the manifest), "mismatch", "missing"
    action: str
    path: Path
    detail: str = ""


@dataclass
class StoreCheck:
    """What :meth:`BaselineStore.verify` found."""

    verified: list[Path] = field(default_factory=list)    # listed, and the checksum matches
    missing: list[Path] = field(default_factory=list)     # listed, not on disk
    mismatched: list[Path] = field(default_factory=list)  # listed, another checksum
    strays: list[Path] = field(default_factory=list)      # on disk, not listed (temp files included)
    temps: list[Path] = field(default_factory=list)       # temp files of interrupted writes (among strays)
    pending: list[Path] = field(default_factory=list)     # an interrupted bake's unrecorded writes
    repaired: list[BakeChange] = field(default_factory=list)  # with repair=True: what was fixed

    @property
    def ok(self) -> bool:
        return not (self.missing or self.mismatched or self.strays or self.pending)


class BaselineWriteError(BaselineError):
    """The file system refused a bake's write (read-only, unwritable, full, a file in the way).

    ``changes`` lists what was written and recorded before it did; the store is consistent."""

    def __init__(self, message: str, changes: list[BakeChange] | None = None) -> None:
        super().__init__(message)
        self.changes = list(changes or [])


def _dump(doc: dict[str, Any]) -> str:
    return json.dumps(doc, sort_keys=True, allow_nan=False, separators=(",", ":")) + "\n"


def stable_environment(environment: dict[str, Any]) -> dict[str, Any]:
    """The part of a run's environment fingerprint that a baseline records (see the module doc)."""
    out = {k: environment[k] for k in STABLE_ENVIRONMENT if k in environment}
    if isinstance(out.get("versions"), dict):
        out["versions"] = {k: v for k, v in out["versions"].items() if k not in _UNRECORDED_VERSIONS}
    return out


def baseline_document(case_id: str, doc: dict[str, Any]) -> dict[str, Any]:
    """The document stored for one case, from ``measurement``, ``stages``, ``environment``,
    ``pipeline`` and, when calibrated, ``spread`` (``{metric: [std per slice of the
    measurement]}``, stored with 3 significant digits; absent otherwise, so an un-calibrated
    baseline is what it always was), ``accepted_failing`` (the absolute checks a case
    failed when ``harness bake --accept-failing`` baked it; absent otherwise) and, for a seed
    of a distribution group, its group's ``selfcheck`` record (absent when none was made) and
    ``images``, the case's reference images ``{stage: "sha256:…"}`` (absent when there are none).
    Other keys are not stored."""
    out = {
        "schema_version": SCHEMA_VERSION,
        "case": case_id,
        "measurement": doc["measurement"],
        "stages": {str(k): _round(float(v)) for k, v in (doc.get("stages") or {}).items()},
        "environment": stable_environment(doc.get("environment") or {}),
        "pipeline": doc.get("pipeline") or {},
    }
    if doc.get("spread"):
        out["spread"] = {str(m): [_round(float(v), 3) for v in vals] for m, vals in doc["spread"].items()}
    if doc.get("accepted_failing"):  # `harness bake --accept-failing`: the absolute checks it failed when baked
        out["accepted_failing"] = list(doc["accepted_failing"])
    if doc.get("selfcheck"):
        out["selfcheck"] = dict(doc["selfcheck"])
    if doc.get("images"):
        out["images"] = images_of({"images": doc["images"]})
    return out


# An image store reference (harness.run.store.REF_PREFIX + sha256 hex); the store itself is a layer up.
_REF = re.compile(r"sha256:[0-9a-f]{64}")


def images_of(doc: dict[str, Any]) -> dict[str, str]:
    """A document's reference images ``{stage: "sha256:…"}`` (``{}`` when it has none).
    Raises ValueError when they are not a table of stage names to references."""
    raw = doc.get("images") or {}
    if not isinstance(raw, dict):
        raise ValueError("images is not a table of stage: reference")
    for stage, ref in raw.items():
        if not isinstance(stage, str) or not stage or not isinstance(ref, str) or not _REF.fullmatch(ref):
            raise ValueError(f"images.{stage}: {ref!r} is not an image store reference (sha256:<64 hex>)")
    return {k: raw[k] for k in sorted(raw)}


def spread_by_slice(doc: dict[str, Any]) -> dict[str, dict[str, float]]:
    """A stored document's ``spread`` as ``{metric: {slice: std}}`` (its lists follow the order of
    the measurement's slices); ``{}`` when it has none.  Raises ValueError or TypeError when malformed."""
    raw = doc.get("spread")
    if not raw:
        return {}
    if not isinstance(raw, dict):
        raise TypeError("spread is not a table")
    metrics = doc["measurement"]["metrics"]
    out: dict[str, dict[str, float]] = {}
    for m, vals in raw.items():
        slices = metrics.get(m, {}).get("slices")
        if slices is None or not isinstance(vals, list) or len(vals) != len(slices):
            raise ValueError(f"spread of {m!r} does not match the measurement's slices")
        out[str(m)] = {str(s): float(v) for s, v in zip(slices, vals)}
    return out
