"""``harness run``: run a suite and compare every case with its baseline (``--resume``: finish an interrupted run)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.cli.common import load_suite_from_args, project_from_args, say, suite_options
from harness.suite.selection import parse_seeds
from harness.errors import ConfigError

__all__ = ["add_commands"]


def _timeout(args: argparse.Namespace) -> float | None:
    if args.timeout is None:
        return None
    if not args.timeout > 0:
        raise ConfigError(f"--timeout {args.timeout:g}: expected a number of seconds > 0")
    return args.timeout


def _resume_plan(args: argparse.Namespace):
    """The suite, seeds and -k of the interrupted run at ``--resume DIR`` (given ones must match)."""
    from harness.suite.suites import load_suite
    from harness.report.schema import load_report

    run_dir = Path(args.resume)
    if not (run_dir / "report.json").is_file():
        raise ConfigError(f"--resume {run_dir}: not a run folder (no report.json)")
    header = load_report(run_dir / "report.json")
    if header.complete:
        raise ConfigError(f"--resume {run_dir}: the run is complete; nothing to resume")
    env = header.environment
    project = project_from_args(args, reports=args.out)
    if args.baselines is None and env.get("baselines"):  # the baselines the run started with
        project = project.with_overrides(baselines=env["baselines"])
    suite_ref = args.suite or env.get("suite_file")
    if not suite_ref:
        raise ConfigError(f"--resume {run_dir}: the report does not record its suite file; pass --suite")
    suite = load_suite(suite_ref, project=project)
    seeds = parse_seeds(args.seeds) if args.seeds is not None else env.get("seeds")
    k = args.k if args.k is not None else env.get("k")
    return project, suite, seeds, k


def _cmd_run(args: argparse.Namespace) -> int:
    from harness.run.runner import RunInterrupted, run_suite

    timeout = _timeout(args)
    if args.resume:
        project, suite, seeds, k = _resume_plan(args)
    else:
        project, suite = load_suite_from_args(args, reports=args.out)
        seeds, k = parse_seeds(args.seeds), args.k
    if args.executor == "local":  # the workers' fork server imports while the run plans
        from harness.run.workerstart import prewarm

        prewarm(suite.threads)
    try:
        report, run_dir = run_suite(
            suite, project=project, seeds=seeds, k_expr=k, workers=args.workers, executor=args.executor,
            cache_dir=None if args.no_cache else project.cache, progress=None if args.quiet else say,
            timeout=timeout, resume=args.resume)
    except RunInterrupted as exc:
        if exc.run_dir is None:
            raise
        _summary_only(exc.run_dir)
        print(exc.run_dir)
        print(f"harness: interrupted by {exc}: partial report (complete: false) in {exc.run_dir}; "
              f"finish it with `harness run --resume {exc.run_dir}`", file=sys.stderr)
        return exc.exit_code
    _render_views(run_dir, quiet=True)
    print(run_dir)
    return report.exit_code


def _summary_only(run_dir: Path) -> None:
    """summary.md of an interrupted run (fast: an interrupt must end promptly; `harness report` does the rest)."""
    try:
        from harness.fsio import atomic_write_text
        from harness.report.markdown import summary_markdown
        from harness.report.schema import load_report

        atomic_write_text(run_dir / "summary.md", summary_markdown(load_report(run_dir)))
    except Exception:  # noqa: BLE001 - views are re-derivable with `harness report`
        pass


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
                                   "them with baselines/. Writes a fresh reports/<run-id>/ (report.json, checks.csv, "
                                   "cases/, stage PNGs) case by case, so a crash keeps what was done. Every case runs "
                                   "in a worker process (--workers of them): a case that hangs past --timeout or "
                                   "crashes its worker is that case's error (a crash is retried once in a fresh "
                                   "worker), and the run goes on.",
                       epilog="Exit codes: 0 all cases pass, 1 a case failed (or has no baseline) or errored, or the "
                              "run is incomplete; 2 a bad suite/option, an unwritable or full --out (before or during "
                              "the run: the partial report stays, complete: false), or a --resume that does not match; "
                              "130 interrupted by SIGINT, 143 by SIGTERM (the partial report is written, "
                              "complete: false; finish it with --resume).")
    p.add_argument("--out", metavar="DIR",
                   help="parent directory of the run folder (default: the project's reports, else ./reports)")
    p.add_argument("--executor", default="local", help="local (default) or ray")
    p.add_argument("--timeout", type=float, metavar="S",
                   help="seconds one case may run before its worker is killed and the case is an error "
                        "(default: the suite's timeout_s, else no limit)")
    p.add_argument("--resume", metavar="DIR",
                   help="finish the missing cases of the interrupted run in DIR (same suite, seeds and -k as "
                        "recorded in its report.json)")
    p.add_argument("--no-cache", action="store_true", help="do not read or write the stage cache")
    p.add_argument("-q", "--quiet", action="store_true", help="no per-case progress lines")
    p.set_defaults(func=_cmd_run)
