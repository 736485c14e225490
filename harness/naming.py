"""Names defined once: what a user-given name may be, a case's id and slug, a run's id."""

from __future__ import annotations

import re
from datetime import datetime, timezone

__all__ = ["DISTRIBUTION", "NAME_RE", "CASE_ID_RE", "PIPELINE_FIELD_RE", "RUN_STAMP_FORMAT", "CROSS_SEP", "case_id", "case_slug",
           "check_case_id", "check_name", "cross_pipeline", "group_id", "is_cross", "run_stamp", "run_id"]

#: The distribution name on the package index (``pip install image-harness``); the import
#: package and the command stay ``harness``. "harness" itself is an unrelated project there.
DISTRIBUTION = "image-harness"
#: A suite, pipeline or vector name: letters, digits, '_', '.', '-' (not starting with '.' or '-').
NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
#: Run folders are "<stamp>-<suite>", the stamp a UTC second, so they sort by time.
RUN_STAMP_FORMAT = "%Y%m%dT%H%M%S"
#: Joins the pipelines of a cross-model entry, ``vector/a+b/sSEED`` (``[[cross]]``, see
#: :mod:`harness.checks.cross`); no NAME_RE name holds it, so it never names a real pipeline.
CROSS_SEP = "+"
_NAME = r"[A-Za-z0-9_][A-Za-z0-9_.-]*"
#: A case id as it may appear anywhere it is read (suites, reports, ``--from-report``, case
#: records): ``vector/pipeline/sSEED``, ``vector/a+b/sSEED`` for a cross-model entry, or
#: ``vector/pipeline/seeds`` for a distribution group.  Nothing else: no ``..``, no ``/`` inside
#: a name, no absolute path, so an id is always safe to turn into a path under a folder.
#: (No look-arounds: the same pattern validates report.json in pydantic's Rust regex engine and
#: in any JSON Schema validator; a name cannot start with '.' anyway.)
CASE_ID_RE = re.compile(rf"^({_NAME})/({_NAME}(?:\{CROSS_SEP}{_NAME})?)/(s[0-9]+|seeds)$")
#: A case's ``pipeline``: a pipeline name, or ``a+b`` for a cross-model entry.
PIPELINE_FIELD_RE = re.compile(rf"^{_NAME}(?:\{CROSS_SEP}{_NAME})?$")


def check_name(kind: str, value: object) -> str:
    """``value`` if it is a valid ``kind`` name (suite, vector, pipeline), else ValueError naming it.

    ``..`` alone matches NAME_RE's characters but is refused: a name becomes a path part.
    ``fullmatch``: ``$`` alone would accept a trailing newline.
    """
    if not isinstance(value, str) or not NAME_RE.fullmatch(value) or value in (".", ".."):
        raise ValueError(f"invalid {kind} name {value!r}: use letters, digits, '_', '.', '-' "
                         "(not starting with '.' or '-')")
    return value


def check_case_id(value: object) -> str:
    """``value`` if it is a valid case id (see :data:`CASE_ID_RE`), else ValueError naming it."""
    if not isinstance(value, str) or not CASE_ID_RE.fullmatch(value):
        raise ValueError(f"invalid case id {value!r}: expected 'vector/pipeline/sSEED'")
    return value


def case_id(vector: str, pipeline: str, seed: int | str) -> str:
    """``vector/pipeline/sSEED``: the id in reports, baselines paths, ``-k`` and pytest node ids."""
    return f"{vector}/{pipeline}/s{seed}"


def group_id(vector: str, pipeline: str) -> str:
    """The id of a distribution group: all seeds of one vector through one pipeline."""
    return f"{vector}/{pipeline}/seeds"


def cross_pipeline(a: str, b: str) -> str:
    """``a+b``: the ``pipeline`` of the cross-model entry comparing pipelines ``a`` and ``b``."""
    return f"{a}{CROSS_SEP}{b}"


def is_cross(pipeline: str) -> bool:
    """True for the ``pipeline`` of a cross-model entry (no baseline, never baked)."""
    return CROSS_SEP in pipeline


def case_slug(case_id: str) -> str:
    """A case id as one file or folder name (``cases/<slug>.json``, ``artifacts/<slug>/``)."""
    return case_id.replace("/", "__")


def run_stamp(when: datetime | None = None) -> str:
    """The stamp of a run id: ``when`` (default now) as a UTC second."""
    return (when or datetime.now(timezone.utc)).strftime(RUN_STAMP_FORMAT)


def run_id(suite: str, stamp: str | None = None) -> str:
    """``<stamp>-<suite>``: the folder name of a run under the reports folder."""
    return f"{stamp or run_stamp()}-{suite}"
