"""The ``harness`` command line: parses arguments and calls the API.

Exit codes (contract): 0 all checks pass, 1 a check failed, a case errored or the
run is incomplete, 2 a usage, configuration or input error -- reported as one line
naming the file or option, never as a traceback -- and 3 an internal error (a bug:
one line, and the traceback with ``--debug``).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Callable, Sequence

from harness.errors import HarnessError

__all__ = ["main", "build_parser"]

EXIT_PASS, EXIT_FAIL, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2
        self.exit(EXIT_USAGE, f"harness: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="harness",
        description="Regression tests for image pipelines: measure spectral-energy and local-contrast "
                    "slices (per band, tile, mask region, channel) and compare them with baselines.",
        epilog="Exit codes: 0 all checks pass, 1 a check failed, a case errored or a run is incomplete, "
               "2 usage/config/input error, 3 internal error (rerun with --debug for the traceback).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    parser.add_argument("--debug", action="store_true",
                        help="on an internal error, print the full traceback (also: HARNESS_DEBUG=1)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    _add_commands(sub)
    return parser


def _add_commands(sub) -> None:
    """One module per command group; each adds its sub-commands (heavy imports stay inside them)."""
    # each command module by its own name, not through the package (whose __init__ imports this module)
    from harness.cli.bake import add_commands as add_bake
    from harness.cli.baselines import add_commands as add_baselines
    from harness.cli.compare import add_commands as add_compare
    from harness.cli.history import add_commands as add_history
    from harness.cli.init import add_command as add_init
    from harness.cli.reports import add_commands as add_reports
    from harness.cli.run import add_commands as add_run
    from harness.cli.store import add_commands as add_store
    from harness.cli.trend import add_commands as add_trend
    from harness.cli.vectors import add_commands as add_vectors

    add_compare(sub)
    add_run(sub)
    add_bake(sub)
    add_baselines(sub)
    add_vectors(sub)
    add_reports(sub)
    add_init(sub)
    add_store(sub)
    add_history(sub)
    add_trend(sub)


def _version() -> str:
    try:
        from importlib.metadata import version

        from harness.naming import DISTRIBUTION

        return version(DISTRIBUTION)
    except Exception:  # noqa: BLE001 - metadata missing in a source checkout
        return "unknown"


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv  # accepted anywhere on the line, not only before the command
    args = parser.parse_args([a for a in argv if a != "--debug"])
    args.debug = debug
    func: Callable[[argparse.Namespace], int] | None = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        return func(args)
    except HarnessError as exc:
        print(f"harness: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt as exc:  # SIGINT, or SIGTERM turned into an interrupt by the runner
        print("harness: interrupted", file=sys.stderr)
        return getattr(exc, "exit_code", 130)
    except BrokenPipeError:
        return EXIT_FAIL
    except OSError as exc:  # the file system refused: a read-only, unwritable or full folder, a missing path
        where = exc.filename or exc.filename2
        reason = exc.strerror or str(exc)
        print(f"harness: error: {where}: {reason}" if where else f"harness: error: {reason}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:  # noqa: BLE001 - never a bare traceback for the user
        if args.debug or os.environ.get("HARNESS_DEBUG"):
            raise
        print(f"harness: internal error ({type(exc).__name__}: {exc}); this is a bug in harness: "
              f"rerun with --debug for the traceback", file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
