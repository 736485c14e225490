"""``harness run``: run a suite and compare every case with its baseline."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.cli.common import load_suite_from_args, parse_seeds, say, suite_options

__all__ = ["add_commands"]


def _cmd_run(args: argparse.Namespace) -> int:
    from harness.pipeline.runner import run_suite

    project, suite = load_suite_from_args(args, reports=args.out)
    report, run_dir = run_suite(
        suite, project=project, seeds=parse_seeds(args.seeds), k_expr=args.k,
        workers=args.workers, executor=args.executor, cache_dir=None if args.no_cache else project.cache,
        progress=None if args.quiet else say)
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


def add_commands(sub) -> None:
    p = sub.add_parser("run", parents=[suite_options()], help="run a suite and compare every case with its baseline",
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
