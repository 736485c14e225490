"""Diagnostic figures of a case that did not pass, for index.html: PNG files written under the
run folder (re-derivable with ``harness report``), each described by a :class:`Figure`.

Today: the worst checks as signed ``delta / tolerance`` bars beside a per-tile severity map
(from the tile rows of checks.parquet, :func:`tile_checks`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from harness.naming import case_slug
from harness.report.schema import Report
from harness.report.text import worst_checks

__all__ = ["Figure", "case_figures", "tile_checks"]


@dataclass(frozen=True)
class Figure:
    """One written figure: ``kind`` (a stable short name, e.g. ``"checks"``), a human ``title``,
    and ``href``, its path relative to the run folder (posix)."""

    kind: str
    title: str
    href: str


def case_figures(report: Report, case, run_dir: Path, tiles: list) -> list[Figure]:
    """The figures of ``case`` (none for a passing one), written under ``run_dir/charts``;
    ``tiles``: every tile check of the case (:func:`tile_checks`)."""
    if case.status == "pass":
        return []
    name = f"charts/{case_slug(case.id)}.png"
    if _chart(case, Path(run_dir) / name, tiles):
        return [Figure("checks", "worst checks (delta / tolerance) and per-tile severity", name)]
    return []


def tile_checks(report: Report, run_dir: Path) -> dict[str, list]:
    """The per-tile checks of every case that did not pass, by case id: one read of checks.parquet
    (the ``tile`` rows of those cases only, the CHECK columns only).  Where the run folder cannot
    give them, each case's deciding checks stand in (the map then shows fewer tiles)."""
    import pyarrow.compute as pc

    from harness.report.checks_table import checks_by_case

    ids = [c.id for c in report.cases if c.status != "pass"]
    if not ids:
        return {}
    try:
        return checks_by_case(run_dir, pc.field("case").isin(ids) & pc.field("tile").is_valid(), report=report)
    except Exception:  # noqa: BLE001 - a view: re-derivable with `harness report`, never a crash of the run
        return {c.id: c.checks for c in report.cases if c.status != "pass"}


def _tile_severity(checks):
    """Worst ``|delta| / tolerance`` per tile over all tile slices, as a (rows, cols) grid."""
    import re

    import numpy as np

    cells: dict[tuple[int, int], float] = {}
    for c in checks:
        m = re.search(r"tile=r(\d+)c(\d+)", c.slice)
        if m and c.status in ("pass", "fail") and math.isfinite(c.severity):
            key = (int(m.group(1)), int(m.group(2)))
            cells[key] = max(cells.get(key, 0.0), c.severity)
    if not cells:
        return None
    grid = np.zeros((max(r for r, _ in cells) + 1, max(c for _, c in cells) + 1))
    for (r, c), v in cells.items():
        grid[r, c] = v
    return grid


def _chart(case, path: Path, tiles: list) -> bool:
    """Worst checks as signed delta/tolerance bars, beside a map of the worst tile severity
    (over ``tiles``, every tile check of the case)."""
    worst = [c for c in worst_checks(case.checks, 12) if math.isfinite(c.severity)]
    if not worst:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = _tile_severity(tiles)
    fig, axes = plt.subplots(1, 2 if grid is not None else 1, figsize=(11 if grid is not None else 7,
                             0.3 * len(worst) + 1.6), dpi=90, squeeze=False,
                             gridspec_kw={"width_ratios": [3, 2]} if grid is not None else None)
    ax = axes[0, 0]
    labels = [f"{c.metric} {c.slice}" for c in worst][::-1]
    vals = [math.copysign(c.severity, c.delta or 0.0) for c in worst][::-1]
    ax.barh(range(len(vals)), vals, color=["#c0392b" if abs(v) > 1 else "#7f8c8d" for v in vals])
    ax.set_yticks(range(len(vals)), labels, fontsize=7)
    for x in (-1, 1):
        ax.axvline(x, color="k", lw=0.6, ls="--")
    ax.set_xlabel("delta / tolerance (signed)")
    ax.set_title(case.id, fontsize=8)
    if grid is not None:
        hm = axes[0, 1]
        im = hm.imshow(grid, cmap="magma", vmin=0, vmax=max(2.0, float(grid.max())))
        hm.set_title("worst |delta| / tolerance per tile", fontsize=8)
        hm.set_xlabel("tile column")
        hm.set_ylabel("tile row")
        fig.colorbar(im, ax=hm, shrink=0.8)
    fig.tight_layout()
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    from harness.fsio import atomic_write_bytes

    atomic_write_bytes(path, buf.getvalue())
    return True


