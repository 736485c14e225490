"""``harness bake`` in distribution mode: more seeds than a run compares, and the self-check.

A distribution suite's bake renders ``[distribution] baseline_seeds`` seeds per group (the
suite's seeds, then the integers after the largest) and stores them all, then
``selfcheck_seeds`` more that it renders, measures and does *not* store: each group's baked set
is compared with resampled candidate sets of the suite's size drawn from them
(:func:`harness.comparing.selfcheck.self_check`), and the false-alarm rate found is recorded in
every baked seed's document of the group (``selfcheck``) and printed; above
``max_false_alarm`` the line says so and names the seed count that would reach it.  Every run
against the baseline then reports it (:func:`harness.comparing.selfcheck.recorded_check`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

__all__ = ["plan_seeds", "attach_selfcheck", "baked_case_ids", "recorded_measurement"]


def plan_seeds(suite, seeds: list[int] | None) -> tuple[list[int] | None, list[int]]:
    """``(seeds to bake, held-out seeds)``: outside distribution mode ``(seeds, [])``; ``--seeds``
    given: those are baked and the held-out ones follow them."""
    from harness.comparing.selfcheck import bake_seed_lists

    if suite.mode != "distribution":
        return seeds, []
    d = suite.distribution
    baked, _ = bake_seed_lists(seeds or suite.seeds, None if seeds else d.baseline_seeds, 0)
    n_held = max(len(baked), 2 * len(suite.seeds)) if d.selfcheck_seeds is None else d.selfcheck_seeds
    return bake_seed_lists(baked, None, n_held)


def baked_case_ids(suite, baked: list[int] | None = None) -> set[str]:
    """Every case id the suite's baselines may hold (:meth:`Suite.baseline_ids`) and ``baked``'s
    (``--seeds``), so ``--prune`` and the obsolete list leave the extra baked seeds alone."""
    extra = baked if baked and suite.mode == "distribution" else None
    return suite.baseline_ids() | ({c.id for c in suite.cases(seeds=extra)} if extra else set())


def recorded_measurement(run_dir: Path, case_id: str) -> dict | None:
    """The measurement a run recorded for ``case_id`` (None: no record, or none measured).

    The id is checked before it becomes a file name, and the record is read through the
    report schema (an id that is not a case id, or a malformed record, is an InputError)."""
    from harness.errors import InputError
    from harness.naming import case_slug, check_case_id
    from harness.report.schema import read_case_record

    try:
        f = run_dir / "cases" / f"{case_slug(check_case_id(case_id))}.json"
    except ValueError as exc:
        raise InputError(f"--from-report {run_dir}: {exc}") from None
    if not f.exists():
        return None
    case, measurement = read_case_record(f)
    if case.id != case_id:
        raise InputError(f"{f}: case.id: {case.id!r}, expected {case_id!r}")
    return measurement


def attach_selfcheck(suite, report, run_dir: Path, entries: list[tuple[str, dict[str, Any]]], held: list[int],
                     say: Callable[[str], None]) -> None:
    """Self-check every group of ``entries`` against its ``held`` seeds' measurements in ``run_dir``
    and put the record into each of the group's entries (``entry["selfcheck"]``)."""
    from harness.comparing.selfcheck import self_check
    from harness.measuring.result import Measurement

    if suite.mode != "distribution":
        return
    if not held:
        why = ("[distribution] selfcheck_seeds = 0" if suite.distribution.selfcheck_seeds == 0 else
               "--from-report: only a bake that runs the suite renders held-out seeds")
        say(f"selfcheck: not made ({why}); a group whose seeds then disagree is reported as unchecked by runs")
        return
    by_id = {c.id: c for c in report.cases}
    groups: dict[tuple[str, str], list[tuple[str, dict]]] = {}
    for cid, entry in entries:
        c = by_id[cid]
        groups.setdefault((c.vector, c.pipeline), []).append((cid, entry))
    held_set = set(held)
    for (vector, pipeline), members in groups.items():
        gid = f"{vector}/{pipeline}"
        ms = [Measurement.from_dict(m) for c in report.cases
              if c.vector == vector and c.pipeline == pipeline and c.seed in held_set
              if (m := recorded_measurement(run_dir, c.id))]
        if len(ms) < 2 or len(members) < 2:
            say(f"selfcheck {gid}: not made ({len(ms)} held-out and {len(members)} baked seeds measured; "
                "it needs 2 of each and a bake that renders them, not --from-report)")
            continue
        baked = [Measurement.from_dict(e["measurement"]) for _, e in members]
        sc = self_check(baked, ms, len(suite.seeds), suite.distribution, suite.compare_config())
        say(f"selfcheck {gid}: {sc.summary()}")
        for _, entry in members:
            entry["selfcheck"] = sc.record()
