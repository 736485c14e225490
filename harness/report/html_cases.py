"""index.html's case table as data for its templates: the cases grouped by vector × pipeline with
their seeds folded into one row, failures first, and for each case that did not pass its
details (what changed, its worst checks, the labelled stage strip, its figures).

Passing cases stay cheap -- one line each, their stage images as links by name, no figures -- so a
1,000-case run's page stays small (see tests/report/test_html_browser.py).  Every string here is
plain text: the templates escape it (Jinja2 autoescaping); hrefs come from
:mod:`harness.report.html_links` only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from harness.report.figures import case_figures, tile_checks
from harness.report.html_links import artifact_href, store_href, why_not_linked
from harness.report.schema import Report
from harness.report.text import format_box, num, worst_checks
from harness.report.whatchanged import change_text, diverged_text
from harness.run.store import store_root_of
from harness.status import GATING

__all__ = ["Link", "CheckRow", "Detail", "CaseRow", "Group", "case_groups", "cross_rows", "RANK"]

#: Order of statuses, worst first: a group takes its worst case's, and the table is sorted by it.
RANK = {"error": 0, "fail": 1, "missing": 2, "skip": 3, "pass": 4}
SHOWN_CHECKS = 5  # worst checks listed per failing case (all of them are in checks.parquet)
#: The page's search matches a case's id, the metrics of its failing checks and the slices of its
#: worst ones (not all: a broad failure has thousands, and the page must stay small).
SEARCHED_CHECKS = 20
#: Groups whose worst case shows its details (figures) when the page opens: the page stays short
#: (a case's figures take ~2,000 px); every other failing case is one line that opens on a click.
OPEN_DETAILS = 3
# figures (about 140 ms of CPU each case) are drawn for this many failing cases, worst first; a
# run failing in thousands of cases renders in seconds, and the rest still show checks and images
FIGURE_CASES = 60


@dataclass(frozen=True)
class Link:
    """A labelled image: ``href`` (relative to the run folder) or, when it may not be linked, None
    with the report's ``value`` and ``why`` shown as text instead."""

    label: str
    href: str | None
    value: str = ""
    why: str = ""


@dataclass(frozen=True)
class CheckRow:
    status: str
    metric: str
    slice: str
    where: str  # "x 224-288, y 192-256" or ""
    value: str
    baseline: str
    sev: str  # "3.2×", "∞" (no allowance), "" (none)


@dataclass
class Detail:
    """What a case that did not pass shows under its row."""

    changed: list[str]
    diverged: str
    error: str | None
    checks: list[CheckRow]
    more: int  # failing checks not listed
    strip: list[Link]
    figures: list[Link]
    open: bool = False
    no_figures: str = ""  # why a failing case has no figures (beyond FIGURE_CASES)


@dataclass
class CaseRow:
    id: str
    seed: str
    status: str
    counts: str  # "30 of 210 checks failed"
    worst: str  # the worst check in one line, or the error
    time: float  # seconds, all stages
    q: str  # lower-case text the page's search matches: id, metrics, slices of the deciding checks
    sev: float
    links: list[Link] = field(default_factory=list)
    detail: Detail | None = None

    def rank_key(self) -> tuple:
        """Worst first: status, then severity, then id."""
        return (RANK[self.status], -self.sev, self.id)


@dataclass
class Group:
    """One vector × pipeline, its seeds folded: the worst status and severity of its cases."""

    key: str
    rows: list[CaseRow]
    changed: list[str]

    @property
    def status(self) -> str:
        return min((r.status for r in self.rows), key=RANK.__getitem__)

    @property
    def rank(self) -> int:
        return RANK[self.status]

    @property
    def sev(self) -> float:
        return max(r.sev for r in self.rows)

    @property
    def time(self) -> float:
        return sum(r.time for r in self.rows)

    @property
    def counts(self) -> list[tuple[str, int]]:
        seen = [r.status for r in self.rows]
        return [(s, seen.count(s)) for s in sorted(set(seen), key=RANK.__getitem__)]

    @property
    def headline(self) -> str:
        """The worst case's worst check (or error): what the collapsed row says."""
        return min(self.rows, key=CaseRow.rank_key).worst

    @property
    def open(self) -> bool:
        return self.status in ("error", "fail", "missing")


def sev_text(sev: float) -> str:
    if sev == math.inf:
        return "∞"
    if sev < 0:
        return ""
    return f"{sev:.0f}×" if sev >= 10 else f"{sev:.2g}×" if sev >= 0.01 else "<0.01×"


def _sev(checks) -> float:
    return max((c.severity for c in checks), default=-1.0)


def _check_row(c) -> CheckRow:
    box = getattr(c, "box", None)
    return CheckRow(c.status, c.metric, c.slice, format_box(box)[2:] if box is not None else "", num(c.value),
                    num(c.baseline), sev_text(c.severity))


def _one_line(c) -> str:
    box = getattr(c, "box", None)
    where = f" {format_box(box)}" if box is not None else ""
    tol = f" ({sev_text(c.severity)} tolerance)" if 0 <= c.severity < math.inf else ""
    return f"{c.metric} [{c.slice}]{where}: {num(c.value)} vs {num(c.baseline)}{tol}"


def _strip(artifacts: dict[str, str], run_dir: Path, store_root: Path | None) -> list[Link]:
    """The stage images in pipeline order (the order the run saved them), consecutive stages with the
    same image folded into one (``input · generate``)."""
    out: list[Link] = []
    last = None
    for stage, value in artifacts.items():
        if out and value == last:
            out[-1] = Link(f"{out[-1].label} · {stage}", out[-1].href, out[-1].value, out[-1].why)
            continue
        href = store_href(value, run_dir, store_root)
        out.append(Link(stage, href, "" if href else str(value), "" if href else why_not_linked(value)))
        last = value
    return out


def _detail(report: Report, case, run_dir: Path, tiles: list, strip: list[Link], drawn: bool) -> Detail:
    bad = worst_checks(case.checks)
    figures = [Link(f.title, artifact_href(f.href, run_dir), f.href, "not a path inside the run folder")
               for f in case_figures(report, case, run_dir, tiles)] if drawn else []
    why = "" if drawn else (f"figures are drawn for the {FIGURE_CASES} worst failing cases only "
                            "(a run of this case alone, with -k, draws its figures)")
    return Detail([change_text(ch) for ch in case.changed], diverged_text(case.diverged), case.error,
                  [_check_row(c) for c in bad[:SHOWN_CHECKS]], max(0, case.failed_count - SHOWN_CHECKS), strip,
                  figures, no_figures=why)


def _figure_cases(report: Report) -> set[str]:
    """The :data:`FIGURE_CASES` worst cases that did not pass (errors first, then by severity)."""
    bad = [c for c in report.cases if c.status in GATING]
    bad.sort(key=lambda c: (c.status != "error", -_sev(c.checks), c.id))
    return {c.id for c in bad[:FIGURE_CASES]}


def _case_row(report: Report, case, run_dir: Path, store_root: Path | None, tiles: dict,
              drawn: set[str]) -> CaseRow:
    bad = worst_checks(case.checks)
    near = worst_checks(case.checks, 1, gating_only=False)
    if bad:
        worst = _one_line(bad[0])
    elif case.error:
        worst = case.error
    else:
        worst = f"closest: {sev_text(near[0].severity)} tolerance" if near and near[0].severity >= 0 else ""
    q = " ".join(dict.fromkeys([case.id.lower()] + [c.metric.lower() for c in bad]
                               + [f"{c.metric} {c.slice}".lower() for c in bad[:SEARCHED_CHECKS]]))
    strip = _strip(case.artifacts, run_dir, store_root)
    row = CaseRow(case.id, f"s{case.seed}" if case.seed is not None else case.id.rpartition("/")[2], case.status,
                  f"{case.failed_count} of {case.check_count} failed" if case.check_count else "no checks", worst,
                  float(sum(case.timings.values())), q, _sev(case.checks))
    if case.status in GATING:
        row.detail = _detail(report, case, run_dir, tiles.get(case.id, []), strip, case.id in drawn)
    else:
        row.links = strip
    return row


def _missing_row(cid: str) -> CaseRow:
    return CaseRow(cid, cid.rpartition("/")[2], "missing", "no result",
                   "no result: the run stopped before this case finished", 0.0, cid.lower(), -1.0)


def case_groups(report: Report, run_dir: Path) -> list[Group]:
    """Every case (and every planned case without a result, as ``missing``) grouped by vector ×
    pipeline, worst group first (status, then severity, then name); in a group, seeds in order.
    The worst case of each of the first :data:`OPEN_DETAILS` groups has its details open."""
    run_dir = Path(run_dir)
    store_root = store_root_of(report.environment)
    tiles = tile_checks(report, run_dir)
    drawn = _figure_cases(report)
    groups: dict[str, Group] = {}
    for case in report.cases:
        g = groups.setdefault(f"{case.vector}/{case.pipeline}", Group(f"{case.vector}/{case.pipeline}", [], []))
        g.rows.append(_case_row(report, case, run_dir, store_root, tiles, drawn))
        g.changed.extend(t for t in map(change_text, case.changed) if t not in g.changed)
    for cid in report.missing:
        key = cid.rpartition("/")[0] or cid
        groups.setdefault(key, Group(key, [], [])).rows.append(_missing_row(cid))
    for g in groups.values():
        g.rows.sort(key=lambda r: (len(r.seed), r.seed, r.id))
    ordered = sorted(groups.values(), key=lambda g: (g.rank, -g.sev, g.key))
    for g in ordered[:OPEN_DETAILS]:
        worst = min(g.rows, key=CaseRow.rank_key)
        if worst.detail is not None:
            worst.detail.open = True
    return ordered


def cross_rows(report: Report, run_dir: Path) -> list[dict]:
    """The "Cross-model" section: each entry's a and b images, hue offset and HF energy change."""
    from harness.report.markdown import cross_cells, cross_entries

    store_root = store_root_of(report.environment)
    rows = []
    for c, hue, hf in cross_entries(report):
        h, e = cross_cells(hue, hf)
        images = {k: v for k, v in c.artifacts.items() if k in ("a", "b")}
        rows.append({"id": c.id, "status": c.status, "strip": _strip(images, Path(run_dir), store_root),
                     "hue": h, "hf": e, "error": c.error})
    return rows
