"""index.html with diagnostic charts: per failing case, the worst checks as ``delta / tolerance``
bars grouped by metric, beside a per-tile severity map (re-derivable from report.json and, for
the tile map, the tile rows of the failing cases in checks.parquet).

Everything taken from a report is escaped, in text and in attributes alike (``html.escape``
with quotes).  An artifact becomes a link (and a thumbnail) only when it is a relative path
inside the run folder (:func:`artifact_href`); anything else -- ``javascript:...``, ``/etc/passwd``,
``../../x``, a symlink out of the folder -- is shown as text.
"""

from __future__ import annotations

import html
import math
import os
import re
from pathlib import Path, PurePosixPath
from urllib.parse import quote

from harness.naming import case_slug
from harness.report.markdown import change_text, cross_cells, cross_entries, run_changes, verdict
from harness.report.schema import Report
from harness.report.text import worst_checks
from harness.run.store import REF_PREFIX, resolve_artifact, store_root_of

__all__ = ["index_html", "artifact_href", "tile_checks"]

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")  # javascript:, data:, http:, C: ...


def _esc(value: object) -> str:
    """Text for an element or a quoted attribute: ``& < > " '`` escaped."""
    return html.escape(str(value), quote=True)


def artifact_href(path: str, run_dir: Path) -> str | None:
    """``path`` as an escaped, percent-encoded href when it is a relative path inside ``run_dir``
    (after resolving symlinks), else None: the view shows it as text, never as a link."""
    if (not isinstance(path, str) or not path or _SCHEME.match(path) or path.startswith("/")
            or "\\" in path or path != path.strip() or any(ord(ch) < 32 or ord(ch) == 127 for ch in path)
            or ".." in PurePosixPath(path).parts):
        return None
    root = Path(run_dir).resolve()
    try:
        (root / path).resolve().relative_to(root)
    except (ValueError, OSError):
        return None
    return _esc(quote(path, safe="/"))


def _href(value: str, run_dir: Path, store_root: Path | None) -> str | None:
    """An artifact's href: a store reference (``sha256:…``) links to its object in the run's image
    store (a path relative to the run folder, from a validated hash, never from report text); a
    relative path only when it stays inside the run folder (:func:`artifact_href`)."""
    if isinstance(value, str) and value.startswith(REF_PREFIX):
        p = resolve_artifact(value, run_dir, store_root)
        return _esc(quote(os.path.relpath(p, Path(run_dir).resolve()), safe="/")) if p is not None else None
    return artifact_href(value, run_dir)


def _thumbs(artifacts: dict[str, str], names: tuple[str, ...], run_dir: Path, store_root: Path | None = None) -> str:
    """A linked thumbnail per artifact in ``names`` that resolves (a store object, or a file inside the
    run folder); text for the rest."""
    out = []
    for k, p in artifacts.items():
        if k not in names:
            continue
        href = _href(p, run_dir, store_root)
        why = ("not in the image store (pruned, or another machine's store)" if isinstance(p, str)
               and p.startswith(REF_PREFIX) else "not a path inside the run folder")
        out.append(f'<a href="{href}"><img class="t" loading="lazy" src="{href}" title="{_esc(k)}" alt="{_esc(k)}"></a>'
                   if href else f"<code class='bad-link'>{_esc(k)}: {_esc(p)} ({why})</code>")
    return "".join(out)


def _worst(case, n: int):
    return worst_checks(case.checks, n)


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
    worst = [c for c in _worst(case, 12) if math.isfinite(c.severity)]
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


def _cross_html(report: Report, run_dir: Path) -> str:
    """The "Cross-model" section: each entry's a and b images, hue offset and HF energy change."""
    rows = []
    for c, hue, hf in cross_entries(report):
        h, e = cross_cells(hue, hf)
        thumbs = _thumbs(c.artifacts, ("a", "b"), run_dir, store_root_of(report.environment))
        rows.append(f"<tr class='{_esc(c.status)}'><td><b>{_esc(c.id)}</b><br>{_esc(c.status)}</td><td>{thumbs}</td>"
                    f"<td>hue offset {_esc(h)}<br>HF energy change {_esc(e)}"
                    f"{f'<p class=err>{_esc(c.error)}</p>' if c.error else ''}</td></tr>")
    if not rows:
        return ""
    return ("<h2>Cross-model</h2><p>Same vector and seed through pipelines a and b: hue offset and high-frequency "
            f"energy change of b relative to a.</p><table>{''.join(rows)}</table>")


def index_html(report: Report, run_dir: Path) -> str:
    s = report.summary
    rows = []
    charts_dir = run_dir / "charts"
    tiles = tile_checks(report, run_dir)
    store_root = store_root_of(report.environment)
    for c in sorted(report.cases, key=lambda c: (c.status == "pass", c.id)):
        safe = case_slug(c.id)
        chart = ""
        if c.status != "pass" and _chart(c, charts_dir / f"{safe}.png", tiles.get(c.id, [])):
            chart = f'<br><img class="c" src="charts/{_esc(quote(safe))}.png" alt="worst checks">'
        thumbs = _thumbs(c.artifacts, ("input", "output", "inpaint", "mask_mask"), run_dir, store_root)
        worst = "".join(f"<li>{_esc(x.metric)} <code>{_esc(x.slice)}</code>: "
                        f"{x.value if x.value is None else f'{x.value:.4g}'} vs "
                        f"{x.baseline if x.baseline is None else f'{x.baseline:.4g}'}</li>" for x in _worst(c, 5))
        err = f"<p class='err'>{_esc(c.error)}</p>" if c.error else ""
        if c.changed:
            err = f"<p class='changed'>changed since the baseline: {_esc(', '.join(map(change_text, c.changed)))}</p>" + err
        rows.append(f"<tr class='{_esc(c.status)}'><td><b>{_esc(c.id)}</b><br>{_esc(c.status)}</td>"
                    f"<td>{thumbs}</td><td>{err}<ul>{worst}</ul>{chart}</td></tr>")
    for cid in report.missing:
        rows.append(f"<tr class='missing'><td><b>{_esc(cid)}</b><br>missing</td><td></td>"
                    f"<td class='err'>no result: the run stopped before this case finished</td></tr>")
    banner = ""
    if not report.complete:
        banner = (f"<p class='incomplete'><b>INCOMPLETE RUN &mdash; NOT A PASS.</b> "
                  f"{_esc(report.incomplete_reason())}; the cases below are what was recorded before the "
                  f"run stopped. Finish it with <code>harness run --resume</code> on this folder.</p>")
    cross = _cross_html(report, run_dir)
    notes = "".join(f"<li>{_esc(n)}</li>" for n in report.notes)
    notes = f"<ul class='notes'>{notes}</ul>" if notes else ""
    changes = run_changes(report)
    if changes:
        notes = ("<h2>What changed since the baselines</h2><ul class='changed'>"
                 + "".join(f"<li><b>{_esc(t)}</b> in {n} case{'' if n == 1 else 's'} "
                           f"({_esc(', '.join(st))})</li>" for t, n, st in changes) + "</ul>"
                 + (f"<h2>Notes</h2>{notes}" if notes else ""))
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>harness {_esc(report.run_id)}</title>
<style>body{{font-family:sans-serif;margin:1em}} td{{vertical-align:top;border-bottom:1px solid #ddd;padding:4px}}
tr.fail td:first-child{{color:#c0392b}} tr.error td:first-child{{color:#8e44ad}} img.t{{height:96px;margin:1px}}
.err{{color:#8e44ad}} .changed{{color:#b35900}} .incomplete{{background:#c0392b;color:#fff;padding:8px;font-size:1.2em}}
tr.missing td:first-child{{color:#c0392b}} table{{width:100%;table-layout:fixed}}
td:first-child{{width:14em;overflow-wrap:anywhere}} td:nth-child(2){{width:104px}} img.c{{max-width:100%;height:auto}}</style></head><body>
<h1>harness run {_esc(report.run_id)} &mdash; suite {_esc(report.suite)}</h1>{banner}
<p><b>{_esc(verdict(report))}</b>: {s['passed']} passed, {s['failed']} failed, {s['errors']} errors,
{s['skipped']} skipped.</p>{notes}<table>{''.join(rows)}</table>{cross}</body></html>
"""
