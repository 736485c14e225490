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
import os
import re
from pathlib import Path, PurePosixPath
from urllib.parse import quote

from harness.report.markdown import cross_cells, cross_entries, verdict
from harness.report.whatchanged import change_text, run_changes
from harness.report.figures import case_figures, tile_checks
from harness.report.schema import Report
from harness.report.text import worst_checks
from harness.run.store import REF_PREFIX, resolve_artifact, store_root_of

__all__ = ["index_html", "artifact_href", "tile_checks"]  # tile_checks: re-exported from figures

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
    tiles = tile_checks(report, run_dir)
    store_root = store_root_of(report.environment)
    for c in sorted(report.cases, key=lambda c: (c.status == "pass", c.id)):
        chart = "".join(f'<br><img class="c" src="{_esc(quote(f.href))}" alt="{_esc(f.title)}" title="{_esc(f.title)}">'
                        for f in case_figures(report, c, run_dir, tiles.get(c.id, [])))
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
