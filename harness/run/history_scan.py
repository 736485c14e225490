"""Many slices of many cases across the runs of a history (what ``harness trend`` reads).

:func:`harness.run.history.trend` answers one slice of one case; a trend view asks for every
slice matching a pattern, of every case matching ``-k``, over a window of runs.  Pushing such a
predicate down as a pyarrow expression would decode every column of every night, so the scan
works on the files' own order instead:

1. :func:`run_files` lists the runs of a suite from the file names and the Parquet footers only
   (``run_id`` and ``created`` have min/max statistics: one footer read per night), so
   ``--since`` and ``--last`` drop whole files before any column is read.
2. Per night, the ``case`` column is read dictionary-encoded and the case predicate is asked once
   per distinct id (cached across nights); only the row groups holding a matching case (files
   are sorted by case) have their metric, slice and value columns read, the metric and slice
   predicates again once per distinct string.

Files are read on a few threads (pyarrow releases the GIL while decoding).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from harness.errors import ConfigError, InputError
from harness.naming import check_name

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import pyarrow as pa

__all__ = ["RunFile", "suites", "run_files", "scan", "SCAN_COLUMNS", "TooMany"]

#: What :func:`scan` returns per matching row (the run's id and time come from :class:`RunFile`).
SCAN_COLUMNS = ("run_id", "created", "case", "metric", "slice", "value", "baseline", "tolerance", "status")
_KEYS = ("case", "metric", "slice")
_VALUES = ("value", "baseline", "tolerance", "status")
Match = Callable[[str], bool]
_THREADS = min(8, os.cpu_count() or 1)


class TooMany(InputError):
    """The selection holds more rows than the caller allows (a view needs a narrower one)."""


@dataclass(frozen=True)
class RunFile:
    """One run in the history: its file, id and creation time (UTC), from the file's footer."""

    path: Path
    run_id: str
    created: datetime


def suites(history_root: str | os.PathLike[str]) -> list[str]:
    """The suites a history holds (its ``suite=<name>`` folders), sorted; ConfigError when the
    folder is not there."""
    root = Path(history_root)
    if not root.is_dir():
        raise ConfigError(f"history {root}: no such folder")
    return sorted(p.name.removeprefix("suite=") for p in root.glob("suite=*") if p.is_dir())


def run_files(history_root: str | os.PathLike[str], suite: str, *, since: str | date | datetime | None = None,
              last: int | None = None) -> list[RunFile]:
    """The runs of ``suite``, oldest first (by ``created``, then run id): those of ``since``'s UTC
    day or later (a datetime also drops earlier runs of its day), then the ``last`` N of them.

    An unreadable file is an InputError naming it: a trend must not silently skip a night."""
    from harness.run.history import parse_since

    root = Path(history_root)
    try:
        check_name("suite", suite)
    except ValueError as exc:  # the name becomes a path part: refused as the option it came from
        raise ConfigError(f"--suite: {exc}") from None
    have = suites(root)
    if suite not in have:
        raise ConfigError(f"history {root}: no runs of suite {suite!r} (it has: {', '.join(have) or 'none'})")
    if last is not None and last < 1:
        raise ConfigError(f"--last {last}: expected a positive number of runs")
    day, moment = parse_since(since)
    paths = [p for p in (root / f"suite={suite}").glob("date=*/*.parquet") if not p.name.startswith(".")
             and (day is None or p.parent.name.removeprefix("date=") >= day)]
    with ThreadPoolExecutor(max_workers=_THREADS) as pool:
        # a run that kept no rows has nothing to draw (and no time to place it by): left out
        runs = sorted((r for r in pool.map(_run_file, paths) if r is not None), key=lambda r: (r.created, r.run_id))
    if moment is not None:
        runs = [r for r in runs if r.created >= moment]
    return runs[-last:] if last else runs


def _run_file(path: Path) -> RunFile | None:
    """A run's id and time from the footer's statistics (read from the first row without them);
    None for a file without rows."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        meta = pq.read_metadata(path)
        schema = meta.schema.to_arrow_schema()
        missing = [c for c in ("run_id", "created", *_KEYS, *_VALUES) if c not in schema.names]
        if missing:
            raise InputError(f"history {path}: column {missing[0]!r} missing: not a history file")
        if meta.num_rows == 0:
            return None
        stats = [meta.row_group(0).column(schema.get_field_index(c)).statistics for c in ("run_id", "created")]
        kind = schema.field("created").type
        if all(s is not None and s.has_min_max for s in stats) and pa.types.is_timestamp(kind):
            # the raw integer: pyarrow's own conversion of a timestamp statistic costs ~9 ms a file
            run_id, created = stats[0].min, pa.scalar(stats[1].min_raw, kind).as_py()
        else:
            first = pq.ParquetFile(path).read(columns=["run_id", "created"]).slice(0, 1).to_pylist()[0]
            run_id, created = first["run_id"], first["created"]
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"history {path}: not a readable Parquet file ({exc})") from None
    if not isinstance(created, datetime) or created.tzinfo is None:
        raise InputError(f"history {path}: no run time (column 'created' is empty or not UTC)")
    return RunFile(path, str(run_id), created)


def scan(runs: list[RunFile], *, case: Match | None = None, metric: Match | None = None,
         slice: Match | None = None, max_rows: int | None = None) -> "pa.Table":
    """The rows of ``runs`` whose case, metric and slice satisfy the predicates (None: any), as
    :data:`SCAN_COLUMNS` (strings plain, ``created`` a UTC timestamp), in ``runs`` order.

    ``max_rows``: raise :class:`TooMany` (exit 2) as soon as more rows than that match, before
    their values are decoded."""
    import pyarrow as pa

    matchers = {"case": _Cached(case), "metric": _Cached(metric), "slice": _Cached(slice)}
    budget = [max_rows if max_rows is not None else -1]
    with ThreadPoolExecutor(max_workers=_THREADS) as pool:
        parts = list(pool.map(lambda r: _scan_file(r, matchers, budget), runs))
    schema = pa.schema([("run_id", pa.string()), ("created", pa.timestamp("us", tz="UTC")),
                        *((k, pa.string()) for k in _KEYS), ("value", pa.float64()), ("baseline", pa.float64()),
                        ("tolerance", pa.float64()), ("status", pa.string())])
    tables = [t.cast(schema) for t in parts if t is not None and t.num_rows]
    return pa.concat_tables(tables) if tables else schema.empty_table()


class _Cached:
    """A predicate over strings, asked once per distinct string (dictionaries repeat every night)."""

    def __init__(self, match: Match | None) -> None:
        self.match, self.seen = match, {}

    def over(self, column: "pa.ChunkedArray") -> "np.ndarray":
        """One bool per row of a dictionary-encoded column."""
        import numpy as np

        out = []
        for chunk in column.chunks:
            words = chunk.dictionary.to_pylist()
            ok = np.fromiter((self._ask(w) for w in words), bool, len(words))
            out.append(ok[chunk.indices.to_numpy(zero_copy_only=False)] if len(words) else np.zeros(len(chunk), bool))
        return np.concatenate(out) if out else np.zeros(0, bool)

    def _ask(self, word: str) -> bool:
        hit = self.seen.get(word)
        if hit is None:  # a race between threads asks twice, never answers wrong
            hit = self.seen[word] = bool(self.match(word))
        return hit


def _scan_file(run: RunFile, matchers: dict[str, _Cached], budget: list[int]) -> "pa.Table | None":
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(run.path, read_dictionary=list(_KEYS))
        sizes = np.array([pf.metadata.row_group(g).num_rows for g in range(pf.num_row_groups)], np.int64)
        starts = np.concatenate([[0], np.cumsum(sizes)])
        groups = list(range(pf.num_row_groups))
        if matchers["case"].match is not None:
            ok = matchers["case"].over(pf.read(columns=["case"]).column(0))
            groups = [g for g in groups if ok[starts[g]:starts[g + 1]].any()]
            case_ok = np.concatenate([ok[starts[g]:starts[g + 1]] for g in groups]) if groups else None
        if not groups:
            return None
        table = pf.read_row_groups(groups, columns=list(_KEYS + _VALUES))
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"history {run.path}: not a readable Parquet file ({exc})") from None
    mask = np.ones(table.num_rows, bool) if matchers["case"].match is None else case_ok
    for key in ("metric", "slice"):
        if matchers[key].match is not None:
            mask &= matchers[key].over(table[key])
    n = int(mask.sum())
    if not n:
        return None
    if budget[0] >= 0:
        budget[0] -= n
        if budget[0] < 0:
            raise TooMany(f"more than the allowed rows match (the run {run.run_id} alone holds {n:,})")
    table = table.filter(pa.array(mask)).select(list(_KEYS + _VALUES))
    keys = [pa.chunked_array([c.cast(pa.string()) for c in table[k].chunks], pa.string()) for k in _KEYS]
    head = [pa.repeat(pa.scalar(run.run_id, pa.string()), n),
            pa.repeat(pa.scalar(run.created, pa.timestamp("us", tz="UTC")), n)]
    return pa.table(head + keys + [table[k] for k in _VALUES], names=list(SCAN_COLUMNS))
