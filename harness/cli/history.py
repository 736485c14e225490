"""``harness history append``, and the history step of ``harness run --history``.

What a history failure does to a run's exit code (the rule is here once): appending never
turns a failing run into a pass, and never lets a passing run look as if its history were
written when it was not.

* The run is complete and the append works: the run's own exit code.
* The append fails (an unwritable folder, a bad checks.parquet, no pyarrow): one line on
  stderr naming the history folder and how to append later; exit 2 if the run passed (so CI
  notices the missing night), else the run's own exit code 1 (already a failure, and the
  run's verdict is what a reader needs first).  The report itself is never touched.
* The run is incomplete (a failed start, missing cases): nothing is appended (a stderr line
  says so); the exit code is the run's (1).  An interrupted run (130/143) never gets here.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from harness.errors import ConfigError, HarnessError

__all__ = ["add_commands", "append_after_run"]

EXIT_USAGE = 2


def append_after_run(run_dir: Path, report: Any, history: Path | None, code: int, *, quiet: bool = False) -> int:
    """Append a finished run to ``history`` (None: no history); the exit code by the module's rule."""
    if history is None:
        return code
    if not report.complete:
        print(f"harness: history: {run_dir.name} not appended to {history}: the run is incomplete",
              file=sys.stderr)
        return code
    from harness.run.history import append_run

    try:
        done = append_run(run_dir, history, report=report)
    except (HarnessError, OSError) as exc:
        print(f"harness: error: history {history}: {exc}; the run's report stands: append it later with "
              f"`harness history append {run_dir} --history {history}`", file=sys.stderr)
        return code or EXIT_USAGE
    if not quiet:
        print(f"harness: history: {done.rows} rows of {done.checks} checks -> {done.path}", file=sys.stderr)
    return code


def _cmd_append(args: argparse.Namespace) -> int:
    from harness.cli.common import project_from_args
    from harness.run.history import append_run

    history = args.history
    if history is None:
        history = project_from_args(args).history
    if history is None:
        raise ConfigError("history append: no history folder: pass --history DIR or set history = \"...\" in "
                          "[tool.harness]")
    done = append_run(Path(args.run_dir), Path(history), keep=args.keep, allow_incomplete=args.allow_incomplete)
    again = " (replaced the copy already there)" if done.replaced else ""
    print(f"{done.path}\t{done.rows} rows of {done.checks} checks, {done.bytes} bytes{again}")
    return 0


def add_commands(sub) -> None:
    from harness.cli.common import project_options

    p = sub.add_parser("history", help="the nightly history of checks (Parquet, by suite and date)",
                       description="The history is a Parquet dataset <history>/suite=<suite>/date=<YYYY-MM-DD>/"
                                   "<run_id>.parquet that `harness run --history DIR` (or the project's history key) "
                                   "appends to; `harness trend` shows its slices across runs; pyarrow or DuckDB query it.")
    hs = p.add_subparsers(dest="history_command", metavar="SUBCOMMAND", required=True)
    a = hs.add_parser("append", parents=[project_options(vectors=False)],
                      help="append a finished run folder to the history",
                      description="Appends RUN_DIR's checks (checks.parquet, with report.json's run id, created, "
                                  "suite, git sha and harness version) to the history, atomically; appending a run "
                                  "again replaces its copy. Default keep rule 'trend': every non-spatial check and "
                                  "every failing one in full, one worst-of row per tile family; 'all': every check.",
                      epilog="Exit codes: 0 appended; 2 no history folder, not a run folder, an incomplete run "
                             "(without --allow-incomplete), a missing or malformed checks.parquet, or an unwritable "
                             "history.")
    a.add_argument("run_dir", metavar="RUN_DIR", help="a run folder (reports/<run-id>/)")
    a.add_argument("--history", metavar="DIR", help="the history folder (default: the project's history key)")
    a.add_argument("--keep", choices=("trend", "all"), default="trend",
                   help="trend (default): non-spatial and failing checks, worst tile per family; all: every check")
    a.add_argument("--allow-incomplete", action="store_true",
                   help="append a run that did not finish (its rows say complete = false)")
    a.set_defaults(func=_cmd_append)
