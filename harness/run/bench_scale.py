"""``harness bench --scale``: how the harness itself scales, as ratios measured side by side in one run.

Rows (``--only`` picks some; exit 1 when a row misses its target or could not be measured):

* ``overhead``: wall time of a cold ``harness run`` of smoke (one worker, spawn to exit) over
  Σ recorded case time (the sum over cases of every value of the case's ``timings`` in
  report.json): what orchestration adds.  Target <= 1.10.
* ``cached``: that cold run's wall over the same command run again with the same ``--cache``
  (and ``--store`` where ``harness run`` has one).  Target >= 20.
* ``workers``: the cold one-worker wall over a cold ``--workers 2`` wall (fresh cache).  Target >= 1.7.
* ``flat_time`` / ``flat_rss`` (``--only flat``): a synthetic suite of ``--cases`` cheap cases
  (a ``harness init`` project with one 64 x 64 vector through the cheapest classical stages,
  baked first so every case is judged): the mean wall time per case of the last ``--window``
  cases over the first (the interval between consecutive cases' records, by their mtimes: the
  run's own clock, see :func:`landed_times`; the arrival of the ``[k/N]`` progress lines when those
  cannot be read; the first case, which pays the start-up, is left out), and the driver's peak RSS
  over the same two windows (sampled at each progress line).  Target <= 1.2 each.
* ``compare``: ``harness compare`` of a generated ``--compare-size``² pair in a child process:
  its peak RSS (``os.wait4``'s ``ru_maxrss``, the whole process, nothing subtracted) in float32
  image copies (H x W x 3 x 4 bytes).  Target <= 6.
* ``history``: the nightly-history trend query, where :func:`harness.run.history.bench_history`
  exists (see :func:`_history_row`).  Target < 2 s.

The smoke trio is interleaved (cold, cached, two workers) ``--repeats`` times and each ratio is
the median of its per-repeat ratios.  ``--quick`` swaps smoke for the first 4 cases of the tiny
project and shrinks the rest (for tests; its ratios mean little).  Every run is the real
``harness`` CLI in a fresh temporary folder (:mod:`harness.run.bench_scale_runs`), threads
pinned and recorded.  The machine's cores and load average are printed first: on a loaded
machine the ratios are noisy, and the output says so.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from harness.run import bench_scale_runs as runs

__all__ = ["ROWS", "TARGETS", "Row", "ScaleOptions", "run_scale_bench", "window_ratios", "parse_only",
           "parse_targets"]

QUICK_CASES = 4  # --quick: cases of the smoke rows' stand-in
ROWS = ("overhead", "cached", "workers", "flat", "compare", "history", "overlap")  # what --only names
TARGETS: dict[str, tuple[str, float]] = {"overhead": ("<=", 1.10), "cached": (">=", 20.0), "workers": (">=", 1.7),
                                         "flat_time": ("<=", 1.2), "flat_rss": ("<=", 1.2), "compare": ("<=", 6.0),
                                         "history": ("<", 2.0), "overlap": ("<=", 0.75)}
_UNITS = {"overhead": "", "cached": "x", "workers": "x", "flat_time": "", "flat_rss": "", "compare": " copies",
          "history": " s", "overlap": ""}


@dataclass
class Row:
    """One figure: ``value`` against ``target`` (``op`` one of <, <=, >=); ``error`` when it could not be
    measured (a miss); ``absent`` for an optional row whose code is not there (not counted)."""

    id: str
    value: float | None
    op: str
    target: float
    detail: str = ""
    error: str | None = None
    absent: bool = False

    @property
    def verdict(self) -> str:
        if self.absent:
            return "n/a"
        if self.error is not None or self.value is None:
            return "ERROR"
        met = {"<": self.value < self.target, "<=": self.value <= self.target,
               ">=": self.value >= self.target}[self.op]
        return "ok" if met else "MISSED"


@dataclass
class ScaleOptions:
    quick: bool = False
    only: tuple[str, ...] = ROWS
    cases: int | None = None  # synthetic suite size (default 2000; quick 120)
    window: int | None = None  # cases per window (default 100; quick 20)
    compare_size: int | None = None  # px (default 6000; quick 512)
    repeats: int = 1
    threads: int = 1
    suite: str = "smoke"
    targets: dict[str, float] = field(default_factory=dict)
    json_path: Path | None = None
    workdir: Path | None = None

    def sizes(self) -> tuple[int, int, int]:
        """``(cases, window, compare side)`` with the defaults of the mode."""
        return (self.cases or (120 if self.quick else 2000), self.window or (20 if self.quick else 100),
                self.compare_size or (512 if self.quick else 6000))


def parse_only(text: str | None) -> tuple[str, ...]:
    """``--only overhead,cached``: row names among :data:`ROWS` (a bad one is a ValueError naming it)."""
    if not text:
        return ROWS
    names = tuple(dict.fromkeys(s.strip() for s in text.split(",") if s.strip()))
    bad = [n for n in names if n not in ROWS]
    if bad or not names:
        raise ValueError(f"--only {text!r}: unknown row {', '.join(bad) or '(none)'}; choose from {', '.join(ROWS)}")
    return names


def parse_targets(items: list[str] | None) -> dict[str, float]:
    """``--target compare=4``: overrides of :data:`TARGETS` (a bad one is a ValueError naming it)."""
    out: dict[str, float] = {}
    for item in items or []:
        name, eq, value = item.partition("=")
        try:
            if not eq or name not in TARGETS:
                raise ValueError
            out[name] = float(value)
        except ValueError:
            raise ValueError(f"--target {item!r}: expected NAME=NUMBER with NAME among {', '.join(TARGETS)}") from None
    return out


def window_ratios(events: list[runs.Event], window: int) -> tuple[float, float, int | None, int | None]:
    """``(mean s/case of the first window, of the last, peak driver RSS over the first, over the last)``.

    A case's time is the interval between its progress line and the one before, so the first
    case (start-up: imports, worker spawn) has none; the first window is cases 2..window+1, the
    last the final ``window`` cases.  ValueError when there are too few cases for two windows."""
    if len(events) < 2 * window + 1:
        raise ValueError(f"{len(events)} progress lines: need at least {2 * window + 1} for two windows of {window}")
    t = [e.t for e in events]
    first = (t[window] - t[0]) / window
    last = (t[-1] - t[-1 - window]) / window
    rss_first = [e.rss for e in events[1:window + 1] if e.rss is not None]
    rss_last = [e.rss for e in events[-window:] if e.rss is not None]
    return first, last, max(rss_first) if rss_first else None, max(rss_last) if rss_last else None


def landed_times(run_root: Path) -> list[float] | None:
    """When each case of the one run under ``run_root`` was recorded (seconds, sorted): the mtimes of its
    case records ``cases/<slug>.json``, written by the run itself as each case lands.  The run's own
    clock: a progress line's arrival through the pipe can lag and then come in a burst (the reader also
    reads /proc per line), which made the first window look faster than the run was.  None when there is
    not exactly one run folder."""
    folders = [p for p in run_root.iterdir() if p.is_dir()] if run_root.is_dir() else []
    if len(folders) != 1:
        return None
    return sorted(p.stat().st_mtime_ns / 1e9 for p in (folders[0] / "cases").glob("*.json")) or None


def _row(rid: str, opts: ScaleOptions, value: float | None = None, detail: str = "", error: str | None = None,
         absent: bool = False) -> Row:
    op, target = TARGETS[rid]
    return Row(rid, value, op, opts.targets.get(rid, target), detail, error, absent)


# ------------------------------------------------------------------------------ the smoke trio
def _tiny(opts: ScaleOptions, work: Path, env: dict[str, str]) -> Path:
    """The baked tiny project (made once per benchmark): suite ``flat`` of the synthetic size when the
    flat rows are measured, else of :data:`QUICK_CASES` cases (``--quick``'s smoke stand-in runs its first seeds)."""
    project = work / "tiny-project"
    if not project.is_dir():
        n = opts.sizes()[0] if "flat" in opts.only else QUICK_CASES
        runs.tiny_project(project, {"flat": max(n, QUICK_CASES)}, opts.threads, env)
        runs.bake(project, "flat", env)
    return project


def _smoke_workload(opts: ScaleOptions, work: Path, env: dict[str, str]) -> tuple[Path, list[str]]:
    """(folder to run in, suite arguments): an empty folder for the built-in suite, or the quick tiny project."""
    if opts.quick:
        return _tiny(opts, work, env), ["--suite", "flat", "--seeds", f"1-{QUICK_CASES}"]
    folder = work / "smoke"
    folder.mkdir()
    return folder, ["--suite", opts.suite]


def _one_run(cwd: Path, suite: list[str], flags: list[str], workers: int, env: dict[str, str]) -> dict[str, Any]:
    """One ``harness run``: wall, peak RSS and the report's Σ case time; RuntimeError on exit 2 or 3."""
    proc = runs.launch(["run", *suite, "--workers", str(workers), "-q", *flags], cwd, env)
    lines = proc.stdout.strip().splitlines()
    if proc.rc not in (0, 1) or not lines or not (Path(lines[-1]) / "report.json").is_file():
        raise RuntimeError(proc.failure())
    run_dir = Path(lines[-1])
    sigma, n, summary = runs.case_seconds(run_dir)
    doc = json.loads((run_dir / "report.json").read_text(encoding="utf-8"))
    memo = sum(1 for c in doc.get("cases") or [] if (c.get("config") or {}).get("memo"))  # harness.run.case_memo
    return {"args": proc.args, "rc": proc.rc, "wall_s": proc.wall_s, "maxrss": proc.maxrss, "sum_case_s": sigma,
            "cases": n, "summary": summary, "threads": doc.get("environment", {}).get("threads"), "memo": memo}


def _smoke_rows(opts: ScaleOptions, work: Path, env: dict[str, str], log: list[dict]) -> list[Row]:
    want = [r for r in ("overhead", "cached", "workers") if r in opts.only]
    try:
        cwd, suite = _smoke_workload(opts, work, env)
        help_text = runs.launch(["run", "--help"], cwd, env).stdout
        ratios: dict[str, list[float]] = {r: [] for r in want}
        errors: dict[str, str] = {}
        for rep in range(opts.repeats):
            tag = f"r{rep}"
            cold = _one_run(cwd, suite, runs.run_flags(help_text, work / f"reports-{tag}", work / f"cache-{tag}"),
                            1, env)
            log.append({"run": f"cold, 1 worker ({tag})", **cold})
            ratios.setdefault("overhead", []).append(cold["wall_s"] / cold["sum_case_s"])
            if "cached" in want:
                warm = _one_run(cwd, suite, runs.run_flags(help_text, work / f"reports-{tag}", work / f"cache-{tag}"),
                                1, env)
                log.append({"run": f"cached, 1 worker ({tag})", **warm})
                ratios["cached"].append(cold["wall_s"] / warm["wall_s"])
                if warm["summary"] != cold["summary"]:  # a cache that changes results makes the ratio moot
                    errors["cached"] = (f"the cached run's summary {warm['summary']} differs from the cold "
                                        f"{cold['summary']}")
            if "workers" in want:
                two = _one_run(cwd, suite, runs.run_flags(help_text, work / f"reports-{tag}w2",
                                                          work / f"cache-{tag}w2"), 2, env)
                log.append({"run": f"cold, 2 workers ({tag})", **two})
                ratios["workers"].append(cold["wall_s"] / two["wall_s"])
    except (RuntimeError, OSError, ZeroDivisionError) as exc:
        return [_row(r, opts, error=str(exc) or type(exc).__name__) for r in want]
    return [_row(r, opts, statistics.median(ratios[r]), _smoke_detail(r, log, " ".join(suite)), errors.get(r))
            for r in want]


def _smoke_detail(rid: str, log: list[dict], suite: str) -> str:
    def walls(prefix: str) -> str:
        return "/".join(f"{e['wall_s']:.1f}" for e in log if e["run"].startswith(prefix))

    cold = [e for e in log if e["run"].startswith("cold, 1")]
    if rid == "overhead":
        sums = "/".join(f"{e['sum_case_s']:.1f}" for e in cold)
        return f"{suite}: wall {walls('cold, 1')} s / Σ case time {sums} s, {cold[0]['cases']} cases"
    if rid == "cached":
        memo = "/".join(f"{e.get('memo', 0)}" for e in log if e["run"].startswith("cached"))
        return (f"cold {walls('cold, 1')} s / cached {walls('cached')} s "
                f"({memo} of {cold[0]['cases']} cases from the case memo)")
    return f"1 worker {walls('cold, 1')} s / 2 workers {walls('cold, 2')} s"


# ------------------------------------------------------------------------------ flat, compare, history
def _flat_rows(opts: ScaleOptions, work: Path, env: dict[str, str], log: list[dict]) -> list[Row]:
    n, window, _ = opts.sizes()
    try:
        project = _tiny(opts, work, env)
        help_text = runs.launch(["run", "--help"], project, env).stdout
        proc = runs.launch(["run", "--suite", "flat", "--workers", "1",
                            *runs.run_flags(help_text, work / "reports-flat", work / "cache-flat")],
                           project, env, watch=True)
        if proc.rc not in (0, 1):
            raise RuntimeError(proc.failure())
        events, clock = proc.events, "progress lines' arrival"
        landed = landed_times(work / "reports-flat")
        if landed is not None and len(landed) == len(events):  # the run's clock; RSS still sampled per line
            events, clock = [runs.Event(t, e.done, e.total, e.rss) for t, e in zip(landed, events)], "case records' mtimes"
        t1, t2, r1, r2 = window_ratios(events, window)
    except (RuntimeError, OSError, ValueError) as exc:
        return [_row("flat_time", opts, error=str(exc)), _row("flat_rss", opts, error=str(exc))]
    tail = proc.wall_s - proc.events[-1].t  # after the last case: group entries, report.json, views
    log.append({"run": f"flat, {n} cases", "args": proc.args, "rc": proc.rc, "wall_s": proc.wall_s,
                "maxrss": proc.maxrss, "per_case_first_s": t1, "per_case_last_s": t2, "driver_rss_first": r1,
                "driver_rss_last": r2, "after_last_case_s": tail})
    time_row = _row("flat_time", opts, t2 / t1, f"{len(proc.events)} cases: {t1 * 1e3:.1f} ms/case first {window}, "
                                                f"{t2 * 1e3:.1f} ms last {window} ({clock}); {tail:.1f} s after the last case")
    if r1 is None or r2 is None:
        return [time_row, _row("flat_rss", opts, error="the driver's RSS is unreadable (needs Linux /proc)")]
    return [time_row, _row("flat_rss", opts, r2 / r1, f"driver peak RSS {r1 / 2**20:.0f} MB first {window}, "
                                                      f"{r2 / 2**20:.0f} MB last {window}; the whole run's peak "
                                                      f"{proc.maxrss / 2**20:.0f} MB")]


def _compare_row(opts: ScaleOptions, work: Path, env: dict[str, str], log: list[dict]) -> Row:
    side = opts.sizes()[2]
    folder = work / "compare"
    folder.mkdir()
    try:
        base, cand = runs.write_pair(folder, side)
        proc = runs.launch(["compare", str(base), str(cand), "--max-pixels", "0", "-q"], folder, env,
                           keep_stdout=False)
    except OSError as exc:
        return _row("compare", opts, error=str(exc))
    if proc.rc not in (0, 1):
        return _row("compare", opts, error=proc.failure())
    copy = side * side * 3 * 4  # one float32 RGB image, bytes
    log.append({"run": f"compare {side}x{side}", "args": proc.args, "rc": proc.rc, "wall_s": proc.wall_s,
                "maxrss": proc.maxrss, "float32_copy_bytes": copy})
    return _row("compare", opts, proc.maxrss / copy,
                f"{side}x{side}: peak {proc.maxrss / 2**30:.2f} GiB in {proc.wall_s:.1f} s, exit {proc.rc}")


def _history_row(opts: ScaleOptions, work: Path) -> Row:
    """The nightly-history trend query (:func:`harness.run.history_bench.bench_history`): a synthetic
    year of nightlies of 1,000 cases (``--quick``: 20 of 50), then one slice of one case across every
    run, read with pyarrow (the engine every install has; DuckDB's time is in the detail)."""
    from harness.run.history_bench import bench_history

    folder = work / "history"
    folder.mkdir()
    days, cases = (20, 50) if opts.quick else (365, 1000)
    try:
        r = bench_history(folder, days, cases)
    except (RuntimeError, OSError, ValueError, KeyError) as exc:
        return _row("history", opts, error=f"{type(exc).__name__}: {exc}")
    duck = "duckdb not installed" if r["query_duckdb_s"] is None else f"duckdb {r['query_duckdb_s']:.2f} s"
    detail = (f"{days} nightlies x {cases} cases: {r['history_bytes'] / 1e6:,.0f} MB on disk, "
              f"{r['history_rows']:,} rows; pyarrow {r['query_pyarrow_s']:.2f} s, {duck}")
    return _row("history", opts, float(r["query_pyarrow_s"]), detail)


def _overlap_row(opts: ScaleOptions) -> Row:
    """GPU and CPU overlap (:func:`harness.run.pipelined.bench_overlap`): a stage phase that sleeps like
    a GPU stage in one stage worker, measuring in two workers; wall / (generation + measuring), about 0.5
    when the two overlap and their times are equal, 1 or more when measuring waits for generation."""
    from harness.run.pipelined import bench_overlap

    n, gen_s, measure_s = (8, 0.2, 0.4) if opts.quick else (24, 0.3, 0.6)
    try:
        r = bench_overlap(n, gen_s, measure_s, workers=2)
    except (RuntimeError, OSError, ValueError) as exc:
        return _row("overlap", opts, error=f"{type(exc).__name__}: {exc}")
    detail = (f"{n} cases: generation {r['generation']:.1f} s, measuring {r['measuring']:.1f} s (2 workers), "
              f"wall {r['wall']:.1f} s = {r['vs_ideal']:.2f} x their max")
    return _row("overlap", opts, float(r["ratio"]), detail)


# ------------------------------------------------------------------------------ the command
def _machine() -> dict[str, Any]:
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return {"cores": cores, "load_start": [round(x, 2) for x in load], "platform": platform.platform(),
            "python": platform.python_version()}


def format_rows(rows: list[Row]) -> list[str]:
    lines = [f"  {'row':10s}{'measured':>14s}  {'target':13s}{'verdict':8s} detail"]
    for r in rows:
        unit = _UNITS[r.id]
        value = "-" if r.value is None else f"{r.value:.2f}{unit}"
        lines.append(f"  {r.id:10s}{value:>14s}  {r.op + ' ' + format(r.target, 'g') + unit:13s}{r.verdict:8s} "
                     f"{r.error or r.detail}")
    return lines


def _measure(opts: ScaleOptions, work: Path, env: dict[str, str], log: list[dict]) -> list[Row]:
    rows: list[Row] = []
    if any(r in opts.only for r in ("overhead", "cached", "workers")):
        rows += _smoke_rows(opts, work, env, log)
    if "flat" in opts.only:
        rows += _flat_rows(opts, work, env, log)
    if "compare" in opts.only:
        rows.append(_compare_row(opts, work, env, log))
    if "history" in opts.only:
        rows.append(_history_row(opts, work))
    if "overlap" in opts.only:
        rows.append(_overlap_row(opts))
    return rows


def run_scale_bench(opts: ScaleOptions, out: Callable[[str], Any] = print) -> int:
    """Measure the selected rows, print the table (and ``--json``); 0 when every row meets its target."""
    machine = _machine()
    n, window, side = opts.sizes()
    out(f"harness bench --scale{' --quick' if opts.quick else ''}: {machine['cores']} cores, load average "
        f"{' '.join(map(str, machine['load_start']))} at start, threads={opts.threads}, "
        f"CLI: {' '.join(runs.harness_command())}")
    if machine["load_start"][0] > 0.5 * machine["cores"]:
        out(f"  WARNING: load {machine['load_start'][0]} on {machine['cores']} cores: other work shares the "
            f"machine, so wall-time ratios are noisy (rerun on an idle machine, or with --repeats)")
    env = runs.child_env(opts.threads)
    log: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="harness-bench-scale-", dir=opts.workdir) as tmp:
        rows = _measure(opts, Path(tmp), env, log)
    machine["load_end"] = [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None
    for line in format_rows(rows):
        out(line)
    missed = [r.id for r in rows if r.verdict in ("MISSED", "ERROR")]
    out(f"  load average at the end: {' '.join(map(str, machine['load_end'] or []))}; "
        + (f"MISSED: {', '.join(missed)}" if missed else "every target met"))
    if opts.json_path is not None:
        doc = {"quick": opts.quick, "machine": machine, "threads": opts.threads, "cli": runs.harness_command(),
               "sizes": {"cases": n, "window": window, "compare_px": side, "repeats": opts.repeats},
               "rows": [{**asdict(r), "verdict": r.verdict} for r in rows], "runs": log, "ok": not missed}
        from harness.fsio import atomic_write_text

        opts.json_path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(opts.json_path, json.dumps(doc, indent=2) + "\n")
    return 1 if missed else 0
