"""report.json ``schema_version`` 2 and its per-case records, as typed dicts (the schema itself).

Version 2 (issue [8 of 9]) keeps every key and meaning of version 1 (:mod:`harness.report.format_v1`)
but is small: a case holds only the checks that **decide** it, every check of the run is one
Parquet read away (``checks_file``: ``checks.parquet``, :mod:`harness.report.checks_table`).

Per case, beside version 1's keys:

* ``checks``: the deciding checks (:func:`harness.report.schema.deciding_checks`): every
  ``fail`` and ``error`` check, then the :data:`~harness.report.schema.NEAR_MISSES` (5) worst of
  the others by severity ``|delta| / tolerance`` (:attr:`Check.severity`; skips last);
* ``n_checks``: how many checks the case has (the rows of ``checks.parquet`` for it);
* ``n_failed``: how many of them are ``fail`` or ``error`` (all of them are in ``checks``; a
  reader takes a ``pass`` case with ``n_failed`` > 0 as ``fail``);
* ``changed``: ``[{"stage", "param", "baseline", "run"}]``, the pipeline parameters whose value
  differs between the case's baseline (as it was baked) and this run; ``[]`` when the baseline
  records no pipeline or there is no baseline;
* ``artifacts``: stage -> a path relative to the run folder, or an image-store reference
  ``sha256:<64 hex>``;
* ``diverged`` (optional): the first stage, in pipeline order, whose image differs from the
  baseline's reference image, and by how much (:class:`Diverged`); null or absent when it was not
  looked for (no baseline, an errored case).

A case record ``cases/<slug>.json`` is ``{"schema_version": 2, "case": <case as above>,
"measurement": {"file", "sha256"} | null}``: the measurement lives beside it in
``<slug>.measure.npz`` (:mod:`harness.report.measure_file`).
"""

from __future__ import annotations

from typing import Annotated, Any, Iterator, Literal, Union

from pydantic import ConfigDict, Field, with_config
from typing_extensions import NotRequired, TypedDict

from harness.report import format_v1
from harness.report.format_v1 import CaseId, Count, Name, Number, PipelineField, Status, Summary

__all__ = ["VERSION", "Check", "Changed", "Diverged", "Case", "Summary", "Report", "MeasureRef", "CaseRecord", "consistency",
           "case_consistency"]

VERSION = 2

_CONFIG = ConfigDict(strict=True, extra="allow", allow_inf_nan=False)

Check = format_v1.Check
#: an image-store reference, or a path relative to the run folder (not absolute, no scheme or
#: drive: no ``:``, no backslash, no control character; views still refuse one that leaves it).
Artifact = Annotated[str, Field(pattern=r"^(sha256:[0-9a-f]{64}|[^/\\:\x00-\x1f][^\\:\x00-\x1f]*)$")]


@with_config(_CONFIG)
class Changed(TypedDict):
    """One pipeline parameter whose value differs from the baseline's (null: not set there)."""

    stage: str
    param: str
    baseline: Any
    run: Any


@with_config(_CONFIG)
class Diverged(TypedDict):
    """The first stage whose output differs from its reference image (the baseline's ``images``).

    ``stage`` null: none found, and ``note`` says why (every stage identical to its reference, no
    reference images in the baseline, a reference missing from the image store).  Otherwise the
    stage, its reference and candidate images, and how much: ``mean_abs`` and ``max_abs`` of the
    per-pixel difference on a 0..1 scale, ``changed_fraction`` the share of pixels that differ by
    more than 1/255, ``box`` ``[x0, y0, x1, y1]`` around them (in that stage's image pixels)."""

    stage: Union[str, None]
    note: str
    reference: NotRequired[Union[str, None]]
    candidate: NotRequired[Union[str, None]]
    mean_abs: NotRequired[Union[Number, None]]
    max_abs: NotRequired[Union[Number, None]]
    changed_fraction: NotRequired[Union[Number, None]]
    box: NotRequired[Union[list[int], None]]


@with_config(_CONFIG)
class Case(TypedDict):
    """One case (or distribution group, ``seed`` null; or cross-model entry, ``pipeline`` ``a+b``)."""

    id: CaseId
    vector: Name
    pipeline: PipelineField
    seed: Union[Annotated[int, Field(ge=0)], None]
    status: Status
    error: Union[str, None]
    timings: dict[str, float]  # stage -> seconds
    artifacts: dict[str, Artifact]
    changed: list[Changed]
    n_checks: Count
    n_failed: Count
    checks: list[Check]  # the deciding ones
    diverged: NotRequired[Union[Diverged, None]]
    stages: NotRequired[dict[str, Number]]
    config: NotRequired[dict[str, Any]]


@with_config(_CONFIG)
class Report(TypedDict):
    """report.json, version 2."""

    schema_version: Literal[2]
    run_id: Annotated[str, Field(min_length=1)]
    suite: Name
    created: str
    environment: dict[str, Any]
    summary: Summary
    complete: NotRequired[bool]
    planned: NotRequired[Union[list[CaseId], None]]
    notes: NotRequired[list[str]]
    checks_file: Literal["checks.parquet"]
    cases: list[Case]


@with_config(_CONFIG)
class MeasureRef(TypedDict):
    """Where a case record's measurement is: a file in ``cases/`` and its sha256."""

    file: Annotated[str, Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]*\.measure\.npz$")]
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


@with_config(_CONFIG)
class CaseRecord(TypedDict):
    """``cases/<slug>.json``: one finished case and where its measurement is (null: none)."""

    schema_version: Literal[2]
    case: Case
    measurement: Union[MeasureRef, None]


def case_consistency(case: dict[str, Any], at: str = "") -> Iterator[tuple[str, str]]:
    """Version 1's rule (the id names its vector, pipeline and seed), and the counts can hold the
    listed checks: ``n_checks`` at least as many as listed, ``n_failed`` at most ``n_checks``
    (a count of failing checks beyond those listed is read as a failure, not refused)."""
    yield from format_v1.case_consistency(case, at)
    listed = len(case["checks"])
    if case["n_checks"] < listed:
        yield f"{at}n_checks", f"{case['n_checks']} is fewer than the {listed} checks listed"
    elif case["n_failed"] > case["n_checks"]:
        yield f"{at}n_failed", f"{case['n_failed']} is more than its {case['n_checks']} checks"


def consistency(doc: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """``(json path, problem)`` for what the typed dicts cannot say about a (typed-valid) report:
    version 1's report rule (:func:`format_v1.consistency`) with this version's case rule."""
    return format_v1.consistency(doc, case_consistency)
