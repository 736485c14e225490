"""``harness diff`` and ``harness report``: views of finished runs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.errors import InputError

__all__ = ["add_commands"]


def _cmd_diff(args: argparse.Namespace) -> int:
    from harness.report.diff import diff_reports, format_diff

    result = diff_reports(Path(args.report_a), Path(args.report_b))
    if args.out:
        from harness.report.diff import write_diff

        for p in write_diff(result, Path(args.out)):
            print(p, file=sys.stderr)
    print(format_diff(result, limit=args.limit))
    for line in result.incomplete:
        print(f"harness: {line}: an incomplete report fails the diff", file=sys.stderr)
    return 1 if result.failed else 0


def _cmd_report(args: argparse.Namespace) -> int:
    from harness.report.schema import load_report

    run_dir = Path(args.dir)
    report = load_report(run_dir)  # validate first: a clear error for a bad directory
    try:
        from harness.report.render import render_report
    except ImportError:
        raise InputError("report rendering is not available in this installation") from None
    for p in render_report(run_dir, report):
        print(p)
    if not report.complete:  # rendered as such: a banner, an INCOMPLETE verdict, the missing cases
        print(f"harness: {run_dir} is an INCOMPLETE run ({report.incomplete_reason()}): the views say so",
              file=sys.stderr)
    return 0


def add_commands(sub) -> None:
    p = sub.add_parser("diff", help="per-check deltas between two runs, worst first",
                       description="Compares REPORT_A (before) with REPORT_B (after): cases and checks whose "
                                   "status or value changed, worst first.",
                       epilog="Exit codes: 0 nothing got worse, 1 a check or case regressed or either report is "
                              "incomplete (an interrupted run: named on stderr), 2 bad input.")
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
