"""A small synthetic nightly history for the trend tests: ten nights of three cases.

* ``v/p/s1 band_power [band=high ch=Y]`` drifts up 0.004 a night under a tolerance of 0.05: it
  passes every night, its last value uses 72 % of the tolerance, and it rose 9 nights running;
* ``v/p/s1 band_power [band=low ch=Y]`` wobbles ±0.001 around its baseline (nothing to see);
* ``v/p/s1 band_power [band=mid ch=Y]`` rises every night, but by 0.0001 of a tolerance of 0.1
  (a streak too small to matter);
* ``w/p/s1 mean [ch=Y]`` is steady, then fails on the last night;
* ``w/p/s1 hue [tile=r0c0]`` was kept on nights 2 and 3 only (a failing tile, since gone).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

START = datetime(2026, 3, 1, 2, 0, tzinfo=timezone.utc)
NIGHTS = 10
DRIFT = ("v/p/s1", "band_power", "band=high ch=Y")


def night_rows(day: int) -> list[dict]:
    """The kept rows of night ``day`` (0-based)."""
    def row(case, metric, slc, value, baseline, tolerance, status="pass"):
        return {"case": case, "vector": case.split("/")[0], "pipeline": "p", "seed": 1, "metric": metric,
                "slice": slc, "value": value, "baseline": baseline, "delta": value - baseline,
                "tolerance": tolerance, "status": status, "n_slices": 1, "n_failed": int(status == "fail")}

    rows = [row("v/p/s1", "band_power", "band=high ch=Y", 1.0 + 0.004 * day, 1.0, 0.05),
            row("v/p/s1", "band_power", "band=low ch=Y", 2.0 + 0.001 * (-1) ** day, 2.0, 0.05),
            row("v/p/s1", "band_power", "band=mid ch=Y", 3.0 + 0.00001 * day, 3.0, 0.1),
            row("w/p/s1", "mean", "ch=Y", 5.0 if day < NIGHTS - 1 else 6.0, 5.0, 0.5,
                "pass" if day < NIGHTS - 1 else "fail")]
    if day in (2, 3):
        rows.append(row("w/p/s1", "hue", "tile=r0c0", 9.0, 1.0, 0.5, "fail"))
    return rows


def header(day: int, suite: str = "nightly") -> dict:
    created = START + timedelta(days=day)
    return {"run_id": f"{created:%Y%m%dT%H%M%S}-{suite}", "suite": suite, "created": created,
            "date": created.date().isoformat(), "git_sha": "abc", "harness_version": "0", "complete": True}


def write_night(root: Path, day: int, rows: list[dict] | None = None, suite: str = "nightly") -> Path:
    import pyarrow as pa

    from harness.run.history import history_schema, write_run

    rows = night_rows(day) if rows is None else rows
    fields = [f for f in history_schema() if f.name not in ("run_id", "created", "git_sha", "harness_version",
                                                            "complete")]
    table = pa.table({f.name: pa.array([r.get(f.name) for r in rows], f.type) for f in fields})
    return write_run(table, header(day, suite), root).path


def history(root: Path, nights: int = NIGHTS) -> Path:
    for day in range(nights):
        write_night(root, day)
    return root
