"""Nightly history: each run's checks appended to one Parquet dataset, queried for trends.

Layout (hive partitioning; the partition values live in the path, not in the files)::

    <history>/suite=<suite>/date=<YYYY-MM-DD>/<run_id>.parquet

``date`` is the UTC day of the run's ``created``.  A file is named by its run id and written
atomically (temporary file + rename), so appending a run twice keeps one copy and a reader
never sees half a file (readers skip the ``.``-prefixed temporary names).

What is kept (``keep="trend"``, the default): a night of 1,000 cases is ~5.6M checks, ~98 % of
them per-tile (``tile=``) or per-sub-window (``sub=``) slices.  Kept in full: every other slice,
and every spatial check that is ``fail`` or ``error``.  The rest of each spatial family
(case, metric, slice with its ``tile=``/``sub=`` word replaced by ``tile=worst``/``sub=worst``)
becomes one row: the family's worst check by (status, |delta| / tolerance), renamed to the
family slice, with ``n_slices`` (how many checks it stands for, 1 for a kept check) and
``n_failed``; its ``tile`` column names the tile that was worst that night.  A trend answers
for every kept slice, the family rows included: "is the worst tile of this family drifting?".
Measured on a synthetic year of 1,000-case nightlies (``python -m harness.run.history_bench``):
134k rows a night instead of 5.6M, 4.2 MB a night, 1.6 GB a year; ``keep="all"`` keeps every
check at 189 MB a night, ~69 GB a year.

Files are zstd-compressed, strings dictionary-encoded, floats byte-stream-split, rows sorted by
(case, metric, slice) in row groups of :data:`ROW_GROUP_ROWS` with min/max statistics on the
sort columns, so a trend query decodes one row group per night.  pyarrow is needed; DuckDB
(the ``history`` extra) is an optional second query engine.  ``harness trend`` reads many series
at once through :mod:`harness.run.history_scan`.
"""

from __future__ import annotations

import io
import os
import re
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.errors import ConfigError, InputError
from harness.naming import check_name
from harness.status import GATING, STATUSES, rank

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    import pyarrow as pa

__all__ = ["append_run", "trend", "Appended", "KEEP", "TREND_COLUMNS", "ROW_GROUP_ROWS", "run_file",
           "history_schema", "parse_since", "read_checks_columns", "keep_for_trend", "write_run"]

KEEP = ("trend", "all")
TREND_COLUMNS = ("run_id", "created", "value", "baseline", "tolerance", "status")
#: Rows per row group: a (case, metric, slice) lookup decodes one row group per night (~1/16 of a
#: night of 1,000 cases); smaller groups grow the footer faster than they save (measured: 8,192 and
#: 4,096 tie, 16,384 and 2,048 cost ~30 % more CPU per query).
ROW_GROUP_ROWS = 8_192
_RUN_COLUMNS = ("run_id", "created", "git_sha", "harness_version", "complete")
_SPATIAL = r"(^| )(tile|sub)=[^ ]*"
_STRINGS = ("run_id", "git_sha", "harness_version", "case", "vector", "pipeline", "metric", "slice", "band",
            "tile", "region", "channel", "stage", "status", "note")
# measured values: byte-stream-split before zstd packs them ~5 % smaller than plain (they are ~95 % of a file)
_FLOATS = ("value", "baseline", "delta", "tolerance")
_SORT = [("case", "ascending"), ("metric", "ascending"), ("slice", "ascending")]
# min/max statistics only where they prune: the sort columns (and what follows them) and the run's
_STATS = ("run_id", "created", "case", "vector", "pipeline", "metric", "slice")


def history_schema() -> "pa.Schema":
    """The columns of one history file: run columns, then the checks.parquet columns (BRIEF14
    shared decision 1), then ``n_slices``/``n_failed`` (what a family row stands for)."""
    import pyarrow as pa

    s, f = pa.string(), pa.float64()
    return pa.schema([
        ("run_id", s), ("created", pa.timestamp("us", tz="UTC")), ("git_sha", s), ("harness_version", s),
        ("complete", pa.bool_()), ("case", s), ("vector", s), ("pipeline", s), ("seed", pa.int64()),
        ("metric", s), ("slice", s), ("band", s), ("tile", s), ("region", s), ("channel", s), ("stage", s),
        ("value", f), ("baseline", f), ("delta", f), ("tolerance", f), ("status", s),
        ("box", pa.list_(pa.int32(), 4)), ("note", s), ("n_slices", pa.int32()), ("n_failed", pa.int32()),
    ])


@dataclass(frozen=True)
class Appended:
    """One appended run: its file, the rows kept of how many checks, the file's size in bytes."""

    path: Path
    rows: int
    checks: int
    bytes: int
    replaced: bool  # a copy of this run was there already (it is overwritten, never doubled)


def run_file(history_root: str | os.PathLike[str], suite: str, day: str, run_id: str) -> Path:
    """``<history>/suite=<suite>/date=<day>/<run_id>.parquet`` (names checked: they become paths)."""
    check_name("suite", suite)
    if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*", run_id):
        raise InputError(f"run_id {run_id!r}: not usable as a file name")
    return Path(history_root) / f"suite={suite}" / f"date={day}" / f"{run_id}.parquet"


def append_run(run_dir: str | os.PathLike[str], history_root: str | os.PathLike[str], *, keep: str = "trend",
               allow_incomplete: bool = False, report: Any = None) -> Appended:
    """Append the checks of the run at ``run_dir`` (its report.json and checks.parquet) to the history.

    ``report``: the run's :class:`~harness.report.schema.Report` when the caller holds it (not
    read again).  An incomplete run is refused (InputError, exit 2) unless ``allow_incomplete``;
    its rows then carry ``complete = false``.  Idempotent: the file is named by the run id.  The
    checks are read as every view reads them (:func:`harness.report.checks_table.read_checks`:
    checks.parquet, the parts a killed run left, or a version-1 report.json)."""
    from harness.report.checks_table import read_checks
    from harness.report.schema import load_report

    if keep not in KEEP:
        raise ConfigError(f"keep {keep!r}: expected one of {', '.join(KEEP)}")
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise ConfigError("the history needs pyarrow: pip install 'image-harness[parquet]'") from None
    run_dir = Path(run_dir)
    if report is None:
        if not (run_dir / "report.json").is_file():
            raise InputError(f"{run_dir}: not a run folder (no report.json)")
        report = load_report(run_dir)
    if not report.complete and not allow_incomplete:
        raise InputError(f"{run_dir}: the run is incomplete ({report.incomplete_reason()}); not appended to the "
                         f"history (finish it with `harness run --resume {run_dir}`, or allow incomplete runs)")
    header = _header(report, run_dir)
    checks = _vetted(read_checks(run_dir, report=report), run_dir)
    kept = keep_for_trend(checks) if keep == "trend" else _as_kept(checks)
    return write_run(kept, header, history_root, checks=checks.num_rows)


def _header(report: Any, run_dir: Path) -> dict[str, Any]:
    """The run columns: run_id, created (UTC), its UTC day, git sha, harness version, complete."""
    try:
        created = datetime.fromisoformat(str(report.created))
    except ValueError:
        raise InputError(f"{run_dir / 'report.json'}: created: {report.created!r} is not an ISO timestamp") from None
    if created.tzinfo is None:  # harness writes an offset; a naive stamp is taken as UTC
        created = created.replace(tzinfo=timezone.utc)
    created = created.astimezone(timezone.utc)
    env = report.environment or {}
    versions = env.get("versions") if isinstance(env.get("versions"), dict) else {}
    return {"run_id": report.run_id, "suite": report.suite, "created": created, "date": created.date().isoformat(),
            "git_sha": env.get("git_sha"), "harness_version": versions.get("harness"), "complete": report.complete}


def read_checks_columns() -> list[str]:
    """The checks.parquet columns (:data:`harness.report.checks_table.COLUMNS`), in history order."""
    from harness.report.checks_table import COLUMNS

    return list(COLUMNS)


def _vetted(checks: "pa.Table", run_dir: Path) -> "pa.Table":
    """``checks`` (:func:`harness.report.checks_table.read_checks`' table), refused (InputError naming
    the file) when a row has no case, metric, slice or status, or a status no reader knows: a
    history must not hold what no trend can place."""
    import pyarrow.compute as pc

    where = run_dir / "checks.parquet"
    for name in ("case", "metric", "slice", "status"):
        if checks[name].null_count:
            raise InputError(f"{where}: column {name!r} is missing or has {checks[name].null_count} null values")
    bad = set(pc.unique(checks["status"]).to_pylist()) - set(STATUSES)
    if bad:
        raise InputError(f"{where}: status {sorted(map(str, bad))[0]!r} is not one of {', '.join(STATUSES)}")
    return checks


def _as_kept(checks: "pa.Table") -> "pa.Table":
    """Every check as its own row (``n_slices`` 1, ``n_failed`` 1 for a gating one)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    gating = pc.is_in(checks["status"], pa.array(GATING))
    return checks.append_column("n_slices", pa.repeat(pa.scalar(1, pa.int32()), checks.num_rows)) \
                 .append_column("n_failed", pc.cast(gating, pa.int32()))


def keep_for_trend(checks: "pa.Table") -> "pa.Table":
    """The rows the default keep rule keeps (module docstring): non-spatial and failing checks in
    full, one worst-of row per spatial family.  ``checks``: :func:`harness.report.checks_table.read_checks`'
    columns.

    Linear in the checks but for one numpy sort of integer codes: the regular expressions run
    on the distinct slices only (a few thousand a night, repeated in every case)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    words, slice_code = _codes(checks["slice"])
    fam_words, fam_of_word = _codes(pc.replace_substring_regex(words, _SPATIAL, r"\1\2=worst"))
    spatial = pc.match_substring_regex(words, _SPATIAL).to_numpy(zero_copy_only=False)[slice_code]
    ranks = _ranks(checks["status"])
    gating = ranks >= min(rank(g) for g in GATING)
    whole = _as_kept(checks.filter(pa.array(~spatial | gating)))
    rows = np.flatnonzero(spatial)
    if len(rows) == 0:
        return whole
    case_words, case_code = _codes(checks["case"])
    metric_words, metric_code = _codes(checks["metric"])
    family = fam_of_word[slice_code[rows]].astype(np.int64)
    key = (case_code[rows].astype(np.int64) * len(metric_words) + metric_code[rows]) * len(fam_words) + family
    margin = _margin(checks)[rows]
    order = np.lexsort((-margin, -ranks[rows], key))  # by family, then worst status, then largest margin
    key = key[order]
    first = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    counts = np.diff(np.append(first, len(key))).astype(np.int32)
    failed = np.add.reduceat(gating[rows][order].astype(np.int32), first).astype(np.int32)
    pick = rows[order[first]]
    worst = checks.take(pa.array(pick))
    worst = worst.set_column(worst.schema.get_field_index("slice"), "slice",
                             fam_words.take(pa.array(family[order[first]])))
    worst = worst.append_column("n_slices", pa.array(counts)).append_column("n_failed", pa.array(failed))
    return pa.concat_tables([whole, worst.cast(whole.schema)])


def _codes(column: Any) -> tuple["pa.Array", "np.ndarray"]:
    """(distinct values, sorted; each row's index into them) of a string column without nulls:
    sorting by the codes sorts by the strings."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    enc = pc.dictionary_encode(column)
    enc = enc.combine_chunks() if isinstance(enc, pa.ChunkedArray) else enc
    order = np.asarray(pc.sort_indices(enc.dictionary), np.int64)
    position = np.empty(len(order), np.int64)
    position[order] = np.arange(len(order))
    return enc.dictionary.take(pa.array(order)), position[enc.indices.to_numpy()]


def _ranks(status: Any) -> "np.ndarray":
    """:func:`harness.status.rank` of each row (a few distinct values: each ranked once)."""
    import numpy as np

    words, codes = _codes(status)
    return np.array([rank(w) for w in words.to_pylist()], np.int8)[codes]


def _margin(checks: "pa.Table") -> "np.ndarray":
    """|delta| / tolerance per check: inf for a nonzero delta at tolerance 0; -1 (below every
    measured margin) without a delta or a tolerance."""
    import numpy as np

    delta = np.abs(checks["delta"].to_numpy(zero_copy_only=False).astype(float))
    tol = checks["tolerance"].to_numpy(zero_copy_only=False).astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(tol > 0, delta / tol, np.where(delta > 0, np.inf, 0.0))
    return np.where(np.isnan(delta) | np.isnan(tol), -1.0, out)


def write_run(kept: "pa.Table", header: dict[str, Any], history_root: str | os.PathLike[str], *,
              checks: int | None = None) -> Appended:
    """Write one run's kept rows (:func:`keep_for_trend`'s columns) with its ``header``
    (run_id, suite, created, date, git_sha, harness_version, complete) atomically; any other copy of
    the run in the suite's partitions is removed, so a run is in the history once."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from harness.fsio import atomic_write_bytes

    target = run_file(history_root, header["suite"], header["date"], header["run_id"])
    n = kept.num_rows
    schema = history_schema()
    run = {"run_id": header["run_id"], "created": header["created"], "git_sha": header.get("git_sha"),
           "harness_version": header.get("harness_version"), "complete": bool(header.get("complete", True))}
    order = np.lexsort([_codes(kept[c])[1] for c, _ in reversed(_SORT)])
    kept = kept.take(pa.array(order))
    table = pa.table({f.name: pa.repeat(pa.scalar(run[f.name], f.type), n) if f.name in run else kept[f.name]
                      for f in schema}).cast(schema)
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd", row_group_size=ROW_GROUP_ROWS, use_dictionary=list(_STRINGS),
                   write_statistics=list(_STATS), use_byte_stream_split=list(_FLOATS),
                   sorting_columns=[pq.SortingColumn(schema.get_field_index(c)) for c, _ in _SORT])
    replaced = target.exists()
    atomic_write_bytes(target, sink.getvalue())
    for other in target.parent.parent.glob(f"date=*/{target.name}"):
        if other != target:  # the same run filed under another day by an earlier append
            other.unlink(missing_ok=True)
            replaced = True
    return Appended(target, n, n if checks is None else checks, target.stat().st_size, replaced)


def trend(history_root: str | os.PathLike[str], suite: str, case: str, metric: str, slice: str,
          since: str | date | datetime | None = None, *, engine: str = "pyarrow") -> "pd.DataFrame":
    """One slice of one case across every run of ``suite`` in the history, oldest first.

    Columns :data:`TREND_COLUMNS` (``created`` a UTC timestamp); ``since``: runs of that UTC day
    or later (a datetime also drops earlier runs of its day).  ``engine``: ``"pyarrow"``
    (partition pruning on ``date``, the filter pushed down to row-group statistics) or
    ``"duckdb"`` (the ``history`` extra): the same rows either way.  A history folder or suite
    that is not there is a ConfigError; a slice no run kept gives an empty frame."""
    root = Path(history_root)
    check_name("suite", suite)
    if not root.is_dir():
        raise ConfigError(f"history {root}: no such folder")
    if not (root / f"suite={suite}").is_dir():
        have = sorted(p.name.removeprefix("suite=") for p in root.glob("suite=*"))
        raise ConfigError(f"history {root}: no runs of suite {suite!r} (it has: {', '.join(have) or 'none'})")
    day, moment = parse_since(since)
    if engine == "pyarrow":
        table = _trend_pyarrow(root / f"suite={suite}", case, metric, slice, day, moment)
    elif engine == "duckdb":
        table = _trend_duckdb(root / f"suite={suite}", case, metric, slice, day, moment)
    else:
        raise ConfigError(f"engine {engine!r}: expected pyarrow or duckdb")
    frame = table.select(list(TREND_COLUMNS)).to_pandas()
    return frame.sort_values(["created", "run_id"], kind="stable").reset_index(drop=True)


def parse_since(since: str | date | datetime | None) -> tuple[str | None, datetime | None]:
    """(first UTC day ``YYYY-MM-DD``, first moment as an aware UTC datetime or None) of ``since``:
    a date, an ISO timestamp (naive is UTC) or their text; ConfigError naming ``since`` otherwise."""
    if since is None:
        return None, None
    if isinstance(since, str):
        try:
            since = datetime.fromisoformat(since) if "T" in since or " " in since else date.fromisoformat(since)
        except ValueError:
            raise ConfigError(f"since {since!r}: expected YYYY-MM-DD or an ISO timestamp") from None
    if isinstance(since, datetime):
        moment = since if since.tzinfo else since.replace(tzinfo=timezone.utc)
        moment = moment.astimezone(timezone.utc)
        return moment.date().isoformat(), moment
    return since.isoformat(), None


def _trend_pyarrow(folder: Path, case: str, metric: str, slice: str, day: str | None,
                   moment: datetime | None) -> "pa.Table":
    import pyarrow as pa
    import pyarrow.dataset as ds

    partitioning = ds.partitioning(pa.schema([("date", pa.string())]), flavor="hive")
    dataset = ds.dataset(folder, format="parquet", partitioning=partitioning,
                         schema=history_schema().append(pa.field("date", pa.string())))
    where = (ds.field("case") == case) & (ds.field("metric") == metric) & (ds.field("slice") == slice)
    if day is not None:
        where = where & (ds.field("date") >= day)
    if moment is not None:
        where = where & (ds.field("created") >= pa.scalar(moment, pa.timestamp("us", tz="UTC")))
    return dataset.to_table(columns=list(TREND_COLUMNS), filter=where)


def _trend_duckdb(folder: Path, case: str, metric: str, slice: str, day: str | None,
                  moment: datetime | None) -> "pa.Table":
    if any(ch in str(folder) for ch in "*?[]{}"):
        raise ConfigError(f"history {folder.parent}: a path with glob characters (*?[]{{}}) cannot be read by "
                          f"engine duckdb; use engine pyarrow")
    try:
        import duckdb
    except ImportError:
        raise ConfigError("engine duckdb: DuckDB is not installed (pip install 'image-harness[history]')") from None
    if not any(folder.glob("date=*/*.parquet")):
        return history_schema().empty_table().select(list(TREND_COLUMNS))
    glob = str(folder / "date=*" / "*.parquet").replace("'", "''")
    where = 'WHERE "case" = $case AND metric = $metric AND slice = $slice'
    params: dict[str, Any] = {"case": case, "metric": metric, "slice": slice}
    for name, column, bound in (("day", "date", day), ("moment", "created", moment)):
        if bound is not None:
            where, params[name] = f"{where} AND {column} >= ${name}", bound
    with duckdb.connect() as con:
        con.execute("SET TimeZone = 'UTC'")
        # one schema for all files (write_run's): 3x faster than union_by_name, and `date` prunes partitions;
        # a file of another schema (an older harness) fails that read loudly, and union_by_name reads it
        for union in ("false", "true"):
            sql = (f"SELECT {', '.join(TREND_COLUMNS)} FROM read_parquet('{glob}', hive_partitioning = true, "
                   f"hive_types = {{'suite': VARCHAR, 'date': VARCHAR}}, union_by_name = {union}) {where}")
            try:
                table = con.sql(sql, params=params).to_arrow_table()
                break
            except duckdb.InvalidInputException as exc:
                if union == "true" or "schema mismatch" not in str(exc):
                    raise InputError(f"history {folder}: {str(exc).splitlines()[0]}") from None
    return table.cast(history_schema().empty_table().select(list(TREND_COLUMNS)).schema)
