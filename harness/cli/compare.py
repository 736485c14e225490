"""``harness compare`` (two images or two folders of images) and ``harness bench``."""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import replace

__all__ = ["add_commands", "format_table"]


def _cmd_compare(args: argparse.Namespace) -> int:
    from harness.comparing.files import compare_paths

    def progress(pair) -> None:
        if not args.json and not args.quiet:
            print(f"  {pair.status:5} {pair.candidate}", file=sys.stderr, flush=True)

    from harness.comparing.tolerance import CompareConfig

    measure_kw = {"tile": args.tile, "ring": args.ring}
    config = CompareConfig()
    tolerances = args.tolerances
    if tolerances is None:  # the project's default tolerance file, resolved like every other project path
        from harness.project import load_project

        tolerances = load_project(config_file=args.project).tolerances
    if tolerances:
        from harness.suite.tolerances import load_tolerances

        config = load_tolerances(tolerances)
    if args.k is not None:
        config = replace(config, k=args.k)
    result = compare_paths(args.baseline, args.candidate, mask=args.mask, mode=args.mode,
                           config=config, measure_kw=measure_kw, progress=progress, workers=args.workers,
                           max_pixels=args.max_pixels)
    if args.json:
        sys.stdout.writelines(result.iter_json())  # json.dump's text, one check at a time
        sys.stdout.write("\n")
    else:
        print(format_table(result, limit=args.limit))
    return result.exit_code


def _cmd_bench(args: argparse.Namespace) -> int:
    if args.scale:
        return _cmd_bench_scale(args)
    if args.models:
        from harness.run.bench import run_model_bench

        return run_model_bench(seeds=args.seeds, size=args.size or 64, steps=args.steps, repeats=args.repeats or 3,
                               threads=args.threads, stock=not args.no_stock)
    from harness.measuring.bench import run_bench

    return run_bench(size=args.size or 512, repeats=args.repeats or 30)


def _cmd_bench_scale(args: argparse.Namespace) -> int:
    from pathlib import Path

    from harness.errors import ConfigError
    from harness.run.bench_scale import ScaleOptions, parse_only, parse_targets, run_scale_bench

    try:
        only, targets = parse_only(args.only), parse_targets(args.target)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    for flag, value in (("--cases", args.cases), ("--window", args.window), ("--compare-size", args.compare_size),
                        ("--repeats", args.repeats), ("--threads", args.threads)):
        if value is not None and value < 1:
            raise ConfigError(f"{flag} {value}: expected a whole number >= 1")
    if args.workdir and not Path(args.workdir).is_dir():
        raise ConfigError(f"--workdir {args.workdir}: not a folder")
    opts = ScaleOptions(quick=args.quick, only=only, cases=args.cases, window=args.window,
                        compare_size=args.compare_size, repeats=args.repeats or 1, threads=args.threads,
                        targets=targets, json_path=Path(args.json) if args.json else None,
                        workdir=Path(args.workdir) if args.workdir else None)
    return run_scale_bench(opts)


def _bench_scale_options(p: argparse.ArgumentParser) -> None:
    s = p.add_argument_group(
        "--scale: how the harness scales, as ratios of real `harness` runs in child processes, side by side: "
        "overhead (cold smoke wall / Σ recorded case time, <= 1.10), cached (cold / cached re-run, >= 20), "
        "workers (1 / 2 workers cold, >= 1.7), flat (a synthetic suite: s/case and driver RSS of the last "
        "--window cases over the first, <= 1.2 each), compare (peak RSS of `harness compare` of a generated "
        "pair in float32 image copies, <= 6), history (trend query, < 2 s, where available); exit 1 on a miss")
    s.add_argument("--scale", action="store_true", help="benchmark how the harness scales instead")
    s.add_argument("--quick", action="store_true",
                   help="small sizes (4 tiny cases for the smoke rows, 120 for flat, 512 px; for tests)")
    s.add_argument("--only", metavar="ROWS", help="comma-separated rows: overhead,cached,workers,flat,compare,history")
    s.add_argument("--json", metavar="PATH", help="also write the figures, runs and machine as JSON")
    s.add_argument("--cases", type=int, help="cases of the synthetic suite (default 2000; --quick 120)")
    s.add_argument("--window", type=int, help="cases compared at each end of it (default 100; --quick 20)")
    s.add_argument("--compare-size", type=int, metavar="PX", help="side of the compared pair (default 6000; "
                                                                   "--quick 512)")
    s.add_argument("--target", action="append", metavar="ROW=VALUE",
                   help="override a target, e.g. compare=4 (rows: overhead, cached, workers, flat_time, flat_rss, "
                        "compare, history)")
    s.add_argument("--workdir", metavar="DIR", help="where the temporary folders go (default: the system's)")


def add_commands(sub) -> None:
    from harness.cli.common import project_options

    p = sub.add_parser(
        "compare", help="compare two images or two directories of images", parents=[project_options(vectors=False)],
        description="Compare BASELINE and CANDIDATE: two image files, or two directories whose images are "
                    "matched by relative path (extension ignored). Every slice is checked against a "
                    "tolerance that includes the noise floor of 8-bit quantisation, so re-quantisation "
                    "and ±1 LSB jitter never fail. A file on one side only is reported as an error pair.",
        epilog="Exit codes: 0 all pass, 1 a check failed or a pair errored, 2 a bad input "
               "(unreadable/corrupt image, broken link, image over --max-pixels, size mismatch, empty directory, "
               "bad option).")
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
                        "gating) and an optional [compare] table (k, spread_k), as in suites (default: the "
                        "project's `tolerances` file, if any)")
    p.add_argument("--workers", type=int, default=1, help="measure pairs in N processes (default 1)")
    p.add_argument("--max-pixels", metavar="N", default=None,
                   help="refuse, before decoding, any image whose header declares more than N pixels "
                        "(a count or WxH; 0: no limit; default: $HARNESS_MAX_PIXELS, else 4096x4096 = "
                        "16777216: comparing one pair takes about 60 bytes per pixel, ~1.2 GB at the default; "
                        "each --workers process holds one pair)")
    p.add_argument("-q", "--quiet", action="store_true", help="no per-pair progress on stderr")
    p.set_defaults(func=_cmd_compare)

    p = sub.add_parser("bench", help="time measure() against the fastest 3-channel rfft2 and skimage SSIM, side by "
                                     "side (--models: the diffusers backends one-by-one against batched; --scale: "
                                     "how the harness scales)",
                       description="Prints the time of harness.measure on a SIZE x SIZE RGB image, without and with "
                                   "a 5 % mask, divided by the fastest of six float64 3-channel rfft2 layouts "
                                   "(numpy and scipy.fft; interleaved, planar, per channel; named in the output; "
                                   "target <= 3) and by skimage.metrics.structural_similarity on the same pair "
                                   "(target <= 0.25). One thread, interleaved rounds, medians of thread CPU time. "
                                   "Exit 1 when a target is missed.")
    p.add_argument("--size", type=int, default=None, help="image side in px (default 512; --models: 64)")
    p.add_argument("--repeats", type=int, default=None, help="interleaved repeats (default 30; --models: 3)")
    m = p.add_argument_group("--models: each diffusers backend (sd, sd_img2img, sd_inpaint, sd_upscale, built-in "
                             "tiny checkpoints) one-by-one against batched over the same seeds, images/s side by "
                             "side with the ratio, and whether the batch is identical to one-by-one; exit 1 when "
                             "one is not identical or slower")
    m.add_argument("--models", action="store_true", help="benchmark the diffusers backends' batches instead")
    m.add_argument("--seeds", type=int, default=8, help="seeds per backend (default 8)")
    m.add_argument("--steps", type=int, default=4, help="denoising steps (default 4)")
    m.add_argument("--threads", type=int, default=1, help="torch threads (default 1; --scale: the runs' threads)")
    m.add_argument("--no-stock", action="store_true",
                   help="leave out the columns of the same batch with torch's stock (not batch-invariant) modules")
    _bench_scale_options(p)
    p.set_defaults(func=_cmd_bench)


def format_table(result, limit: int = 15) -> str:
    """Human-readable report of a :class:`~harness.comparing.files.CompareResult`: one block per
    pair, worst checks first (the check table of :mod:`harness.report.text`)."""
    from harness.report.text import table_header, table_row, worst_checks
    from harness.status import GATING

    lines = []
    for p in result.pairs:
        n_fail = sum(c.status == "fail" for c in p.checks)
        head = f"{p.status.upper():5} {p.candidate}  (baseline {p.baseline})"
        if p.error:
            lines.append(f"{head}\n      error: {p.error}")
            continue
        ref = ""
        if "psnr" in p.reference:
            ps = p.reference["psnr"]
            ref = f"  psnr {ps:.2f} dB  ssim {p.reference['ssim']:.4f}" if ps is not None and math.isfinite(ps) \
                else f"  psnr inf  ssim {p.reference['ssim']:.4f}"
        lines.append(f"{head}\n      {len(p.checks)} checks, {n_fail} failed{ref}")
        ranked = worst_checks(p.checks, gating_only=False)
        shown = [c for c in ranked if c.status in GATING][:limit] or ranked[:min(3, limit)]
        if shown:
            lines.append(table_header())
        lines.extend(table_row(c) for c in shown)
        if n_fail > len([c for c in shown if c.status == 'fail']):
            lines.append(f"      ... {n_fail - len([c for c in shown if c.status == 'fail'])} more failed checks "
                         f"(--limit or --json for all)")
    totals = {s: sum(p.status == s for p in result.pairs) for s in ("pass", "fail", "error")}
    lines.append(f"{result.status.upper()}: {len(result.pairs)} pair(s): {totals['pass']} passed, "
                 f"{totals['fail']} failed, {totals['error']} errors")
    return "\n".join(lines)
