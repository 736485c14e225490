"""Pipeline-layer CLI commands: run, bake, diff, report, vectors (registered by harness.cli)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from harness.errors import ConfigError, InputError

__all__ = ["add_commands"]


def _err(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _seeds(text: str | None) -> list[int] | None:
    from harness.pipeline.suite import parse_seeds

    return parse_seeds(text)


def project_from_args(args: argparse.Namespace, *, reports: str | None = None):
    """The project, resolved once from ``--project`` (or the working directory) and the folder flags."""
    from harness.project import load_project

    project = load_project(config_file=getattr(args, "project", None))
    return project.with_overrides(vectors=getattr(args, "vectors", None), baselines=getattr(args, "baselines", None),
                                  reports=reports, cache=getattr(args, "cache", None))


def _load(args: argparse.Namespace, *, reports: str | None = None):
    from harness.pipeline.suite import load_suite

    project = project_from_args(args, reports=reports)
    return project, load_suite(args.suite, project=project)


def _cmd_run(args: argparse.Namespace) -> int:
    from harness.pipeline.runner import run_suite

    project, suite = _load(args, reports=args.out)
    report, run_dir = run_suite(
        suite, project=project, seeds=_seeds(args.seeds), k_expr=args.k,
        workers=args.workers, executor=args.executor, cache_dir=None if args.no_cache else project.cache,
        progress=None if args.quiet else _err)
    _render_views(run_dir, quiet=True)
    print(run_dir)
    return report.exit_code


def _render_views(run_dir: Path, quiet: bool = False) -> None:
    try:
        from harness.report.render import render_report
    except ImportError:
        return
    paths = render_report(run_dir)
    if not quiet:
        for p in paths:
            print(p)


def _cmd_bake(args: argparse.Namespace) -> int:
    from harness.naming import case_slug
    from harness.pipeline.baselines import BaselineStore
    from harness.report.schema import load_report
    from harness.pipeline.suite import match_k

    project, suite = _load(args)
    if project.baselines_are_builtin:
        raise ConfigError("no harness project here (no harness.toml, no [tool.harness] in a pyproject.toml from "
                          f"{Path.cwd()} upward), so there is no baseline folder to write: run `harness init` "
                          "or pass --baselines DIR")
    if args.from_report:
        run_dir = Path(args.from_report)
        report = load_report(run_dir)
        if report.suite != suite.name:
            raise ConfigError(f"--from-report {run_dir}: the report is of suite {report.suite!r}, "
                              f"not {suite.name!r} (pass --suite {report.suite})")
    else:
        from harness.pipeline.runner import run_suite

        report, run_dir = run_suite(suite, project=project, seeds=_seeds(args.seeds), k_expr=args.k,
                                    workers=args.workers, cache_dir=project.cache, progress=_err, judge=False)
    store = BaselineStore(suite.name, project.baselines)
    entries, skipped = [], []
    for case in report.cases:
        if case.seed is None:  # distribution summary cases hold no measurement
            continue
        if args.k and not match_k(args.k, case.id):
            continue
        f = run_dir / "cases" / f"{case_slug(case.id)}.json"
        doc = json.loads(f.read_text(encoding="utf-8")) if f.exists() else {}
        if not doc.get("measurement"):
            skipped.append(f"{case.id}: not baked, the case errored ({case.error})")
            continue
        entries.append((case.id, {"measurement": doc["measurement"], "stages": case.stages,
                                  "environment": report.environment, "pipeline": case.config.get("pipeline", {})}))
    expected = {c.id for c in suite.cases()}
    prune = store.obsolete(expected, (lambda c: match_k(args.k, c)) if args.k else None) if args.prune else []
    changes = store.bake(entries, new_only=args.new_only, prune=prune)
    counts: dict[str, int] = {}
    for ch in changes:
        counts[ch.action] = counts.get(ch.action, 0) + 1
        if ch.action != "unchanged" or args.verbose:
            print(f"{ch.action:9} {ch.path}" + (f"  ({ch.detail})" if ch.detail else ""))
    for s in skipped:
        print(f"skipped   {s}")
    obsolete = [] if args.prune else store.obsolete(expected, (lambda c: match_k(args.k, c)) if args.k else None)
    for cid in obsolete:
        print(f"obsolete  {store.path_for(cid)} (kept; --prune removes it)")
    summary = ", ".join(f"{v} {k}" for k, v in sorted(counts.items())) or "nothing to write"
    print(f"baselines {store.dir}: {summary}")
    return 1 if skipped else 0


def _cmd_vectors(args: argparse.Namespace) -> int:
    from harness.pipeline.vectors import describe, discover, get_vector, render_to_png

    project = project_from_args(args)
    if args.action == "list":
        for vid, vec in discover(project.vector_roots).items():
            print(f"{vid:24} {vec.description}")
        return 0
    if not args.id:
        raise ConfigError("harness vectors show needs a vector ID (see `harness vectors list`)")
    vec = get_vector(args.id, project.vector_roots)
    print(describe(vec))
    if args.out:
        for p in render_to_png(vec, Path(args.out)):
            print(p)
    return 0


def _cmd_diff(args: argparse.Namespace) -> int:
    from harness.report.diff import diff_reports, format_diff

    result = diff_reports(Path(args.report_a), Path(args.report_b))
    if args.out:
        from harness.report.diff import write_diff

        for p in write_diff(result, Path(args.out)):
            print(p, file=sys.stderr)
    print(format_diff(result, limit=args.limit))
    return 1 if result.regressions else 0


def _cmd_report(args: argparse.Namespace) -> int:
    from harness.report.schema import load_report

    run_dir = Path(args.dir)
    load_report(run_dir)  # validate first: a clear error for a bad directory
    try:
        from harness.report.render import render_report
    except ImportError:
        raise InputError("report rendering is not available in this installation") from None
    for p in render_report(run_dir):
        print(p)
    return 0


def project_options(*, vectors: bool = True) -> argparse.ArgumentParser:
    """``--project`` and the folder overrides shared by every command that reads a project."""
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("project (default: found from the working directory upward, as pytest finds "
                             "its rootdir; see `harness init`)")
    g.add_argument("--project", metavar="PATH",
                   help="a harness.toml or pyproject.toml with [tool.harness], or its folder")
    if vectors:
        g.add_argument("--vectors", metavar="DIR", help="the project's vector folder (overrides the project file)")
    return p


def add_commands(sub) -> None:
    common = argparse.ArgumentParser(add_help=False, parents=[project_options()])
    common.add_argument("--suite", default=None,
                        help="suite name (searched in the project's suites, then the built-ins) or a path to a "
                             "suite TOML (default: the project's `suite`, else smoke)")
    common.add_argument("--seeds", help="comma-separated seeds overriding the suite's, e.g. 1,2")
    common.add_argument("-k", dest="k", metavar="EXPR",
                        help="only cases whose id (vector/pipeline/sSEED) matches: substrings with and/or/not")
    common.add_argument("--workers", type=int, default=1, help="parallel worker processes (default 1)")
    common.add_argument("--cache", default=None, metavar="DIR",
                        help="stage-output cache directory, keyed by content hash (default: the project's cache, "
                             "else ./.harness-cache)")
    common.add_argument("--baselines", metavar="DIR",
                        help="baseline root folder (default: the project's baselines, else the built-in ones)")

    p = sub.add_parser("run", parents=[common], help="run a suite and compare every case with its baseline",
                       description="Runs vector x pipeline x seed permutations of a suite through "
                                   "generate/detect/mask/inpaint/denoise/upscale, measures the outputs and compares "
                                   "them with baselines/. Writes reports/<run-id>/ (report.json, checks.csv, "
                                   "stage PNGs) case by case, so a crash keeps what was done.",
                       epilog="Exit codes: 0 all cases pass, 1 a case failed (or has no baseline) or errored, "
                              "2 a bad suite/option.")
    p.add_argument("--out", metavar="DIR",
                   help="parent directory of the run folder (default: the project's reports, else ./reports)")
    p.add_argument("--executor", default="local", help="local (default) or ray")
    p.add_argument("--no-cache", action="store_true", help="do not read or write the stage cache")
    p.add_argument("-q", "--quiet", action="store_true", help="no per-case progress lines")
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("bake", parents=[common], help="write baselines from a run (never silently)",
                       description="Writes baselines/<suite>/... from --from-report DIR, or runs the suite first. "
                                   "Prints every new, changed and obsolete baseline; writes are atomic and the "
                                   "sha256 manifest is updated with them. `harness run` never bakes.")
    p.add_argument("--from-report", metavar="DIR", help="bake from an existing run directory")
    p.add_argument("--new-only", action="store_true", help="only write baselines that do not exist yet")
    p.add_argument("--prune", action="store_true", help="delete baselines whose case left the suite")
    p.add_argument("-v", "--verbose", action="store_true", help="also list unchanged baselines")
    p.set_defaults(func=_cmd_bake)

    p = sub.add_parser("vectors", help="list test vectors or show one", parents=[project_options()],
                       description="`harness vectors list` lists the codified failure cases; "
                                   "`harness vectors show ID [--out DIR]` describes one and renders it to PNGs.")
    p.add_argument("action", choices=("list", "show"))
    p.add_argument("id", nargs="?")
    p.add_argument("--out", help="directory to render image.png, clean.png, overlay_mask.png, anchors.png into")
    p.set_defaults(func=_cmd_vectors)

    p = sub.add_parser("diff", help="per-check deltas between two runs, worst first",
                       description="Compares REPORT_A (before) with REPORT_B (after): cases and checks whose "
                                   "status or value changed, worst first.",
                       epilog="Exit codes: 0 nothing got worse, 1 a check or case regressed, 2 bad input.")
    p.add_argument("report_a")
    p.add_argument("report_b")
    p.add_argument("--out", help="also write diff.json and diff.md here")
    p.add_argument("--limit", type=int, default=30, help="rows shown (default 30)")
    p.set_defaults(func=_cmd_diff)

    p = sub.add_parser("report", help="re-render summary.md and index.html from report.json",
                       description="Re-derives the views of a run directory from its report.json; "
                                   "report.json itself is never edited.")
    p.add_argument("dir")
    p.set_defaults(func=_cmd_report)
