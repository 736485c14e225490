"""``harness trend``: chosen slices across the runs of the nightly history, with their tolerance band.

Exit codes: 0 the view was shown, flagged drift included -- a trend is a view, not a gate (the
nightly run's own exit code is the gate, and a view that failed on drift under tolerance
would turn every night red for what is by definition still a pass); 2 no history folder, no
such suite, an unreadable history file, a bad option or pattern, no runs in the window, or a
selection that matches nothing (one line naming it).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.errors import ConfigError

__all__ = ["add_commands"]


def _cmd_trend(args: argparse.Namespace) -> int:
    from harness.cli.common import project_from_args
    from harness.report.trend import Selection, build_trend, trend_table

    history = args.history
    if history is None:
        history = project_from_args(args).history
    if history is None:
        raise ConfigError('trend: no history folder: pass --history DIR or set history = "..." in [tool.harness]')
    selection = Selection(suite=args.suite, k=args.k, metrics=tuple(args.metric), slices=tuple(args.slice),
                          since=args.since, last=args.last)
    view = build_trend(Path(history), selection, top=args.top, streak=args.streak, near=args.near)
    print(trend_table(view))
    if args.out:
        from harness.report.trend_chart import write_html, write_png

        out = Path(args.out)
        paths = [write_png(view, out / "trend.png"), write_html(view, out / "trend.html")]
        print(f"harness: trend: wrote {', '.join(map(str, paths))}", file=sys.stderr)
    return 0


def add_commands(sub) -> None:
    from harness.cli.common import project_options

    p = sub.add_parser(
        "trend", parents=[project_options(vectors=False)],
        help="slices across the runs of the nightly history, with their tolerance band (table, PNG, HTML)",
        description="Shows chosen series (case x metric x slice) of the history across runs with their "
                    "tolerance band (baseline ± tolerance), so drift that stays under tolerance each night is "
                    "seen: a series is flagged 'fail' (its last run failed), 'near' (its last value used more "
                    "than --near of its tolerance) or 'trend' (it moved the same way in each of its last --streak "
                    "runs). The most drifting --top series are shown, flagged first; the rest are counted.",
        epilog="Patterns: --metric and --slice take a glob (band=high*, *tile=worst*; without * ? [ an exact "
               "name) or re:EXPR (a regular expression searched in the name); each may be given several times. "
               "Exit codes: 0 the view was shown (flags included: a trend is a view, the run is the gate); "
               "2 no history or suite, an unreadable history file, a bad option, or nothing selected.")
    p.add_argument("--history", metavar="DIR", help="the history folder (default: the project's history key)")
    p.add_argument("--suite", metavar="NAME", help="the suite (default: the history's only suite)")
    p.add_argument("-k", dest="k", metavar="EXPR",
                   help="only cases whose id (vector/pipeline/sSEED) matches: substrings with and/or/not")
    p.add_argument("--metric", metavar="M", action="append", default=[], help="only metrics matching M (repeatable)")
    p.add_argument("--slice", metavar="S", action="append", default=[], help="only slices matching S (repeatable)")
    p.add_argument("--since", metavar="DATE", help="only runs of that UTC day (YYYY-MM-DD) or later, or since an "
                                                   "ISO timestamp")
    p.add_argument("--last", metavar="N", type=int, help="only the last N runs (after --since)")
    p.add_argument("--top", metavar="N", type=int, default=12,
                   help="show the N series that drifted most, flagged first (default 12)")
    p.add_argument("--streak", metavar="N", type=int, default=5,
                   help="flag 'trend' after N runs moving the same way (default 5)")
    p.add_argument("--near", metavar="F", type=float, default=0.5,
                   help="flag 'near' when the last value used more than F of its tolerance (default 0.5)")
    p.add_argument("--out", metavar="DIR", help="also write DIR/trend.png and DIR/trend.html (self-contained)")
    p.set_defaults(func=_cmd_trend)
