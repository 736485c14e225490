"""``harness bake``: write baselines from a run, atomically and never silently."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from harness.cli.bake_review import (approval_for, check_reason, in_ci, require_reason_for_accepted,
                                     require_reason_for_changes)
from harness.cli.bake_selfcheck import attach_selfcheck, baked_case_ids, plan_seeds, recorded_measurement
from harness.cli.common import load_suite_from_args, say, suite_options
from harness.suite.selection import parse_seeds
from harness.errors import ConfigError

__all__ = ["add_commands"]


def _cmd_bake(args: argparse.Namespace) -> int:
    from harness.suite.baselines import BaselineStore, BaselineWriteError
    from harness.suite.selection import match_k

    project, suite = load_suite_from_args(args)
    renders, perturb = _calibration(args, suite)  # a bad --calibrate fails before anything runs
    reason = check_reason(args.reason, force=args.force)
    if project.baselines_are_builtin:
        raise ConfigError("no harness project here (no harness.toml, no [tool.harness] in a pyproject.toml from "
                          f"{Path.cwd()} upward), so there is no baseline folder to write: run `harness init` "
                          "or pass --baselines DIR")
    report, run_dir, baked, held = _source(args, project, suite)
    store = BaselineStore(suite.name, project.baselines)
    entries, skipped = _entries(args, project, report, run_dir, held)
    entries, refused = _refuse_failing_expectations(run_dir, entries, accept=args.accept_failing)
    require_reason_for_accepted(reason, entries)
    if renders:
        _calibrate(suite, report, entries, renders, perturb, workers=args.workers,
                   pythonpath=[str(x) for x in project.pythonpath])
    attach_selfcheck(suite, report, run_dir, entries, held, say)  # distribution mode only
    expected = baked_case_ids(suite, baked)
    k_filter = (lambda c: match_k(args.k, c)) if args.k else None
    prune = store.obsolete(expected, k_filter) if args.prune else []
    review = _review(args, suite, store, entries, approval_for(report, reason, store.dir))
    if reason is None and in_ci() and not args.dry_run:
        require_reason_for_changes(reason, store.bake(entries, new_only=args.new_only, prune=prune, review=review,
                                                      dry_run=True))
    if args.dry_run:
        print(f"dry run: nothing is written to {store.dir}")
    try:
        changes = store.bake(entries, new_only=args.new_only, prune=prune, on_wait=say, review=review,
                             dry_run=args.dry_run)
    except BaselineWriteError as exc:
        _print_changes(exc.changes, verbose=args.verbose)  # what did land before the file system refused
        raise
    counts = _print_changes(changes, verbose=args.verbose)
    if not report.complete:
        print(f"incomplete {run_dir}: a partial run ({_why_incomplete(report)}; --allow-incomplete): baked only "
              f"the {len(entries)} case(s) it has; every other case keeps its baseline as it is")
    for line in [f"skipped   {s}" for s in skipped] + refused:
        print(line)
    for cid in ([] if args.prune else store.obsolete(expected, k_filter)):
        print(f"obsolete  {store.path_for(cid)} (kept; --prune removes it)")
    n_refused = sum(line.endswith(_NOT_BAKED) for line in refused)
    summary = ", ".join(f"{v} {k}" for k, v in sorted(counts.items())) or "nothing to write"
    print(f"baselines {store.dir}{' (dry run, nothing written)' if args.dry_run else ''}: {summary}"
          + (f"; {n_refused} refused" if n_refused else ""))
    return 1 if skipped or n_refused else 0


def _source(args: argparse.Namespace, project, suite):
    """``(report, run folder, seeds to bake, held-out seeds)``: the run of ``--from-report``
    (checked: the same suite, complete unless allowed), or a run of the suite made now."""
    from harness.report.schema import load_report

    if not args.from_report:
        from harness.run.runner import run_suite

        baked, held = plan_seeds(suite, parse_seeds(args.seeds))  # distribution mode: more seeds, and held-out ones
        report, run_dir = run_suite(suite, project=project, seeds=(baked + held) if held else baked, k_expr=args.k,
                                    workers=args.workers, cache_dir=project.cache, progress=say, judge=False)
        return report, run_dir, baked, held
    run_dir = Path(args.from_report)
    report = load_report(run_dir)
    if report.suite != suite.name:
        raise ConfigError(f"--from-report {run_dir}: the report is of suite {report.suite!r}, "
                          f"not {suite.name!r} (pass --suite {report.suite})")
    if not report.complete and not args.allow_incomplete:
        raise ConfigError(f"--from-report {run_dir}: the run is incomplete ({_why_incomplete(report)}) and a "
                          "partial run never becomes the baseline set silently: re-run the suite, or pass "
                          "--allow-incomplete to bake only the cases it has")
    return report, run_dir, None, []


def _entries(args: argparse.Namespace, project, report, run_dir: Path, held: list[int]) -> tuple[list, list[str]]:
    """``(case id, document)`` of every measured case the bake selects, and why others were skipped."""
    from harness.naming import is_cross
    from harness.run.store import ImageStore, reference_images
    from harness.suite.selection import match_k

    images = ImageStore(project.store_root)  # reference images: each case's stage images, by sha256
    entries, skipped = [], []
    for case in report.cases:
        if case.seed is None or is_cross(case.pipeline):  # distribution summaries, cross-model entries:
            continue  # no measurement, no baseline (a cross entry compares two pipelines of the same run)
        if (args.k and not match_k(args.k, case.id)) or case.seed in held:
            continue
        measurement = recorded_measurement(run_dir, case.id)
        if not measurement:
            skipped.append(f"{case.id}: not baked, the case errored ({case.error})")
            continue
        entries.append((case.id, {"measurement": measurement, "stages": case.stages,
                                  "environment": report.environment, "pipeline": case.config.get("pipeline", {}),
                                  "images": reference_images(case.artifacts, run_dir, images,
                                                             report.environment.get("store"))}))
    return entries, skipped


def _review(args: argparse.Namespace, suite, store, entries: list, approval: dict):
    """Which existing baselines to rewrite (:mod:`harness.suite.baselines.review`) and the approval."""
    from harness.suite.baselines.bake import Review
    from harness.suite.baselines.review import named_cases, review

    dist = suite.distribution if suite.mode == "distribution" else None
    named = named_cases(args.k, [cid for cid, _ in entries])
    return Review(review(store, entries, suite.compare_config(), distribution=dist, named=named, force=args.force),
                  approval)


_NOT_BAKED = "not baked, the next run would fail it (fix the pipeline or the vector; --accept-failing bakes it anyway)"


def _refuse_failing_expectations(run_dir: Path, entries: list, *, accept: bool) -> tuple[list, list[str]]:
    """The entries to bake, and one line per failing absolute check of each case that fails its own
    expectations (``[expect]``, stage effects: never changed by a baseline, so the next run would
    fail): ``refused`` without ``--accept-failing`` (the case is not baked, bake exits 1), else
    ``accepted`` and the baseline records the checks under ``accepted_failing``.  The checks are
    read from the run's case records, which hold every failing check (a version-2 record keeps the
    deciding ones: all failing checks among them), each with its note (what happened, against what bound)."""
    from harness.measuring.result import round_value
    from harness.naming import case_slug
    from harness.checks.expectations import EXPECT_METRIC, STAGE_EFFECT_METRIC

    kept, lines = [], []
    for cid, entry in entries:
        doc = json.loads((run_dir / "cases" / f"{case_slug(cid)}.json").read_text(encoding="utf-8"))
        failing = [c for c in (doc.get("case") or {}).get("checks") or []
                   if c.get("metric") in (EXPECT_METRIC, STAGE_EFFECT_METRIC) and c.get("status") == "fail"]
        if failing and not accept:
            lines += [f"refused   {cid}: fails {_described(c)}" for c in failing]
            lines.append(f"refused   {cid}: {_NOT_BAKED}")
            continue
        if failing:
            lines += [f"accepted  {cid}: fails {_described(c)} (--accept-failing: recorded in its baseline)"
                      for c in failing]
            entry["accepted_failing"] = [{"check": f"{c['metric']} {c['slice']}", **{
                k: None if c.get(src) is None else round_value(float(c[src]))
                for k, src in (("value", "value"), ("bound", "baseline"), ("tolerance", "tolerance"))}}
                for c in failing]
        kept.append((cid, entry))
    return kept, lines


def _described(c: dict) -> str:
    """``anchors_survive anchor=0 band=high+top: <its note>`` (the note states value and bound)."""
    what = c.get("note") or f"value {c.get('value')}, bound {c.get('baseline')} (tolerance {c.get('tolerance')})"
    return f"{c.get('slice')}: {what}"


def _calibration(args: argparse.Namespace, suite) -> tuple[int, tuple[str, ...]]:
    """Extra renders per case and their perturbations: ``--calibrate N`` wins over the suite's
    ``[calibrate]`` (``--calibrate 0`` turns it off); 0 renders: no calibration."""
    cal = suite.calibrate
    renders = args.calibrate if args.calibrate is not None else (cal.renders if cal else 0)
    if renders == 1 or renders < 0:
        raise ConfigError(f"--calibrate {renders}: expected 0 (off) or >= 2 extra renders per case")
    return renders, (cal.perturb if cal else ("rerun",))


def _calibrate(suite, report, entries: list, renders: int, perturb: tuple[str, ...], *, workers: int = 1,
               pythonpath: list[str] | None = None) -> None:
    """Render each baked case ``renders`` more times under ``perturb`` and add each slice's
    measured spread to its entry (see :mod:`harness.run.calibration`)."""
    from harness.measuring.result import Measurement
    from harness.run.calibration import calibration_renders, spread_of

    seeds = sorted({c.seed for c in report.cases if c.seed is not None})
    by_id = {c.id: c for c in suite.cases(seeds=seeds)}
    ids = [cid for cid, _ in entries]
    missing = [cid for cid in ids if cid not in by_id]
    if missing:
        raise ConfigError(f"--calibrate: case(s) {', '.join(missing)} of the report are not in suite {suite.name!r}")
    say(f"calibrating {len(ids)} case(s): {renders} render(s) each ({', '.join(perturb)})")
    measured = calibration_renders(suite, [by_id[cid] for cid in ids], renders, perturb, progress=say,
                                   workers=workers, pythonpath=pythonpath or ())
    for cid, entry in entries:
        got = measured.get(cid) or []
        if len(got) < 1:
            say(f"calibrate {cid}: no perturbed render succeeded; baked without a spread")
            continue
        entry["spread"] = spread_of(Measurement.from_dict(entry["measurement"]), got)


def _why_incomplete(report) -> str:
    reason = getattr(report, "incomplete_reason", None)  # e.g. "2 of 4 planned cases have results (2 missing)"
    return (reason() if callable(reason) else "") or "its report.json says complete: false"


def _print_changes(changes, *, verbose: bool) -> dict[str, int]:
    """One line per change (``unchanged`` only with -v); returns the count of each action."""
    from harness.suite.baselines.review import WITHIN

    counts: dict[str, int] = {}
    for ch in changes:
        kept = ch.action == "unchanged" and ch.detail.startswith(WITHIN)  # moved, but not beyond tolerance
        key = f"{ch.action} ({WITHIN})" if kept else ch.action
        counts[key] = counts.get(key, 0) + 1
        if ch.action != "unchanged" or kept or verbose:
            print(f"{ch.action:9} {ch.path}" + (f"  ({ch.detail})" if ch.detail else ""), flush=True)
    return counts


def add_commands(sub) -> None:
    p = sub.add_parser("bake", parents=[suite_options()], help="write baselines from a run (never silently)",
                       description="Writes baselines/<suite>/... from --from-report DIR, or runs the suite first. "
                                   "Prints every new, changed and obsolete baseline, and stray files in the folder "
                                   "(not in its MANIFEST.json); writes are atomic and the sha256 manifest is updated "
                                   "with them, under a lock on the suite's folder (advisory, local file systems only) "
                                   "so that two bakes at once both land. `harness run` never bakes.")
    p.add_argument("--from-report", metavar="DIR", help="bake from an existing run directory")
    p.add_argument("--new-only", action="store_true", help="only write baselines that do not exist yet")
    p.add_argument("--prune", action="store_true", help="delete baselines whose case left the suite")
    p.add_argument("--allow-incomplete", action="store_true",
                   help="bake the cases of an incomplete run (--from-report of an interrupted run); without it such "
                        "a run is refused")
    p.add_argument("--calibrate", type=int, metavar="N", default=None,
                   help="render each case N (>= 2) more times under the benign perturbations of the suite's "
                        "[calibrate] table (default: plain re-runs) and store each slice's measured spread with "
                        "the baseline; comparisons then use it as a floor of the noise std (0: off, overriding "
                        "the suite's [calibrate])")
    p.add_argument("--accept-failing", action="store_true",
                   help="also bake cases that fail their own absolute expectations (the vector's [expect] table, "
                        "a stage that did nothing); each such baseline records the failing checks under "
                        "accepted_failing. Without it those cases are listed (check, value, bound), not baked, "
                        "and bake exits 1: the next run would fail them")
    p.add_argument("--reason", metavar="TEXT",
                   help="why these baselines change; recorded with who baked, when and from which run in every "
                        "baseline written (its `approvals`). Required with --force, with --accept-failing when a "
                        "case is baked failing, and in CI (CI=true) when an existing baseline changes")
    p.add_argument("--dry-run", action="store_true",
                   help="list what would be new, changed, unchanged, obsolete (and removed with --prune) "
                        "without writing anything")
    p.add_argument("--force", action="store_true",
                   help="rewrite every selected baseline that differs at all; without it an existing baseline is "
                        "rewritten only when its case changed beyond the suite's tolerances (as `harness run` "
                        "judges it), its pipeline config changed, or -k names it (vector/pipeline/sN or "
                        "vector/pipeline); other cases stay 'unchanged (within tolerance)'")
    p.add_argument("-v", "--verbose", action="store_true", help="also list unchanged baselines")
    p.set_defaults(func=_cmd_bake)
