"""A synthetic year of nightlies for the history: its size on disk, append time, trend query time.

``python -m harness.run.history_bench [--days 365] [--cases 1000] [--dir DIR]`` prints them;
``harness bench --scale`` calls :func:`bench_history`.

A synthetic case has the slice mix of a real smoke case (256² stages, measured in 2026-12):
116 non-spatial slices and 18 spatial families (16 of 15x15 tiles, 2 of 31x31 sub-windows),
5,638 checks.  Baselines are log-normal, tolerances 5 % of the baseline, nightly noise 1 %;
one case in 200 drifts (some of its tiles fail in the last third of a 60-day rebake cycle),
so the history holds failing spatial checks as a real one does.  The kept rows of a night
are computed in numpy with the keep rule's semantics (tested against
:func:`~harness.run.history.keep_for_trend` on the full night); the last night of the year is
a real run folder appended with :func:`~harness.run.history.append_run`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["bench_history", "synthetic_night", "night_header", "template", "main"]

_CH, _REGIONS, _BANDS = ("Y", "Cb", "Cr"), ("inside", "ring", "outside"), ("low", "mid", "high", "top")
_NOISE, _TOL, _DRIFT, _CYCLE = 0.01, 0.05, 0.075, 60
START = datetime(2026, 1, 1, 2, 0, tzinfo=timezone.utc)


def _nonspatial() -> list[tuple[str, str]]:
    out = []
    for m in ("contrast", "mean", "detail"):
        out += [(m, f"ch={c}") for c in _CH] + [(m, f"region={r} ch={c}") for r in _REGIONS for c in _CH]
    for m in ("hue", "chroma"):
        out += [(m, "all")] + [(m, f"region={r}") for r in _REGIONS]
    out += [("band_power", f"band={b} ch={c}") for b in _BANDS for c in _CH]
    out += [("band_power", f"band={b} region={r} ch=Y") for b in _BANDS for r in _REGIONS]
    out += [("detail", f"band={b} ch=Y") for b in _BANDS] + [("periodic", f"region={r}") for r in _REGIONS]
    out += [("spectrum", f"ch=Y f={k}") for k in range(11)] + [("seam_profile", f"region=ring ch=Y d={d}")
                                                                 for d in range(8)]
    out += [("blockiness", f"ch={c} grid={g}") for c in _CH for g in (8, 16)]
    out += [("stage_effect", f"stage={s} effect=changed") for s in ("generate", "detect", "mask", "inpaint",
                                                                    "denoise", "upscale")]
    out += [("expect", f"stage={s}") for s in ("mask", "inpaint")]
    return out + [(m, "all") for m in ("noise", "seam_grad", "seam_step", "detect_precision", "detect_recall",
                                       "mask_coverage", "mask_rejected", "anchor_clipped_px")]


def _families() -> list[tuple[str, str, int]]:
    """(metric, slice with ``{}`` for the spatial word, grid side)."""
    out = [(m, f"tile={{}} ch={c}", 15) for m in ("contrast", "mean") for c in _CH]
    out += [("detail", "tile={} ch=Y", 15), ("detail", "tile={} ch=Cb", 15), ("chroma", "tile={}", 15),
            ("hue", "tile={}", 15)]
    out += [("band_power", f"band={b} tile={{}} ch=Y", 15) for b in _BANDS]
    out += [("blockiness", f"tile={{}} ch=Y grid={g}", 15) for g in (8, 16)]
    return out + [("band_power", f"band={b} ch=Y sub={{}}", 31) for b in ("high", "top")]


@dataclass(frozen=True)
class Template:
    """One case's checks: metric and slice per column; ``family[i]`` -1 for a non-spatial check."""

    metric: np.ndarray
    slice: np.ndarray
    family: np.ndarray
    tile: np.ndarray  # the tile name of a ``tile=`` check (None otherwise)
    family_metric: np.ndarray
    family_slice: np.ndarray  # the family row's slice (``tile=worst`` / ``sub=worst``)
    starts: np.ndarray  # first column of each family (families are contiguous)


@lru_cache(maxsize=1)
def template() -> Template:
    metric, slc, fam, tile = [], [], [], []
    for m, s in _nonspatial():
        metric.append(m), slc.append(s), fam.append(-1), tile.append(None)
    fm, fs, starts = [], [], []
    for i, (m, s, side) in enumerate(_families()):
        starts.append(len(metric))
        fm.append(m)
        fs.append(s.format("worst"))
        for r in range(side):
            for c in range(side):
                name = f"r{r}c{c}"
                metric.append(m), slc.append(s.format(name)), fam.append(i)
                tile.append(name if "tile=" in s else None)
    obj = lambda xs: np.array(xs, dtype=object)  # noqa: E731
    return Template(obj(metric), obj(slc), np.array(fam), obj(tile), obj(fm), obj(fs), np.array(starts))


def _case_names(cases: int) -> tuple[list[str], list[str], list[str]]:
    vec = [f"vec{c // 4:04d}" for c in range(cases)]
    pipe = [f"p{c % 4}" for c in range(cases)]
    return [f"{v}/{p}/s1" for v, p in zip(vec, pipe)], vec, pipe


def _fixed(cases: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per case and check: baseline, drift share (0 for a stable case); and which cases drift."""
    n = len(template().metric)
    rng = np.random.default_rng(seed)
    baseline = rng.lognormal(0.0, 1.0, size=(cases, n))
    drifting = np.zeros(cases, bool)
    drifting[:: 200] = True
    share = rng.uniform(size=(cases, n)) * drifting[:, None]
    return baseline, share, drifting


def _values(cases: int, day: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(value, baseline, tolerance, ratio |delta| / tolerance), each (cases, checks)."""
    baseline, share, _ = _fixed_cached(cases, seed)
    noise = np.random.default_rng([seed, day]).normal(0.0, _NOISE, size=baseline.shape)
    value = baseline * (1.0 + noise + _DRIFT * share * (day % _CYCLE) / _CYCLE)
    tol = _TOL * baseline
    return value, baseline, tol, np.abs(value - baseline) / tol


@lru_cache(maxsize=1)
def _fixed_cached(cases: int, seed: int):
    return _fixed(cases, seed)


def night_header(day: int, suite: str = "nightly") -> dict[str, Any]:
    created = START + timedelta(days=day)
    return {"run_id": f"{created:%Y%m%dT%H%M%S}-{suite}", "suite": suite, "created": created,
            "date": created.date().isoformat(), "git_sha": f"{day:040x}", "harness_version": "0.1.0",
            "complete": True}


def synthetic_night(cases: int, day: int, *, full: bool, seed: int = 0) -> "Any":
    """Night ``day``'s checks as a pyarrow Table: every check (``full``, read_checks' columns) or
    the rows the keep rule keeps (with ``n_slices``/``n_failed``)."""
    t = template()
    value, baseline, tol, ratio = _values(cases, day, seed)
    n = len(t.metric)
    if full:
        rows = np.arange(cases * n)
        return _table(cases, rows // n, rows % n, value.ravel(), baseline.ravel(), tol.ravel(), None, None, None)
    ns = np.flatnonzero(t.family < 0)
    spatial = t.family >= 0
    c_fail, k_fail = np.nonzero((ratio > 1.0) & spatial[None, :])
    worst_col = np.stack([t.starts[i] + np.argmax(ratio[:, t.starts[i]:t.starts[i] + _size(t, i)], axis=1)
                          for i in range(len(t.starts))], axis=1)  # (cases, families)
    failed = np.stack([(ratio[:, t.starts[i]:t.starts[i] + _size(t, i)] > 1.0).sum(axis=1)
                       for i in range(len(t.starts))], axis=1)
    c_ns = np.repeat(np.arange(cases), len(ns))
    k_ns = np.tile(ns, cases)
    c_w = np.repeat(np.arange(cases), len(t.starts))
    k_w = worst_col.ravel()
    case_idx = np.concatenate([c_ns, c_fail, c_w])
    col = np.concatenate([k_ns, k_fail, k_w])
    n_slices = np.concatenate([np.ones(len(c_ns) + len(c_fail), np.int32),
                               np.tile([_size(t, i) for i in range(len(t.starts))], cases).astype(np.int32)])
    n_failed = np.concatenate([ratio[c_ns, k_ns] > 1.0, np.ones(len(c_fail), bool), failed.ravel()]).astype(np.int32)
    family_row = np.concatenate([np.zeros(len(c_ns) + len(c_fail), bool), np.ones(len(c_w), bool)])
    return _table(cases, case_idx, col, value[case_idx, col], baseline[case_idx, col], tol[case_idx, col],
                  n_slices, n_failed, family_row)


def _size(t: Template, i: int) -> int:
    return int((t.starts[i + 1] if i + 1 < len(t.starts) else len(t.metric)) - t.starts[i])


def _table(cases, case_idx, col, value, baseline, tol, n_slices, n_failed, family_row) -> "Any":
    import pyarrow as pa
    import pyarrow.compute as pc

    from harness.run.history import history_schema, read_checks_columns

    t = template()
    names, vec, pipe = _case_names(cases)
    slices = t.slice[col]
    if family_row is not None:
        slices = np.where(family_row, t.family_slice[np.maximum(t.family[col], 0)], slices)
    strings = lambda idx, words: pa.DictionaryArray.from_arrays(  # noqa: E731
        pa.array(idx, pa.int32()), pa.array(words, pa.string())).cast(pa.string())
    status = np.where(np.abs(value - baseline) > tol, "fail", "pass").astype(object)
    slice_arr = pa.array(slices, pa.string())
    cols = {"case": strings(case_idx, names), "vector": strings(case_idx, vec), "pipeline": strings(case_idx, pipe),
            "seed": pa.array(np.ones(len(col), np.int64)), "metric": pa.array(t.metric[col], pa.string()),
            "slice": slice_arr, "tile": pa.array(t.tile[col], pa.string()),
            "value": pa.array(value), "baseline": pa.array(baseline), "delta": pa.array(value - baseline),
            "tolerance": pa.array(tol), "status": pa.array(status, pa.string())}
    for part, key in (("band", "band"), ("region", "region"), ("channel", "ch"), ("stage", "stage")):
        cols[part] = pc.struct_field(pc.extract_regex(slice_arr, rf"(?:^| ){key}=(?P<v>[^ ]*)"), "v")
    schema = history_schema()
    out = {}
    for name in read_checks_columns():
        out[name] = cols[name] if name in cols else pa.nulls(len(col), schema.field(name).type)
    if n_slices is not None:
        out["n_slices"], out["n_failed"] = pa.array(n_slices, pa.int32()), pa.array(n_failed, pa.int32())
    return pa.table(out).cast(pa.schema([schema.field(k) for k in out]))


def _run_folder(parent: Path, cases: int, day: int) -> Path:
    """A real run folder for night ``day``: report.json (complete, its cases with their check
    counts) and its full, compacted checks.parquet (the cases' row counts in its footer)."""
    import json

    import pyarrow.compute as pc

    from harness.fsio import atomic_write_bytes
    from harness.report.check_parts import CHECKS_FILE, META_KEY
    from harness.report.checks_table import parquet_bytes
    from harness.report.schema import CaseResult, Report

    head = night_header(day)
    run_dir = parent / head["run_id"]
    run_dir.mkdir(parents=True, exist_ok=True)
    table = synthetic_night(cases, day, full=True)
    vc = pc.value_counts(table.filter(pc.equal(table["status"], "fail"))["case"])
    failed = dict(zip(vc.field("values").to_pylist(), vc.field("counts").to_pylist()))
    n = len(template().metric)
    results = [CaseResult(cid, v, p, 1, "fail" if failed.get(cid) else "pass", n_checks=n, n_failed=failed.get(cid, 0))
               for cid, v, p in zip(*_case_names(cases))]
    env = {"git_sha": head["git_sha"], "versions": {"harness": head["harness_version"]}}
    Report(head["run_id"], head["suite"], head["created"].isoformat(), env, results, complete=True).write(run_dir)
    meta = {META_KEY: json.dumps({r.id: n for r in results}).encode()}
    atomic_write_bytes(run_dir / CHECKS_FILE, parquet_bytes(table, meta))
    return run_dir


def _folder_bytes(root: Path) -> tuple[int, int]:
    files = [p for p in root.rglob("*.parquet")]
    return sum(p.stat().st_size for p in files), len(files)


def _time_queries(root: Path, targets: list[tuple[str, str, str]], engine: str, repeats: int) -> dict[str, Any]:
    """Best-of and median seconds of the trend query over ``targets`` (one slice of one case each)."""
    from harness.run.history import trend

    times, cpu, frames = [], [], []
    for case, metric, slc in targets:
        for _ in range(repeats):
            t0, c0 = time.perf_counter(), _cpu()
            frame = trend(root, "nightly", case, metric, slc, engine=engine)
            times.append(time.perf_counter() - t0)
            cpu.append(_cpu() - c0)
        frames.append(frame)
    return {"median_s": statistics.median(times), "max_s": max(times), "cpu_s": statistics.median(cpu),
            "frames": frames}


def _cpu() -> float:
    """CPU seconds of this process, all threads: the work, whatever else the machine runs."""
    import resource

    use = resource.getrusage(resource.RUSAGE_SELF)
    return use.ru_utime + use.ru_stime


def bench_history(tmpdir: str | Path, days: int = 365, cases: int = 1000, *, repeats: int = 3) -> dict[str, Any]:
    """Write ``days`` nightlies of ``cases`` cases under ``tmpdir`` and measure (see the module doc).

    Returns: ``history_bytes``/``files``/``history_rows`` (the history on disk), ``rows_per_run``
    and ``checks_per_run`` (kept rows of how many checks a night), ``run_bytes`` (one night),
    ``append_s`` (append_run of the last night from its run folder, keep=trend), ``append_all_s``
    and ``run_bytes_all`` (the same night with keep=all), ``query_pyarrow_s`` /
    ``query_duckdb_s`` (median wall seconds of the trend query, ``*_max_s``, ``*_cpu_s``; duckdb
    ones None without duckdb), ``trend_rows``, ``same`` (both engines gave equal frames; None
    without duckdb), ``load_average``."""
    from harness.run.history import append_run, write_run

    tmp = Path(tmpdir)
    root, root_all = tmp / "history", tmp / "history-all"
    t0 = time.perf_counter()
    rows = 0
    for day in range(days - 1):
        rows += write_run(synthetic_night(cases, day, full=False), night_header(day), root).rows
    write_s = (time.perf_counter() - t0) / max(days - 1, 1)
    run_dir = _run_folder(tmp / "runs", cases, days - 1)
    t0 = time.perf_counter()
    last = append_run(run_dir, root)
    append_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    full = append_run(run_dir, root_all, keep="all")
    append_all_s = time.perf_counter() - t0
    size, files = _folder_bytes(root)
    names = _case_names(cases)[0]
    targets = [(names[cases // 3], "band_power", "band=top tile=worst ch=Y"), (names[-1], "mean", "region=ring ch=Cb"),
               (names[0], "contrast", "tile=worst ch=Y")]
    result: dict[str, Any] = {
        "days": days, "cases": cases, "checks_per_run": full.checks, "rows_per_run": last.rows,
        "history_rows": rows + last.rows, "history_bytes": size, "files": files,
        "write_s_per_run": write_s, "append_s": append_s, "run_bytes": last.bytes,
        "append_all_s": append_all_s, "run_bytes_all": full.bytes, "year_bytes_all_estimate": full.bytes * days}
    pa_q = _time_queries(root, targets, "pyarrow", repeats)
    result.update(query_pyarrow_s=pa_q["median_s"], query_pyarrow_max_s=pa_q["max_s"],
                  query_pyarrow_cpu_s=pa_q["cpu_s"], trend_rows=len(pa_q["frames"][0]))
    try:
        import duckdb  # noqa: F401
    except ImportError:
        result.update(query_duckdb_s=None, query_duckdb_max_s=None, query_duckdb_cpu_s=None, same=None)
    else:
        dk = _time_queries(root, targets, "duckdb", repeats)
        result.update(query_duckdb_s=dk["median_s"], query_duckdb_max_s=dk["max_s"], query_duckdb_cpu_s=dk["cpu_s"],
                      same=all(a.equals(b) for a, b in zip(pa_q["frames"], dk["frames"])))
    result["load_average"] = os.getloadavg()[0]  # timings are wall clock on a machine others share
    return result


def _print(r: dict[str, Any]) -> None:
    mb = lambda b: f"{b / 1e6:,.1f} MB"  # noqa: E731
    duck = "n/a (duckdb not installed)" if r["query_duckdb_s"] is None else \
        f"{r['query_duckdb_s']:.3f} s median, {r['query_duckdb_max_s']:.3f} s max ({r['query_duckdb_cpu_s']:.3f} s CPU)"
    print(f"history of {r['days']} nightlies x {r['cases']} cases ({r['checks_per_run']:,} checks a night)")
    print(f"  kept rows a night (keep=trend): {r['rows_per_run']:,} ({r['checks_per_run'] / r['rows_per_run']:.0f}x "
          f"fewer than all checks)")
    print(f"  size on disk: {mb(r['history_bytes'])} in {r['files']} files ({r['history_rows']:,} rows); "
          f"one night {mb(r['run_bytes'])}")
    print(f"  keep=all instead: one night {mb(r['run_bytes_all'])}, "
          f"{r['days']} nights ~{mb(r['year_bytes_all_estimate'])}")
    print(f"  append one run from its folder: {r['append_s']:.2f} s (keep=trend), {r['append_all_s']:.2f} s "
          f"(keep=all); synthetic nights written at {r['write_s_per_run']:.2f} s each")
    print(f"  trend query ({r['trend_rows']} runs): pyarrow {r['query_pyarrow_s']:.3f} s median, "
          f"{r['query_pyarrow_max_s']:.3f} s max ({r['query_pyarrow_cpu_s']:.3f} s CPU); duckdb {duck}; "
          f"same rows: {r['same']}")
    print(f"  (wall-clock times; load average {r['load_average']:.1f} at the end)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m harness.run.history_bench", description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--cases", type=int, default=1000)
    ap.add_argument("--dir", help="keep the history here (default: a temporary folder, removed)")
    args = ap.parse_args(argv)
    if args.dir:
        _print(bench_history(args.dir, args.days, args.cases))
        return 0
    with tempfile.TemporaryDirectory(prefix="harness-history-") as tmp:
        _print(bench_history(tmp, args.days, args.cases))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
