"""``harness diff`` and ``harness report``: views of finished runs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.errors import InputError

__all__ = ["add_commands"]


def _cmd_diff(args: argparse.Namespace) -> int:
    from harness.report.diff import diff_reports
    from harness.report.diff_text import format_diff

    if args.limit < 1:
        raise InputError(f"--limit {args.limit}: expected a positive number of rows")
    result = diff_reports(Path(args.report_a), Path(args.report_b))
    if args.out:
        from harness.report.diff_html import write_diff_html
        from harness.report.diff_text import write_diff_text

        out = Path(args.out)
        page, images = write_diff_html(result, out)
        for p in [*write_diff_text(result, out, images), page]:
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
    p = sub.add_parser(
        "diff", help="per-check deltas between two runs, worst first",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Compares REPORT_A (before) with REPORT_B (after), each a run folder or its report.json: "
                    "first what differs between the runs (environment, each vector x pipeline's pipeline config, "
                    "the first stage whose image differs), then one row per vector x pipeline x check (metric + "
                    "slice) with the seeds folded: newly failing, newly fixed, still failing and moved within "
                    "tolerance, worst first. Swapping A and B swaps newly failing and newly fixed.",
        epilog="--out DIR writes:\n"
               "  diff.json  {format, run_a, run_b, failed, incomplete, environment, environment_same, pipeline,\n"
               "              notes, units, counts, rows}: rows are the folded checks by section (unit, metric,\n"
               "              slice, section, regressed, seeds, status, change {median,min,max}, severity_a/b,\n"
               "              box, per_seed); see harness.report.diff_text\n"
               "  diff.md    the same as markdown tables\n"
               "  diff.html  a self-contained page with A | B | difference images (images/*.png) of each\n"
               "              newly failing vector x pipeline, the failing checks' boxes drawn\n"
               "Exit codes: 0 nothing got worse, 1 a check or case newly fails in B or either report is "
               "incomplete (an interrupted run: named on stderr), 2 bad input (a missing or malformed report).")
    p.add_argument("report_a", help="the run before (folder or report.json)")
    p.add_argument("report_b", help="the run after (folder or report.json)")
    p.add_argument("--out", metavar="DIR", help="also write diff.json, diff.md and diff.html (with images) here")
    p.add_argument("--limit", type=int, default=30, help="rows shown per section (default 30)")
    p.set_defaults(func=_cmd_diff)

    p = sub.add_parser("report", help="re-render summary.md and index.html from report.json",
                       description="Re-derives the views of a run directory from its report.json; "
                                   "report.json itself is never edited.")
    p.add_argument("dir")
    p.set_defaults(func=_cmd_report)
