"""Judging executed cases: a case against its stored baseline (paired), a distribution group's
seeds against every baked seed of the group, or a seed by its absolute checks alone.

Every executor and the pytest plugin call these on what :func:`harness.run.case.execute_case`
produced; the absolute checks (:mod:`harness.checks.expectations`) always come along, so a
baseline that blesses a broken stage cannot make the case pass.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Sequence

from harness.checks.expectations import failure_note
from harness.comparing.engine import Check, CompareConfig, compare_paired, summarize_status
from harness.errors import BaselineError
from harness.measuring.result import Measurement, floor_std
from harness.run.case import CaseOutput
from harness.suite.baselines import BaselineStore
from harness.suite.suites import Case, Suite

__all__ = ["judge_case", "judge_group", "judge_expectations", "environment_drift", "drift_notes", "obsolete_notes"]


def environment_drift(baked: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """What differs between the environment a baseline was baked in and this run's
    (thread count, device, package versions): the first suspects when values move."""
    out = []
    for key in ("threads", "device"):
        if key in baked and baked[key] != now.get(key):
            out.append(f"{key} {baked[key]} -> {now.get(key)}")
    bv, nv = baked.get("versions", {}), now.get("versions", {})
    for pkg in sorted(set(bv) & set(nv)):
        if pkg != "harness" and bv[pkg] != nv[pkg]:
            out.append(f"{pkg} {bv[pkg]} -> {nv[pkg]}")
    return out


def drift_notes(drift: set[str]) -> list[str]:
    """report.json's note on the :func:`environment_drift` of the baselines a run used (none: none)."""
    return ["baselines were baked in a different environment: " + ", ".join(sorted(drift))] if drift else []


def obsolete_notes(store: BaselineStore, suite: Suite, k_expr: str | None) -> list[str]:
    """One note per baseline of ``store`` whose case left ``suite`` (within ``-k k_expr``: a
    selection says nothing of the cases outside it).  Raises BaselineError on a corrupt manifest."""
    from harness.suite.selection import match_k

    obsolete = store.obsolete(suite.baseline_ids(), (lambda cid: match_k(k_expr, cid)) if k_expr else None)
    return [f"obsolete baseline {store.path_for(cid)}: its case is no longer in the suite "
            f"(remove with `harness bake --suite {suite.ref} --prune`)" for cid in obsolete]


def judge_case(out: CaseOutput, store: BaselineStore, config: CompareConfig, suite: Suite,
               environment: dict[str, Any], drift: set[str],
               pipelines: dict[str, dict[str, Any]] | None = None, diverged: dict[str, dict[str, Any]] | None = None,
               run_dir: Path | None = None) -> tuple[str, str | None, list[Check]]:
    """Status, error and checks of one executed case against its stored baseline (paired mode).

    ``drift`` collects how the baseline's environment differs from this one; ``pipelines`` (when
    given) the pipeline config the baseline was baked with, by case id (report.json's ``changed``);
    ``diverged`` (when given) the case's first stage whose image differs from the baseline's
    reference image (:func:`harness.run.divergence.first_divergence`: images in the store
    ``environment["store"]``, run-folder paths in ``run_dir``), by case id; it never changes the status."""
    if out.error:
        return "error", out.error, []
    expect = list(out.expectations)  # absolute: no baseline changes their status
    try:
        base = store.load(out.case_id)
    except BaselineError as exc:
        return "error", str(exc), expect
    if base is None:
        return "fail", _joined(f"no baseline for {out.case_id}: create it with "
                               f"`harness bake --suite {suite.ref or suite.path} -k '{out.case_id}'`",
                               failure_note(expect)), expect
    drift.update(environment_drift(base.environment, environment))
    if pipelines is not None:
        pipelines[out.case_id] = base.pipeline
    if diverged is not None:
        from harness.run.divergence import first_divergence

        diverged[out.case_id] = first_divergence(base.images, out.artifacts, environment.get("store"), run_dir)
    # A calibrated baseline (`harness bake --calibrate`) carries each slice's measured spread; its
    # measurement's std is floored by it at load, and the candidate (rendered the same way) gets
    # the same floor, so the noise term min(std_b, std_c) becomes max(min(std_b, std_c), spread).
    cand = floor_std(Measurement.from_dict(out.measurement), base.spread)
    checks = expect + compare_paired(base.measurement, cand, config)
    return summarize_status(checks), failure_note(expect), checks


def judge_expectations(out: CaseOutput) -> tuple[str, str | None, list[Check]]:
    """Status, message and checks of one case from its absolute checks alone (a seed of a
    distribution group, whose measurement is judged with the other seeds')."""
    if out.error:
        return "error", out.error, []
    expect = list(out.expectations)
    return summarize_status(expect), failure_note(expect), expect


def _joined(*parts: str | None) -> str | None:
    text = "; ".join(p for p in parts if p)
    return text or None


def _seed_expectations(cases: Sequence[Case], outputs: Sequence[CaseOutput]) -> list[Check]:
    """Every seed's absolute checks, each slice suffixed with ``seed=N``."""
    return [dataclasses.replace(c, slice=f"{c.slice} seed={case.seed}")
            for case, out in zip(cases, outputs) for c in out.expectations]


def _selfcheck(docs, n_run: int, suite: Suite) -> list[Check]:
    """The baseline's recorded self-check as a check of this run (none when the bake made none)."""
    from harness.comparing.selfcheck import recorded_check
    from harness.comparing.settings import DistributionConfig

    dist = getattr(suite, "distribution", None) or DistributionConfig()
    check = recorded_check([getattr(b, "selfcheck", None) for b in docs], len(docs), n_run, dist)
    return [check] if check is not None else []


def judge_group(cases: Sequence[Case], outputs: Sequence[CaseOutput], store: BaselineStore, config: CompareConfig,
                suite: Suite) -> tuple[str, str | None, list[Check]]:
    """Status, error and checks of one distribution group: every seed's measurement against
    every stored baseline seed of the group -- not only this run's seeds, so a fresh seed set is
    compared with all baked ones (:func:`~harness.comparing.distribution.compare_distribution`,
    with the suite's ``[distribution]`` table)."""
    # here, not at the top: it imports scipy.stats (1-2 s), which a paired run never needs
    from harness.comparing.distribution import compare_distribution

    vector, pipeline = cases[0].vector, cases[0].pipeline.name
    cand = [Measurement.from_dict(o.measurement) for o in outputs if o.measurement is not None]
    expect = _seed_expectations(cases, outputs)  # absolute: no baseline changes their status
    note = failure_note(expect)
    try:
        ids = store.group_case_ids(vector, pipeline) or [c.id for c in cases]
        docs = [b for cid in ids if (b := store.load(cid)) is not None]
        base = [b.measurement for b in docs]
        if len(base) < 2:
            return "fail", _joined(f"distribution mode needs >= 2 baseline seeds for {vector}/{pipeline}, "
                                   f"found {len(base)}: run `harness bake --suite {suite.ref or suite.path}`",
                                   note), expect
        if not cand:
            return "error", "no seed of this group produced an image", expect
        checks = expect + compare_distribution(base, cand, config, getattr(suite, "distribution", None))
        checks += _selfcheck(docs, len(cand), suite)
        power = [c.slice for c in checks if c.metric == "power" and c.status == "fail"]  # "... needs N seeds"
        return summarize_status(checks), _joined(note, "; ".join(power) or None), checks
    except (BaselineError, ValueError) as exc:
        return "error", str(exc), []
