"""A baseline document: what one case's baseline file holds, its types, and how it is written.

Documents are reproducible: a baseline keeps only what identifies how its values were made
and is stable across runs (:func:`stable_environment`), never a path, and re-baking an
unchanged case leaves its file byte-identical: it is not rewritten at all.  The one part that
names a time, a person and a run is ``approvals`` (who baked it, when, why, from which run:
:func:`approval_entry`), and it changes only when the file is rewritten anyway.

**Layout** (schema 2, :mod:`.layout`): indented JSON, keys sorted, one slice per line
(``"band=mid region=ring ch=Y": [value, std, bias]``), so a re-bake's ``git diff`` reads line
by line.  Schema 1 files (one compact line, the measurement as parallel lists) still load;
:func:`canonical` turns either into the in-memory form (the measurement as
:meth:`Measurement.to_dict` makes it, ``spread`` as lists in slice order).
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
from harness.suite.baselines import layout

__all__ = ["SCHEMA_VERSION", "SCHEMA_VERSIONS", "MANIFEST", "LOCK", "STABLE_ENVIRONMENT", "Baseline", "BakeChange",
           "StoreCheck", "BaselineWriteError", "stable_environment", "baseline_document", "spread_by_slice",
           "images_of", "approval_entry", "approvals_of", "with_approval", "read_document", "same_record"]


SCHEMA_VERSION = 2  # what a bake writes (the reviewable layout)
SCHEMA_VERSIONS = (1, 2)  # what loads: 1 is the one-line layout of earlier bakes
APPROVALS_KEPT = 5  # the newest approvals a document keeps (newest first)
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
    # `harness bake --accept-failing`: the absolute checks the case failed when baked ([]: none)
    accepted_failing: list[dict[str, Any]] = field(default_factory=list)
    # who baked it, when, why, from which run (:func:`approval_entry`), newest first; [] for older files
    approvals: list[dict[str, Any]] = field(default_factory=list)


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
    """The file text of a document in the in-memory form (the reviewable layout, :mod:`.layout`)."""
    return layout.dump(doc)


def read_document(data: bytes | str) -> dict[str, Any]:
    """A stored document (either schema) in the in-memory form; raises ValueError (or KeyError,
    TypeError) when it is not a baseline document."""
    doc = json.loads(data)
    if not isinstance(doc, dict):
        raise ValueError("not a JSON object")
    if doc.get("schema_version") not in SCHEMA_VERSIONS:
        raise ValueError(f"schema_version {doc.get('schema_version')!r}, expected one of {list(SCHEMA_VERSIONS)}")
    return layout.canonical(doc)


def approval_entry(by: str, at: str, reason: str | None, run: str | None, git_sha: str | None) -> dict[str, Any]:
    """One approval: who baked (``Name <email>`` or a login name), when (UTC ISO 8601), why
    (``--reason``; None when none was given) and from which run (its id and the git commit the
    run was made at, None when not in a repository)."""
    return {"by": by, "at": at, "reason": reason, "run": run, "git_sha": git_sha}


def approvals_of(doc: dict[str, Any] | None) -> list[dict[str, Any]]:
    """A document's approvals, newest first (``[]`` when it has none or they are not a list of records)."""
    raw = (doc or {}).get("approvals")
    return [a for a in raw if isinstance(a, dict)] if isinstance(raw, list) else []


def with_approval(doc: dict[str, Any], approval: dict[str, Any] | None, previous: dict[str, Any] | None) -> dict[str, Any]:
    """``doc`` with ``approval`` on top of the file it replaces's approvals (``previous``), the newest
    :data:`APPROVALS_KEPT` kept, so the diff of a re-bake shows the new one as an added line."""
    history = ([approval] if approval else []) + approvals_of(previous)
    out = {k: v for k, v in doc.items() if k != "approvals"}
    if history:
        out["approvals"] = history[:APPROVALS_KEPT]
    return out


def same_record(old: dict[str, Any] | None, new: dict[str, Any]) -> bool:
    """Whether two documents (in-memory form) hold the same record but for approvals and the
    schema they were written in: then the file is not rewritten, whatever its layout."""
    if old is None:
        return False
    strip = lambda d: {k: v for k, v in d.items() if k not in ("approvals", "schema_version")}  # noqa: E731
    return _dump(strip(old)) == _dump(strip(new))


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
    Other keys are not stored.  ``doc`` may also be a stored document as :func:`json.loads` reads it
    (the table layout of schema 2)."""
    doc = layout.canonical(doc)
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
