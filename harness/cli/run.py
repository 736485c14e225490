"""``harness run``: run a suite and compare every case with its baseline (``--resume``: finish an interrupted run)."""

from __future__ import annotations

import argparse
import os
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


def _memo_is_empty(cache_dir: Path | None) -> bool:
    """True when the case memo beside stage cache ``cache_dir`` holds no recorded case (no folder, or
    no entry in it; None: no cache, so no memo): every case of the run must execute."""
    from harness.run.case_memo import SUFFIX

    if cache_dir is None:
        return True
    try:
        with os.scandir(Path(cache_dir) / "memo") as entries:
            return not any(e.name.endswith(SUFFIX) for e in entries)
    except OSError:  # no folder yet (a cold cache), or unreadable: the memo will not replay from it
        return True


def _warm_recording() -> None:
    """Import now what recording the first case and the views import: pyarrow (and pandas, which
    pyarrow's first conversion loads), jinja2.  Called while the fork server starts (0.5 s here,
    which this process waits for before its first worker anyway), so these 0.15-0.4 s of CPU are not
    spent later, against the workers (with as many workers as cores) or after the last case."""
    try:
        import jinja2  # noqa: F401
        import pyarrow as pa
        import pyarrow.parquet  # noqa: F401

        pa.array([0.0])
    except ImportError:  # a view or the checks table says what is missing, where it is needed
        pass


def _verbosity(args: argparse.Namespace) -> int:
    """-1 for ``-q``, 1 for ``-v``, else 0 (both at once is a usage error)."""
    if args.quiet and args.verbose:
        raise ConfigError("-q and -v: choose one")
    return -1 if args.quiet else 1 if args.verbose else 0


def _ray_address(args: argparse.Namespace) -> None:
    """``--ray-address``: the cluster ``--executor ray`` joins, handed on as ``RAY_ADDRESS`` (which
    ``ray.init`` and :mod:`harness.run.ray_executor` read)."""
    if args.ray_address is None:
        return
    if args.executor != "ray":
        raise ConfigError("--ray-address needs --executor ray")
    from harness.run.ray_setup import ray_address

    os.environ["RAY_ADDRESS"] = ray_address(args.ray_address) or ""


def _cmd_run(args: argparse.Namespace) -> int:
    from harness.run.runner import RunInterrupted, run_suite

    timeout = _timeout(args)
    _ray_address(args)
    if args.bundle:  # a folder in the way fails now, not after the run
        from harness.report.bundle import check_destination

        check_destination(Path(args.bundle).expanduser().absolute())
    if args.resume:
        project, suite, seeds, k = _resume_plan(args)
    else:
        project, suite = load_suite_from_args(args, reports=args.out)
        seeds, k = parse_seeds(args.seeds), args.k
    if args.executor == "local":  # the workers' fork server imports while the run plans
        from harness.run.workerstart import prewarm

        cache = None if args.no_cache else project.cache
        cold = not args.resume and _memo_is_empty(cache)
        prewarm(suite.threads, start=cold)  # cold: every case executes, so the server starts now
        if cold:
            _warm_recording()
    from harness.report.progress import make_progress

    try:
        with make_progress(_verbosity(args)) as observer:
            report, run_dir = run_suite(
                suite, project=project, seeds=seeds, k_expr=k, workers=args.workers, executor=args.executor,
                cache_dir=None if args.no_cache else project.cache, observer=observer, timeout=timeout,
                resume=args.resume, maxfail=args.maxfail)
    except RunInterrupted as exc:
        if exc.run_dir is None:
            raise
        _summary_only(exc.run_dir)
        print(exc.run_dir)
        print(f"harness: interrupted by {exc}: partial report (complete: false) in {exc.run_dir}; "
              f"finish it with `harness run --resume {exc.run_dir}`", file=sys.stderr)
        return exc.exit_code
    _render_views(run_dir, quiet=True)
    from harness.cli.store import prune_after_run

    prune_after_run(project, report)
    if getattr(args, "csv", False):
        from harness.report.checks_table import write_csv

        write_csv(run_dir)
    print(run_dir)
    if args.bundle:
        _bundle(run_dir, args.bundle)
    from harness.cli.history import append_after_run

    history = args.history or project.history
    return append_after_run(run_dir, report, history and Path(history), report.exit_code, quiet=args.quiet)


def _bundle(run_dir: Path, dest: str) -> None:
    from harness.report.bundle import write_bundle

    b = write_bundle(run_dir, dest)
    missing = f"; {len(b.missing)} image(s) not found, shown as text" if b.missing else ""
    missing += f"; {len(b.over_budget)} failing case(s) as thumbnails (full-size budget spent)" if b.over_budget else ""
    say(f"bundle {b.path}: {b.size / 2**20:.1f} MB, {b.full} full-size image(s), {b.thumbs} thumbnail(s){missing}")


def _cmd_export(args: argparse.Namespace) -> int:
    run_dir = Path(args.run_dir)
    if not (run_dir / "report.json").is_file():
        raise ConfigError(f"{run_dir}: not a run folder (no report.json)")
    _bundle(run_dir, args.dest)
    return 0


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
                                   "them with baselines/. Writes a fresh reports/<run-id>/ (report.json, "
                                   "checks.parquet, cases/) case by case, so a crash keeps what was done; stage images "
                                   "go once into the image store (--store), referenced by sha256. Every case runs "
                                   "in a worker process (--workers of them): a case that hangs past --timeout or "
                                   "crashes its worker is that case's error (a crash is retried once in a fresh "
                                   "worker), and the run goes on.",
                       epilog="Exit codes: 0 all cases pass, 1 a case failed (or has no baseline) or errored, or the "
                              "run is incomplete (stopped by --maxfail); 2 a bad suite/option, an unwritable or full "
                              "--out (before or during the run: the partial report stays, complete: false), or a "
                              "--resume that does not match; "
                              "130 interrupted by SIGINT, 143 by SIGTERM (the partial report is written, "
                              "complete: false; finish it with --resume).")
    p.add_argument("--out", metavar="DIR",
                   help="parent directory of the run folder (default: the project's reports, else ./reports)")
    p.add_argument("--executor", default="local",
                   help="local (default): whole cases in --workers processes; pipelined: the stages in one worker "
                        "per device (a GPU) and measuring in --workers others, overlapped (GPU nightlies); ray: Ray "
                        "actors that keep the models loaded, on a local Ray or the cluster of --ray-address "
                        "(needs the 'ray' extra)")
    p.add_argument("--ray-address", metavar="ADDR",
                   help="with --executor ray: the Ray cluster to join (HOST:6379 from one of its nodes, "
                        "ray://HOST:10001, or auto); default: RAY_ADDRESS, else a local Ray with --workers CPUs")
    p.add_argument("--timeout", type=float, metavar="S",
                   help="seconds one case may run before its worker is killed and the case is an error "
                        "(default: the suite's timeout_s, else no limit)")
    p.add_argument("--resume", metavar="DIR",
                   help="finish the missing cases of the interrupted run in DIR (same suite, seeds and -k as "
                        "recorded in its report.json)")
    p.add_argument("--no-cache", action="store_true", help="do not read or write the stage cache")
    p.add_argument("--history", metavar="DIR",
                   help="append the finished run's checks to this history dataset (default: the project's history "
                        "key, else none); a failed append is one stderr line and exit 2 for a passing run "
                        "(never a pass for a failing one)")
    p.add_argument("-q", "--quiet", action="store_true",
                   help="only the failing cases' one-line results and the summary (no bar, no details)")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="every case with all its deciding checks (failing ones and the nearest misses). "
                        "Default: a line per case and, under each failing or errored case, its worst three "
                        "checks (metric, slice, pixel box, value vs baseline, x tolerance) and what changed; "
                        "then the run's config differences and the summary. On a terminal a progress bar "
                        "(done/total, elapsed, ETA, the cases running now) with the failing cases above it; "
                        "plain lines without control codes when stderr is not a terminal, CI is set or "
                        "TERM=dumb (HARNESS_PROGRESS=bar|plain forces one)")
    p.add_argument("--maxfail", type=int, metavar="N",
                   help="start no further case after N cases failed or errored: the run is incomplete "
                        "(complete: false, exit 1, never a pass); `harness run --resume DIR` finishes it")
    p.add_argument("--bundle", metavar="DIR",
                   help="also write a self-contained copy of the run to DIR for CI upload: report.json, "
                        "summary.md, index.html, checks.parquet and the images the views show (failing cases' at "
                        "full size, 160 px thumbnails for the rest), links relative to DIR (same as "
                        "`harness export RUN DIR`)")
    p.add_argument("--csv", action="store_true",
                   help="also write checks.csv (every check as CSV rows; checks.parquet holds them always)")
    p.set_defaults(func=_cmd_run)
    e = sub.add_parser("export", help="write a self-contained copy of a run folder (for CI upload)",
                       description="Copies a run's report.json, checks.parquet and the images its views show "
                                   "(from the image store: failing and errored cases at full size, 160 px "
                                   "thumbnails for the rest, each image once) into DEST, rewrites the artifacts to "
                                   "DEST-relative paths and renders summary.md and index.html there. DEST must be "
                                   "new, empty or an earlier bundle (replaced).",
                       epilog="Exit codes: 0 written; 2 RUN is not a run folder or DEST is in the way.")
    e.add_argument("run_dir", metavar="RUN", help="a run folder (reports/<run-id>)")
    e.add_argument("dest", metavar="DEST", help="the bundle folder to write")
    e.set_defaults(func=_cmd_export)
