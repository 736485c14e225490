"""Where a run folder keeps its checks: ``checks.parquet`` (compacted) and ``checks/<slug>.parquet``
(one part per recorded case, until compaction); which cases each holds, read from Parquet footers
only.  The columns and the writing and reading are :mod:`harness.report.checks_table`'s; this
module is what :func:`harness.report.schema.load_report` needs to vouch for a run's checks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable

from harness.naming import case_slug

__all__ = ["CHECKS_FILE", "PARTS_DIR", "META_KEY", "part_path", "compacted_cases", "holdings", "stored_rows",
           "sources", "short_cases"]

CHECKS_FILE = "checks.parquet"
PARTS_DIR = "checks"
#: key-value metadata of checks.parquet: JSON ``{case id: rows}`` of the cases it holds.
META_KEY = b"harness.cases"


def part_path(run_dir: Path, case_id: str) -> Path:
    return Path(run_dir) / PARTS_DIR / f"{case_slug(case_id)}.parquet"


def compacted_cases(run_dir: Path) -> dict[str, int] | None:
    """``{case id: rows}`` that ``checks.parquet`` holds (None: no such file, or unreadable)."""
    import pyarrow.parquet as pq

    p = Path(run_dir) / CHECKS_FILE
    try:
        meta = pq.read_metadata(p).metadata or {}
        found = json.loads(meta[META_KEY])
    except Exception:  # noqa: BLE001 - missing (OSError), truncated (ArrowInvalid), no or bad metadata
        return None
    return found if isinstance(found, dict) else None


def _part_rows(p: Path) -> int | None:
    """Rows of a part file; None when it is missing or not a readable Parquet file (crash debris)."""
    import pyarrow.parquet as pq

    try:
        return pq.read_metadata(p).num_rows
    except Exception:  # noqa: BLE001 - a truncated file raises ArrowInvalid, a missing one OSError
        return None


def holdings(run_dir: Path, case_ids: Iterable[str]) -> tuple[dict[str, int | None], list[str]]:
    """Per case id, how many checks the run folder holds for it (compacted or in its part file;
    None where neither holds it readably), and the Parquet files that hold them: checks.parquet
    (when readable) and the readable part of each case it does not hold.  One read of each footer."""
    done = compacted_cases(run_dir)
    rows: dict[str, int | None] = {}
    files = [str(Path(run_dir) / CHECKS_FILE)] if done is not None else []
    for cid in case_ids:
        if done is not None and cid in done:
            rows[cid] = done[cid]
            continue
        p = part_path(run_dir, cid)
        rows[cid] = _part_rows(p)
        if rows[cid] is not None:
            files.append(str(p))
    return rows, files


def stored_rows(run_dir: Path, case_ids: Iterable[str]) -> dict[str, int | None]:
    """:func:`holdings`' rows: per case id, how many checks the run folder holds for it."""
    return holdings(run_dir, case_ids)[0]


def sources(run_dir: Path, case_ids: Iterable[str]) -> list[str]:
    """:func:`holdings`' files: the Parquet files that hold the checks of ``case_ids``."""
    return holdings(run_dir, case_ids)[1]


def short_cases(cases: Iterable[Any], have: dict[str, int | None]) -> list[tuple[str, int | None, int]]:
    """``(case id, rows held, n_checks)`` for each of ``cases`` (version-2
    :class:`~harness.report.schema.CaseResult`, with checks) whose ``check_count`` rows the folder
    does not hold in full; ``have``: its rows per case id (:func:`stored_rows`)."""
    return [(c.id, have[c.id], c.check_count) for c in cases if c.check_count and have[c.id] != c.check_count]
