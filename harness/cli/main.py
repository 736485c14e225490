"""The ``harness`` command line: parses arguments and calls the API.

Exit codes (contract): 0 all checks pass, 1 a check failed or a case errored,
2 a usage, configuration or input error -- reported as one line naming the
file or option, never as a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Callable, Sequence

from harness.errors import HarnessError

__all__ = ["main", "build_parser"]

EXIT_PASS, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2
        self.exit(EXIT_USAGE, f"harness: error: {message} (see '{self.prog} --help')\n")


def _cmd_compare(args: argparse.Namespace) -> int:
    from harness.comparing.files import compare_paths, format_table

    def progress(pair) -> None:
        if not args.json and not args.quiet:
            print(f"  {pair.status:5} {pair.candidate}", file=sys.stderr, flush=True)

    measure_kw = {"tile": args.tile, "ring": args.ring}
    from dataclasses import replace

    from harness.comparing.engine import CompareConfig

    config = CompareConfig()
    if args.tolerances:
        from harness.pipeline.suite import load_tolerances

        config = load_tolerances(args.tolerances)
    if args.k is not None:
        config = replace(config, k=args.k)
    result = compare_paths(args.baseline, args.candidate, mask=args.mask, mode=args.mode,
                           config=config, measure_kw=measure_kw, progress=progress, workers=args.workers)
    if args.json:
        json.dump(result.to_dict(), sys.stdout, allow_nan=False)
        sys.stdout.write("\n")
    else:
        print(format_table(result, limit=args.limit))
    return result.exit_code


def _cmd_bench(args: argparse.Namespace) -> int:
    from harness.measuring.bench import run_bench

    return run_bench(size=args.size, repeats=args.repeats)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="harness",
        description="Regression tests for image pipelines: measure spectral-energy and local-contrast "
                    "slices (per band, tile, mask region, channel) and compare them with baselines.",
        epilog="Exit codes: 0 all checks pass, 1 a check failed or a case errored, 2 usage/config/input error.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser(
        "compare", help="compare two images or two directories of images",
        description="Compare BASELINE and CANDIDATE: two image files, or two directories whose images are "
                    "matched by relative path (extension ignored). Every slice is checked against a "
                    "tolerance that includes the noise floor of 8-bit quantisation, so re-quantisation "
                    "and ±1 LSB jitter never fail. A file on one side only is reported as an error pair.",
        epilog="Exit codes: 0 all pass, 1 a check failed or a pair errored, 2 a bad input "
               "(unreadable/corrupt image, size mismatch, empty directory, bad option).")
    p.add_argument("baseline", help="baseline image file or directory")
    p.add_argument("candidate", help="candidate image file or directory")
    p.add_argument("--mask", help="mask image (single channel, soft values allowed, thresholded at 0.5) "
                                  "or a directory of masks matched by relative path")
    p.add_argument("--mode", default="paired",
                   help="paired: same input and seed, file against file (default); distribution: each "
                        "directory is a set of seeds, candidate mean against baseline mean ± k·spread")
    p.add_argument("--json", action="store_true", help="print one JSON document (see README) instead of a table")
    p.add_argument("--limit", type=int, default=15, help="failed checks shown per pair in the table (default 15)")
    p.add_argument("--tile", type=int, default=None,
                   help="tile size in px; tiles overlap by half (default 64, a quarter of the short side "
                        "for images under 256 px)")
    p.add_argument("--ring", type=int, default=8, help="width in px of the border ring outside the mask (default 8)")
    p.add_argument("-k", type=float, default=None, dest="k",
                   help="noise multiplier: allowance in standard deviations of the noise floor (default 4)")
    p.add_argument("--tolerances", metavar="FILE",
                   help="TOML with [[tolerances]] overrides (metric, slice glob, rel_tol, abs_tol, direction, "
                        "gating) and an optional [compare] table (k, spread_k), as in suites")
    p.add_argument("--workers", type=int, default=1, help="measure pairs in N processes (default 1)")
    p.add_argument("-q", "--quiet", action="store_true", help="no per-pair progress on stderr")
    p.set_defaults(func=_cmd_compare)

    p = sub.add_parser("bench", help="time measure() against numpy rfft2 and skimage SSIM, side by side",
                       description="Prints the time of harness.measure on a SIZE x SIZE RGB image divided by "
                                   "numpy.fft.rfft2 over its three channels (target <= 3) and by "
                                   "skimage.metrics.structural_similarity on the same pair (target <= 1).")
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--repeats", type=int, default=30)
    p.set_defaults(func=_cmd_bench)

    _add_pipeline_commands(sub)
    return parser


def _add_pipeline_commands(sub) -> None:
    """Commands of the pipeline layer (run, bake, diff, report, vectors), when present."""
    try:
        from harness.cli import pipeline as commands
    except ImportError:
        return
    commands.add_commands(sub)


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("harness")
    except Exception:  # noqa: BLE001 - metadata missing in a source checkout
        return "unknown"


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] | None = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        return func(args)
    except HarnessError as exc:
        print(f"harness: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("harness: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_FAIL
    except Exception as exc:  # noqa: BLE001 - never a bare traceback for the user
        if os.environ.get("HARNESS_DEBUG"):
            raise
        print(f"harness: internal error ({type(exc).__name__}: {exc}); "
              f"rerun with HARNESS_DEBUG=1 for the traceback", file=sys.stderr)
        return EXIT_FAIL


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
