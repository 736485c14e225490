"""Every check of a run as typed columns (``checks.parquet``): written case by case, compacted once.

Columns (:data:`COLUMNS`, :func:`schema`; shared with the history and bench tools, who read
Parquet files with these columns through pyarrow):

==========  ===================  ==========================================================
``case``    string               the case id (``vector/pipeline/sSEED``, a group's ``.../seeds``)
``vector``  string
``pipeline`` string              a pipeline name, or ``a+b`` for a cross-model entry
``seed``    int64, null          null for distribution groups (their seed is all of them)
``metric``  string
``slice``   string               the readable CHECK slice, unchanged
``band`` ``tile`` ``region`` ``channel`` ``stage``  string, null
                                 the slice's ``band=``, ``tile=``, ``region=``, ``ch=`` and
                                 ``stage=`` words (null when the slice has no such word)
``value`` ``baseline`` ``delta`` ``tolerance``  float64, null
``status``  string               pass, fail, error or skip
``box``     fixed list<int32>[4], null   the slice's pixel box ``x0, y0, x1, y1`` (exclusive ends)
``note``    string, null         what an absolute or distribution check says about itself
==========  ===================  ==========================================================

**Where they live** (see :mod:`harness.run.rundir`): each recorded case writes
``checks/<slug>.parquet`` (atomically, before its case record, which is the commit point); when
the run ends (complete, interrupted or resumed and finished) :func:`compact` streams the parts
of the recorded cases into ``checks.parquet`` (row groups of about :data:`ROW_GROUP` rows, the
per-case row counts in the file's key-value metadata under ``harness.cases``), renames it into
place and only then deletes the parts.  :func:`read_checks` reads ``checks.parquet`` plus the
part of every recorded case it does not hold (a run killed before compaction, or one still
running), so a crash anywhere loses no recorded case and never counts one twice.
"""

from __future__ import annotations

import functools
import math

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from harness.errors import InputError
from harness.report.check_parts import CHECKS_FILE, META_KEY, holdings, part_path, short_cases, sources

if TYPE_CHECKING:
    import pyarrow as pa

    from harness.comparing.checks import Check

__all__ = ["COLUMNS", "SLICE_PARTS", "ROW_GROUP", "schema", "slice_parts", "table_of",
           "write_part", "parquet_bytes", "table_of_empty", "report_table", "compact", "read_checks", "checks_of",
           "CHECK_COLUMNS", "checks_by_case", "CSV_COLUMNS", "write_csv"]

#: Rows per row group of the compacted file: few enough groups that the footer stays small for
#: thousands of cases, small enough that a filter on ``case`` skips most of a big run.
ROW_GROUP = 65_536
#: slice word -> column (``ch=`` is the ``channel`` column).
SLICE_PARTS = {"band": "band", "tile": "tile", "region": "region", "ch": "channel", "stage": "stage"}
COLUMNS = ("case", "vector", "pipeline", "seed", "metric", "slice", *SLICE_PARTS.values(), "value", "baseline",
           "delta", "tolerance", "status", "box", "note")


def schema() -> pa.Schema:
    """The Arrow schema of :data:`COLUMNS` (shared decision 1 of issue 14)."""
    import pyarrow as pa

    s, f = pa.string(), pa.float64()
    return pa.schema([("case", s), ("vector", s), ("pipeline", s), ("seed", pa.int64()), ("metric", s),
                      ("slice", s), *((name, s) for name in SLICE_PARTS.values()), ("value", f), ("baseline", f),
                      ("delta", f), ("tolerance", f), ("status", s), ("box", pa.list_(pa.int32(), 4)),
                      ("note", s)])


def slice_parts(slice_: str) -> dict[str, str | None]:
    """``"band=high tile=r0c1"`` -> ``{"band": "high", "tile": "r0c1", "region": None, ...}``:
    the slice's ``key=value`` words that have a column (the first of a repeated key wins)."""
    return dict(_parts(slice_))


@functools.lru_cache(maxsize=65536)  # a suite's slices repeat in every case: parse each once
def _parts(slice_: str) -> tuple[tuple[str, str | None], ...]:
    out: dict[str, str | None] = dict.fromkeys(SLICE_PARTS.values())
    for word in slice_.split():
        key, eq, value = word.partition("=")
        col = SLICE_PARTS.get(key) if eq else None
        if col is not None and out[col] is None:
            out[col] = value
    return tuple(out.items())


def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None


_PLAIN = frozenset({float, int, type(None)})


def _nums(values: list[Any]) -> Any:
    """``[_num(v) for v in values]`` as a float64 Arrow array (nulls where ``_num`` gives None),
    converted at once when every value is a plain float, int or None (bool, numpy scalars and
    anything else take the per-value path)."""
    import numpy as np
    import pyarrow as pa

    if not set(map(type, values)) <= _PLAIN:
        return [_num(v) for v in values]
    arr = np.array(values, dtype=np.float64)  # None -> nan, then null like inf and nan
    valid = np.isfinite(arr)
    # from the buffers: pa.array(numpy) imports pandas (0.1-0.4 s), which the run's process never needs
    return pa.Array.from_buffers(pa.float64(), len(arr), [pa.py_buffer(np.packbits(valid, bitorder="little")),
                                                          pa.py_buffer(arr)], null_count=int(arr.size - valid.sum()))


def table_of(case: Any, checks: Sequence[Check] | None = None) -> pa.Table:
    """One row per check of ``case`` (a :class:`~harness.report.schema.CaseResult`; ``checks``:
    its full list when the case holds only its deciding ones).  Built column by column: a case
    holds thousands of checks."""
    import pyarrow as pa

    checks = case.checks if checks is None else checks
    n = len(checks)
    parts = [_parts(c.slice) for c in checks]
    cols: dict[str, list[Any]] = {"case": [case.id] * n, "vector": [case.vector] * n,
                                  "pipeline": [case.pipeline] * n, "seed": [case.seed] * n,
                                  "metric": [c.metric for c in checks], "slice": [c.slice for c in checks]}
    for i, col in enumerate(SLICE_PARTS.values()):
        cols[col] = [p[i][1] for p in parts]
    for k in ("value", "baseline", "delta", "tolerance"):
        cols[k] = _nums([getattr(c, k) for c in checks])
    cols["status"] = [c.status for c in checks]
    cols["box"] = [[int(v) for v in c.box] if c.box is not None else None for c in checks]
    cols["note"] = [getattr(c, "note", None) or None for c in checks]
    return pa.table({name: cols[name] for name in COLUMNS}, schema=schema())


def parquet_bytes(table: pa.Table, metadata: dict[bytes, bytes] | None = None) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    if metadata:
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), **metadata})
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue().to_pybytes()


def write_part(run_dir: Path, case: Any, checks: Sequence[Check] | None = None) -> Path:
    """``checks/<slug>.parquet``: every check of one case, written atomically (an ``OSError``
    propagates, naming the file)."""
    from harness.fsio import atomic_write_bytes

    p = part_path(run_dir, case.id)
    atomic_write_bytes(p, parquet_bytes(table_of(case, checks)))
    return p


def compact(run_dir: Path, case_ids: Sequence[str]) -> Path:
    """``checks.parquet`` holding the checks of ``case_ids`` (from the current ``checks.parquet``
    and the part files), streamed in row groups to a temporary file renamed into place (removed
    again when writing fails: a full disk leaves the parts as they were); then the parts go."""
    run_dir = Path(run_dir)
    out = run_dir / CHECKS_FILE
    tmp = run_dir / f".{CHECKS_FILE}.tmp"
    try:
        _write_compacted(tmp, sources(run_dir, case_ids), case_ids)
        os.replace(tmp, out)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    for cid in case_ids:
        try:
            os.unlink(part_path(run_dir, cid))
        except FileNotFoundError:
            pass
    return out


def _write_compacted(tmp: Path, files: list[str], case_ids: Sequence[str]) -> None:
    """Every row of ``files`` that belongs to ``case_ids``, in whole row groups of :data:`ROW_GROUP`
    rows, with ``{case id: rows}`` in the footer."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    counts: dict[str, int] = {}
    buf: list[pa.Table] = []
    keep = set(case_ids)
    with pq.ParquetWriter(tmp, schema(), compression="zstd") as writer:
        # file by file, not pyarrow.dataset, and no Python values made Arrow ones unless a batch must be
        # filtered: either imports pandas (0.2-0.5 s), more than a small run's whole compaction
        for f in files:
            for batch in pq.ParquetFile(f).iter_batches(columns=list(COLUMNS)):
                ids, ns = _value_counts(batch)
                if not keep.issuperset(ids):  # the compacted file of a resumed run holds other cases too
                    batch = batch.filter(pc.is_in(batch.column("case"), value_set=pa.array(list(keep), pa.string())))
                    ids, ns = _value_counts(batch)
                buf.append(pa.Table.from_batches([batch]).cast(schema()))
                for cid, n in zip(ids, ns):
                    counts[cid] = counts.get(cid, 0) + n
                if sum(t.num_rows for t in buf) >= ROW_GROUP:  # full groups out, the rest waits
                    whole = pa.concat_tables(buf)
                    cut = whole.num_rows - whole.num_rows % ROW_GROUP
                    writer.write_table(whole.slice(0, cut), row_group_size=ROW_GROUP)
                    buf = [whole.slice(cut)]
        if buf and sum(t.num_rows for t in buf):
            writer.write_table(pa.concat_tables(buf), row_group_size=ROW_GROUP)
        writer.add_key_value_metadata({META_KEY.decode(): json.dumps({cid: counts.get(cid, 0) for cid in case_ids})})


def _value_counts(batch) -> tuple[list[str], list[int]]:
    import pyarrow.compute as pc

    vc = pc.value_counts(batch.column("case"))
    return vc.field("values").to_pylist(), vc.field("counts").to_pylist()


def _expression(filters: Any):
    """A pyarrow compute expression from an expression or pq.read_table's DNF list form."""
    import pyarrow.parquet as pq

    if filters is None or not isinstance(filters, (list, tuple)):
        return filters
    return pq.filters_to_expression(filters)


def read_checks(run_dir: str | Path, columns: Sequence[str] | None = None, filters: Any = None, *,
                report: Any = None) -> pa.Table:
    """The checks of a run folder as one Arrow table: ``columns`` only (default :data:`COLUMNS`),
    rows matching ``filters`` only (a ``pyarrow.compute`` expression, or ``pq.read_table``'s
    ``[("status", "=", "fail"), ...]`` form), pushed down to the Parquet row groups.

    ``report``: the run's :class:`~harness.report.schema.Report` already loaded (else it is,
    validated).  Version 2: ``checks.parquet`` plus the part file of every recorded case it does
    not hold; a case whose ``n_checks`` rows are not all there is an InputError naming the folder.
    Version 1 (every check in report.json): the same table built from report.json."""
    import pyarrow.dataset as ds

    from harness.report.schema import load_report

    run_dir = Path(run_dir)
    if report is None:
        report = load_report(run_dir)
    unknown = [c for c in columns or () if c not in COLUMNS]
    if unknown:
        raise InputError(f"checks columns: {', '.join(map(repr, unknown))} not among {', '.join(COLUMNS)}")
    expr = _expression(filters)
    if report.schema_version == 1:
        table = report_table(report)
        if expr is not None:
            table = table.filter(expr)
        return table.select(list(columns or COLUMNS))
    have, files = holdings(run_dir, [c.id for c in report.cases])
    _vouch(run_dir, report, have)
    if not files:
        return table_of_empty().select(list(columns or COLUMNS))
    return ds.dataset(files, schema=schema(), format="parquet").to_table(columns=list(columns or COLUMNS),
                                                                        filter=expr)


def _vouch(run_dir: Path, report: Any, have: dict[str, int | None]) -> None:
    """Refuse (InputError) a run folder that does not hold every check of the report's cases
    (``have``: the rows it holds per case id, :func:`holdings`): a reader asking for all checks
    must never get a silent subset."""
    lost = [f"{cid} ({held or 0} of {n})" for cid, held, n in short_cases(report.cases, have)]
    if lost:
        raise InputError(f"{run_dir / CHECKS_FILE}: the checks of {len(lost)} case(s) are missing or unreadable: "
                         f"{', '.join(lost[:3])}{' ...' if len(lost) > 3 else ''}")


def table_of_empty() -> pa.Table:
    return schema().empty_table()


def report_table(report: Any) -> pa.Table:
    """Every check its cases hold, as one table: a version-1 report's checks (all in report.json)."""
    import pyarrow as pa

    return pa.concat_tables([table_of(c) for c in report.cases] or [table_of_empty()])


def checks_of(table: pa.Table) -> list[Check]:
    """The rows of a table holding the CHECK columns as :class:`Check` records (``box`` too when
    selected)."""
    from harness.comparing.checks import Check

    cols = {k: table.column(k).to_pylist() for k in ("metric", "slice", "value", "baseline", "delta", "tolerance",
                                                      "status", "box") if k in table.column_names}
    n = table.num_rows
    boxes = cols.pop("box", [None] * n)
    return [Check(**{k: v[i] for k, v in cols.items()}, box=tuple(boxes[i]) if boxes[i] else None) for i in range(n)]


#: The CHECK record's columns and the case each belongs to: what :func:`checks_by_case` reads.
CHECK_COLUMNS = ("case", "metric", "slice", "value", "baseline", "delta", "tolerance", "status")


def checks_by_case(run_dir: str | Path, filters: Any = None, *, report: Any = None) -> dict[str, list[Check]]:
    """The checks of a run folder (:func:`read_checks`: the :data:`CHECK_COLUMNS` only, rows
    matching ``filters`` only) as :class:`Check` records by case id, in stored order."""
    table = read_checks(run_dir, CHECK_COLUMNS, filters, report=report)
    out: dict[str, list[Check]] = {}
    for cid, check in zip(table.column("case").to_pylist(), checks_of(table)):
        out.setdefault(cid, []).append(check)
    return out


#: checks.csv (``harness run --csv``): the columns it always had.
CSV_COLUMNS = ("case", "vector", "pipeline", "seed", "metric", "slice", "value", "baseline", "delta", "tolerance",
               "status")


def write_csv(run_dir: Path, report: Any = None) -> Path:
    """``checks.csv`` from the run's checks (a view, on request), written atomically in batches."""
    import csv
    import io

    from harness.fsio import atomic_write_text

    table = read_checks(run_dir, CSV_COLUMNS, report=report)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for batch in table.to_batches(max_chunksize=50_000):
        cols = [batch.column(k).to_pylist() for k in CSV_COLUMNS]
        w.writerows(zip(*cols))
    p = Path(run_dir) / "checks.csv"
    atomic_write_text(p, buf.getvalue())
    return p
