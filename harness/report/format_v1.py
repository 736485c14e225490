"""report.json ``schema_version`` 1 and its per-case records, as typed dicts (the schema itself).

Version 1 is the format every run wrote up to issue [7 of 9]: every check of every case.
The contract keys are required; keys a later writer adds (a check's ``box`` or ``note``, a
case's ``stages``/``config``, a report's ``complete``/``planned``/``notes``) are typed when
present, and unknown keys are allowed (the contract says optional fields may be added).

Names follow :mod:`harness.naming`: a case ``id`` matches :data:`~harness.naming.CASE_ID_RE`,
``vector`` and ``suite`` :data:`~harness.naming.NAME_RE`, ``pipeline`` a name or ``a+b``.
Statuses are :data:`harness.status.STATUSES` and nothing else.  Numbers are finite (JSON has
no NaN; Python's json reads one anyway) and a ``bool`` is never a number (strict mode).

What a typed dict cannot say is checked by :func:`consistency`: a case's ``id`` names its own
``vector``/``pipeline``/``seed``, and no case id is recorded twice.
"""

from __future__ import annotations

from typing import Annotated, Any, Callable, Iterator, Literal, Union

from pydantic import ConfigDict, Field, with_config
from typing_extensions import NotRequired, TypedDict

from harness.naming import CASE_ID_RE, NAME_RE, PIPELINE_FIELD_RE, case_id, group_id

__all__ = ["VERSION", "Check", "Case", "Summary", "Report", "CaseRecord", "consistency", "case_consistency"]

VERSION = 1

_CONFIG = ConfigDict(strict=True, extra="allow", allow_inf_nan=False)

Status = Literal["pass", "fail", "error", "skip"]  # == harness.status.STATUSES (a test holds them equal)
CaseId = Annotated[str, Field(pattern=CASE_ID_RE.pattern)]
Name = Annotated[str, Field(pattern=NAME_RE.pattern)]
PipelineField = Annotated[str, Field(pattern=PIPELINE_FIELD_RE.pattern)]
Count = Annotated[int, Field(ge=0)]
Number = Union[float, None]


@with_config(_CONFIG)
class Check(TypedDict):
    """CHECK of the contract: the seven keys, plus an optional pixel box ``[x0, y0, x1, y1]``."""

    metric: str
    slice: str
    value: Number
    baseline: Number
    delta: Number
    tolerance: Number
    status: Status
    box: NotRequired[Annotated[list[int], Field(min_length=4, max_length=4)]]


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
    artifacts: dict[str, str]  # name -> path relative to the run folder (views check that it is)
    checks: list[Check]
    stages: NotRequired[dict[str, Number]]
    config: NotRequired[dict[str, Any]]


@with_config(_CONFIG)
class Summary(TypedDict):
    passed: Count
    failed: Count
    errors: Count
    skipped: Count


@with_config(_CONFIG)
class Report(TypedDict):
    """report.json, version 1."""

    schema_version: Literal[1]
    run_id: Annotated[str, Field(min_length=1)]
    suite: Name
    created: str
    environment: dict[str, Any]
    summary: Summary
    complete: NotRequired[bool]
    planned: NotRequired[Union[list[CaseId], None]]
    notes: NotRequired[list[str]]
    cases: list[Case]


@with_config(_CONFIG)
class CaseRecord(TypedDict):
    """``cases/<slug>.json``: one finished case and its measurement (null when it has none)."""

    case: Case
    measurement: Union[dict[str, Any], None]


def case_consistency(case: dict[str, Any], at: str = "") -> Iterator[tuple[str, str]]:
    """``(json path, problem)`` when the ``id`` of a (typed-valid) case does not name its own
    vector, pipeline and seed: a path or a baseline is made from the id, the views show the rest."""
    seed = case["seed"]
    want = group_id(case["vector"], case["pipeline"]) if seed is None else case_id(case["vector"], case["pipeline"],
                                                                                     seed)
    if case["id"] != want:
        yield f"{at}id", f"{case['id']!r} does not match its vector, pipeline and seed (expected {want!r})"


def consistency(doc: dict[str, Any], case_rule: Callable[[dict[str, Any], str], Iterator[tuple[str, str]]]
                = case_consistency) -> Iterator[tuple[str, str]]:
    """``(json path, problem)`` for what the typed dicts cannot say about a (typed-valid) report;
    ``case_rule``: the version's :func:`case_consistency` (a later version's report rule is this one)."""
    seen: dict[str, int] = {}
    for i, case in enumerate(doc["cases"]):
        yield from case_rule(case, f"cases[{i}].")
        if case["id"] in seen:
            yield f"cases[{i}].id", f"{case['id']!r} is recorded twice (also cases[{seen[case['id']]}])"
        seen.setdefault(case["id"], i)
    planned = doc.get("planned") or []
    if len(set(planned)) != len(planned):
        dup = next(p for i, p in enumerate(planned) if p in planned[:i])
        yield "planned", f"{dup!r} is planned twice"
