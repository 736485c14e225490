"""The charts of ``harness trend``: a PNG (matplotlib) and a self-contained HTML page (Jinja2,
autoescaped; inline SVG, no script, nothing fetched), both drawn from the same
:class:`~harness.report.trend.Series`.

Each shown series is one small panel on a shared x axis (the runs of the window, oldest left):
the tolerance band ``baseline ± tolerance`` of each run shaded, the baseline dashed, the value
as a line with a dot per run, failing runs red.  A band follows its run's baseline, so a rebake
shows as a step and a ``tile=worst`` family row's band is that night's worst tile's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from harness.report.text import num
from harness.status import GATING

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    from matplotlib.figure import Figure

    from harness.report.trend import Series, TrendView

__all__ = ["figure", "write_png", "write_html", "html_page", "Panel", "panel", "TEMPLATE"]

TEMPLATE = "trend.html.j2"
_COLS = 3
_W, _H, _PAD = 360, 150, 8  # an SVG panel: width, height, inner padding (px)
_FLAG_COLOUR = {"fail": "#c62828", "near": "#ef6c00", "trend": "#6a1b9a"}


def figure(view: "TrendView") -> "Figure":
    """The PNG's figure: one panel per shown series.  Each panel's artists carry a ``gid``
    (``band``, ``band-lower``, ``band-upper``, ``baseline``, ``value``, ``failing``) so that what
    is drawn can be read back as data."""
    from matplotlib.figure import Figure

    shown = view.shown
    rows = max(1, math.ceil(len(shown) / _COLS))
    fig = Figure(figsize=(4.2 * _COLS, 2.5 * rows + 0.9), layout="constrained")
    axes = fig.subplots(rows, _COLS, squeeze=False, sharex=True)
    for ax, s in zip(axes.flat, shown):
        _panel_axes(ax, s, view)
    for ax in list(axes.flat)[len(shown):]:
        ax.set_visible(False)
    fig.suptitle(f"{view.suite}: {len(view.runs)} runs {view.runs[0].created:%Y-%m-%d} -> "
                 f"{view.runs[-1].created:%Y-%m-%d}\n{view.cap_note()}", fontsize=9, wrap=True)
    return fig


def _panel_axes(ax, s: "Series", view: "TrendView") -> None:
    import numpy as np

    x, d = s.x, s.plotted()
    band = np.isfinite(d.lower) & np.isfinite(d.upper)
    ax.fill_between(x, d.lower, d.upper, where=band, color="#a5d6a7", alpha=0.55, linewidth=0, gid="band",
                    label="baseline ± tolerance")
    ax.plot(x, d.lower, color="#66bb6a", linewidth=0.6, gid="band-lower")
    ax.plot(x, d.upper, color="#66bb6a", linewidth=0.6, gid="band-upper")
    ax.plot(x, d.baselines, color="#2e7d32", linestyle="--", linewidth=0.8, gid="baseline")
    ax.plot(x, d.values, color="#1565c0", marker="o", markersize=2.5, linewidth=1.1, gid="value")
    bad = np.array([st in GATING for st in s.statuses])
    if bad.any():
        ax.plot(x[bad], d.values[bad], linestyle="none", marker="o", markersize=4, color="#c62828", gid="failing")
    flags = " ".join(s.flags)
    ax.set_title(f"{s.case}\n{s.metric} [{s.slice}]" + (f"  {flags}" if flags else ""), fontsize=7,
                 color=_FLAG_COLOUR.get(s.flags[0], "black") if s.flags else "black", loc="left")
    if d.unit:
        ax.set_ylabel("tolerances", fontsize=6)
    ax.tick_params(labelsize=6)
    ticks = sorted({0, len(view.runs) - 1, *range(0, len(view.runs), max(1, len(view.runs) // 4))})
    ax.set_xticks(ticks, [f"{view.runs[i].created:%m-%d}" for i in ticks])
    ax.set_xlim(-0.5, len(view.runs) - 0.5)


def write_png(view: "TrendView", path: str | Path) -> Path:
    """``figure(view)`` saved as a PNG (100 dpi), atomically."""
    import io

    from harness.fsio import atomic_write_bytes

    buf = io.BytesIO()
    figure(view).savefig(buf, format="png", dpi=100)
    atomic_write_bytes(Path(path), buf.getvalue())
    return Path(path)


@dataclass(frozen=True)
class Panel:
    """One series as SVG geometry (pixels in a ``_W`` x ``_H`` box, y down): ``bands`` polygons
    (one per stretch of runs with a band), ``baseline`` and ``value`` polylines (one per stretch
    without gaps), ``dots`` ``(x, y, failing, tooltip)``; ``y_range`` the data range drawn (:meth:`Series.plotted`'s)."""

    series: "Series"
    bands: tuple[str, ...]
    baseline: tuple[str, ...]
    value: tuple[str, ...]
    dots: tuple[tuple[float, float, bool, str], ...]
    y_range: tuple[float, float]
    unit: str  # what y is when not the slice's own value (Series.plotted)


def panel(s: "Series", runs: int) -> Panel:
    """The SVG geometry of series ``s`` on an axis of ``runs`` runs."""
    import numpy as np

    d = s.plotted()
    data = np.concatenate([a[np.isfinite(a)] for a in (d.values, d.lower, d.upper)])
    lo, hi = (float(data.min()), float(data.max())) if len(data) else (0.0, 1.0)
    pad = (hi - lo) * 0.08 or abs(hi) * 0.05 or 1.0
    lo, hi = lo - pad, hi + pad
    px = lambda i: _PAD + (_W - 2 * _PAD) * (i / max(runs - 1, 1))  # noqa: E731
    py = lambda v: _PAD + (_H - 2 * _PAD) * (hi - v) / (hi - lo)  # noqa: E731
    band = np.isfinite(d.lower) & np.isfinite(d.upper)
    bands = []
    for part in _stretches(band):
        top = [f"{px(s.x[i]):.1f},{py(d.upper[i]):.1f}" for i in part]
        bottom = [f"{px(s.x[i]):.1f},{py(d.lower[i]):.1f}" for i in reversed(part)]
        bands.append(" ".join(top + bottom))
    lines = {}
    for name, arr in (("baseline", d.baselines), ("value", d.values)):
        lines[name] = tuple(" ".join(f"{px(s.x[i]):.1f},{py(arr[i]):.1f}" for i in part)
                            for part in _stretches(np.isfinite(arr)))
    dots = tuple((round(px(s.x[i]), 1), round(py(d.values[i]), 1), s.statuses[i] in GATING, _tip(s, i))
                 for i in range(len(s.x)) if math.isfinite(d.values[i]))
    return Panel(s, tuple(bands), lines["baseline"], lines["value"], dots, (lo, hi), d.unit)


def _stretches(ok: "np.ndarray") -> list[list[int]]:
    """Indices of the runs of consecutive True values in ``ok``."""
    out: list[list[int]] = []
    for i, good in enumerate(ok):
        if good:
            if out and out[-1][-1] == i - 1:
                out[-1].append(i)
            else:
                out.append([i])
    return out


def _tip(s: "Series", i: int) -> str:
    return (f"run {int(s.x[i]) + 1}: {num(s.values[i])} ({s.statuses[i]}; baseline {_n(s.baselines[i])} ± "
            f"{_n(s.tolerances[i])})")


def _n(v: float) -> str:
    return num(float(v)) if math.isfinite(v) else "-"


def html_page(view: "TrendView") -> str:
    """The page: what was read, the cap note, the table, one SVG panel per shown series, the flags'
    meaning.  Every value reaches the page through the autoescaping template."""
    from harness.report.templating import environment
    from harness.report.trend import table_rows

    env = environment()
    runs = [(i + 1, r.run_id, f"{r.created:%Y-%m-%d %H:%M}") for i, r in enumerate(view.runs)]
    return env.get_template(TEMPLATE).render(
        view=view, rows=table_rows(view), panels=[panel(s, len(view.runs)) for s in view.shown], runs=runs,
        width=_W, height=_H, legend=view.flag_legend(), colours=_FLAG_COLOUR)


def write_html(view: "TrendView", path: str | Path) -> Path:
    from harness.fsio import atomic_write_text

    atomic_write_text(Path(path), html_page(view))
    return Path(path)
