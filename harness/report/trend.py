"""``harness trend``: chosen slices across the runs of a nightly history, with their tolerance band.

A nightly gate says pass or fail per night; a slice that creeps toward its tolerance a little
each night passes every gate until the night it does not.  This view shows each chosen series
(case, metric, slice) across runs with its band ``baseline ± tolerance`` and flags, so that drift
under tolerance is seen before it fails:

* ``fail``  -- its last run failed (or errored) already;
* ``near``  -- its last value used more than ``near`` (default 50 %) of its tolerance;
* ``trend`` -- it moved the same way in each of its last ``streak`` runs (default 5), by at least
  :data:`MIN_STREAK_MOVE` of its tolerance in all (so that noise far inside the band, which
  goes the same way five times in a row once in 60 series, is not flagged).

Movement is measured on the margin ``(value - baseline) / tolerance`` of each run, so a rebake
starts afresh.  Series are ranked flagged first, then by drift ``max(used, |moved|)``
(``moved``: the margin's change from the first run of the window to the last); the table and the charts show the top N with a note
saying how many more matched.  The data of every chart is :class:`Series`; the PNG
(:mod:`harness.report.trend_chart`) and the HTML page draw it.
"""

from __future__ import annotations

import fnmatch
import math
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

from harness.errors import ConfigError, InputError
from harness.report.text import num
from harness.status import GATING

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import pyarrow as pa

    from harness.run.history_scan import RunFile

__all__ = ["Selection", "Series", "TrendView", "build_trend", "series_of", "trend_table", "pattern_matcher", "table_rows",
           "MIN_STREAK_MOVE", "MAX_ROWS", "FLAG_TEXT", "Plotted"]

#: A streak of same-way moves is flagged only when it moved this many tolerances in all.
MIN_STREAK_MOVE = 0.25
#: Rows a view reads at most (~20 bytes each in memory, ~1 s per million): more must be narrowed.
MAX_ROWS = 5_000_000
FLAG_TEXT = {"fail": "its last run failed", "near": "its last value used more than {near:.0%} of its tolerance",
             "trend": "it moved the same way in each of its last {streak} or more runs (by >= {move} tolerance)"}


@dataclass(frozen=True)
class Selection:
    """What to show: a suite, case ids matching ``k`` (pytest-style), metrics and slices matching
    any of their patterns (a glob, or ``re:EXPR`` searched), runs since a day / the last N."""

    suite: str | None = None
    k: str | None = None
    metrics: tuple[str, ...] = ()
    slices: tuple[str, ...] = ()
    since: str | None = None
    last: int | None = None

    def describe(self) -> str:
        """The selection as the options that made it (``all series`` when none)."""
        parts = [f"-k {self.k!r}"] if self.k else []
        parts += [f"--metric {m!r}" for m in self.metrics] + [f"--slice {s!r}" for s in self.slices]
        if self.since:
            parts.append(f"--since {self.since}")
        if self.last:
            parts.append(f"--last {self.last}")
        return " ".join(parts) or "all series"


def pattern_matcher(patterns: Sequence[str], option: str) -> Callable[[str], bool] | None:
    """A predicate true for a string matching any of ``patterns`` (None: no patterns, anything).

    A pattern is a glob (``*``, ``?``, ``[...]``; without them an exact string), or ``re:EXPR``,
    a regular expression searched anywhere in the string.  A bad expression is a ConfigError
    naming ``option``."""
    if not patterns:
        return None
    tests: list[Callable[[str], bool]] = []
    for p in patterns:
        if p.startswith("re:"):
            try:
                tests.append(re.compile(p[3:]).search)
            except re.error as exc:
                raise ConfigError(f"{option} {p!r}: not a regular expression ({exc})") from None
        else:
            tests.append(lambda s, p=p: fnmatch.fnmatchcase(s, p))
    return lambda s: any(t(s) for t in tests)


@dataclass(frozen=True)
class Series:
    """One slice of one case across runs.  ``x``: each point's index into the view's runs;
    ``values``/``baselines``/``tolerances`` float arrays (NaN where missing), ``statuses`` per
    point.  ``used`` = |last value - baseline| / tolerance; ``moved``: how far the margin went from
    the first to the last run, in tolerances; ``streak``: how many of the last runs moved the same
    way (signed: + up);
    all three from the margins ``(value - baseline) / tolerance`` (:func:`_drift`); None where
    no tolerance makes them meaningful."""

    case: str
    metric: str
    slice: str
    x: "np.ndarray"
    values: "np.ndarray"
    baselines: "np.ndarray"
    tolerances: "np.ndarray"
    statuses: tuple[str, ...]
    used: float | None
    moved: float | None
    streak: int
    flags: tuple[str, ...]

    @property
    def lower(self) -> "np.ndarray":
        """The tolerance band's lower edge per point: baseline - tolerance (NaN without a band)."""
        return self.baselines - self.tolerances

    @property
    def upper(self) -> "np.ndarray":
        return self.baselines + self.tolerances

    @property
    def drift(self) -> float:
        """How far it went, in tolerances: the larger of ``used`` and ``|moved|`` (0 unknown)."""
        return max(self.used or 0.0, abs(self.moved or 0.0))

    @property
    def label(self) -> str:
        return f"{self.case} {self.metric} [{self.slice}]"

    @property
    def family(self) -> bool:
        """A ``tile=worst`` / ``sub=worst`` row: each night's worst tile, a different tile (other
        baseline) from night to night."""
        return bool(_FAMILY.search(self.slice))

    def plotted(self) -> "Plotted":
        """What a chart draws: the values with their band ``baseline ± tolerance``, in the slice's
        units; a family row in tolerances instead (margin ``(value - baseline) / tolerance``, band
        -1 .. 1), since its raw value jumps from one tile's baseline to another's."""
        import numpy as np

        if not self.family:
            return Plotted(self.values, self.baselines, self.lower, self.upper, "")
        with np.errstate(divide="ignore", invalid="ignore"):
            margin = np.where(self.tolerances > 0, (self.values - self.baselines) / self.tolerances, np.nan)
        band = np.where(np.isfinite(margin), 1.0, np.nan)
        return Plotted(margin, band * 0.0, -band, band, "in tolerances: (value - baseline) / tolerance of each "
                                                          "night's worst tile")


@dataclass(frozen=True)
class Plotted:
    """A series as drawn: per point the y value, the baseline and the band's edges; ``unit``
    says what y is when it is not the slice's own value ("" then)."""

    values: "np.ndarray"
    baselines: "np.ndarray"
    lower: "np.ndarray"
    upper: "np.ndarray"
    unit: str


@dataclass(frozen=True)
class TrendView:
    """The answer: the runs of the window (oldest first), every matching series ranked (flagged
    first, then by drift), how many to show, the thresholds used and the seconds it took."""

    history: Path
    suite: str
    selection: Selection
    runs: "list[RunFile]"
    series: list[Series]
    top: int
    streak: int
    near: float
    seconds: float = 0.0
    rows: int = 0

    @property
    def shown(self) -> list[Series]:
        return self.series[: self.top]

    @property
    def flagged(self) -> list[Series]:
        return [s for s in self.series if s.flags]

    def flag_legend(self) -> list[tuple[str, str]]:
        return [(k, v.format(near=self.near, streak=self.streak, move=MIN_STREAK_MOVE)) for k, v in FLAG_TEXT.items()]

    def cap_note(self) -> str:
        """One line: how many series matched, how many are flagged and shown, and how to see the rest."""
        n, f = len(self.series), len(self.flagged)
        flagged = f"{f} flagged" if f else "none flagged"
        if n <= self.top:
            return f"{n} series match {self.selection.describe()}; {flagged}; showing all, most drift first"
        hidden = sum(1 for s in self.series[self.top:] if s.flags)
        more = f" ({hidden} flagged among them)" if hidden else ""
        return (f"{n:,} series match {self.selection.describe()}; {flagged}; showing the {self.top} that drifted "
                f"most, {n - self.top:,} not shown{more}: narrow the selection (-k, --metric, --slice) or raise --top")


def build_trend(history: str | Path, selection: Selection, *, top: int = 12, streak: int = 5, near: float = 0.5,
                max_rows: int = MAX_ROWS) -> TrendView:
    """Read the selected series of ``history`` and rank them (module docstring).

    ConfigError/InputError (exit 2) for a missing history or suite, an unreadable file, a bad
    pattern or threshold, no runs in the window, a selection matching nothing or more than
    ``max_rows`` rows."""
    from harness.run.history_scan import TooMany, run_files, scan, suites
    from harness.suite.selection import match_k

    if top < 1 or streak < 2 or not 0 < near < 1:
        raise ConfigError(f"--top {top}, --streak {streak}, --near {near}: expected top >= 1, streak >= 2, "
                          f"0 < near < 1")
    t0 = time.perf_counter()
    history = Path(history)
    suite = selection.suite or _only_suite(history, suites(history))
    runs = run_files(history, suite, since=selection.since, last=selection.last)
    where = f"history {history} (suite {suite}"
    if not runs:
        raise InputError(f"{where}): no runs{' since ' + selection.since if selection.since else ''}")
    case = (lambda c: match_k(selection.k, c)) if selection.k else None
    if selection.k:
        match_k(selection.k, "")  # a malformed expression is refused before any file is read
    try:
        table = scan(runs, case=case, metric=pattern_matcher(selection.metrics, "--metric"),
                     slice=pattern_matcher(selection.slices, "--slice"), max_rows=max_rows)
    except TooMany:
        raise InputError(f"{where}, {len(runs)} runs): {selection.describe()} matches more than {max_rows:,} "
                         f"values: narrow it with -k, --metric, --slice, --since or --last") from None
    if not table.num_rows:
        raise InputError(f"{where}, {len(runs)} runs): no series match {selection.describe()}")
    ranked = series_of(table, runs, streak=streak, near=near)
    return TrendView(history, suite, selection, runs, ranked, top, streak, near, time.perf_counter() - t0,
                     table.num_rows)


def _only_suite(history: Path, have: list[str]) -> str:
    if len(have) == 1:
        return have[0]
    raise ConfigError(f"history {history}: " + (f"holds suites {', '.join(have)}: pass --suite NAME" if have
                                                else "holds no runs (no suite=<name> folder)"))


def series_of(table: "pa.Table", runs: "list[RunFile]", *, streak: int = 5, near: float = 0.5) -> list[Series]:
    """The series in ``table`` (:func:`harness.run.history_scan.scan`'s rows of ``runs``), ranked:
    flagged first, then those seen in the last run, then by drift.  A series is flagged only when
    the last run of the window holds it (a tile kept only on the nights it failed is history)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    index = {r.run_id: i for i, r in enumerate(runs)}
    run_words, run_code = _codes(table["run_id"])
    x = np.array([index[w] for w in run_words], np.int64)[run_code]
    codes, words = zip(*(_codes(table[k])[::-1] for k in ("case", "metric", "slice")))
    order = np.lexsort((x, codes[2], codes[1], codes[0]))
    key = np.stack([c[order] for c in codes])
    cut = np.flatnonzero(np.r_[True, (key[:, 1:] != key[:, :-1]).any(axis=0), True])
    cols = {c: table[c].to_numpy().astype(float)[order] for c in ("value", "baseline", "tolerance")}
    status = np.asarray(pc.cast(table["status"], pa.string()).to_numpy(zero_copy_only=False), object)[order]
    x, last_run = x[order], len(runs) - 1
    out = []
    for a, b in zip(cut[:-1], cut[1:]):
        v, base, t = cols["value"][a:b], cols["baseline"][a:b], cols["tolerance"][a:b]
        statuses = tuple(status[a:b])
        used, moved, run, run_move = _drift(v, base, t)
        flags = _flags(statuses, used, run, run_move, streak, near) if x[b - 1] == last_run else ()
        out.append(Series(*(str(words[i][key[i, a]]) for i in range(3)), x[a:b], v, base, t, statuses, used, moved,
                          run, flags))
    return sorted(out, key=lambda s: (not s.flags, s.x[-1] != last_run, -s.drift, s.case, s.metric, s.slice))


def _codes(column: "pa.ChunkedArray") -> tuple["np.ndarray", "np.ndarray"]:
    """(distinct strings, each row's index into them) of a string column."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    enc = pc.dictionary_encode(column)
    enc = enc.combine_chunks() if isinstance(enc, pa.ChunkedArray) else enc
    words = np.asarray(enc.dictionary.to_pylist(), dtype=object)
    return words, enc.indices.to_numpy(zero_copy_only=False).astype(np.int64)


def _drift(v: "np.ndarray", b: "np.ndarray", t: "np.ndarray") -> tuple[float | None, float | None, int, float]:
    """(used, moved, streak, streak_move) of a series (see :class:`Series`), from its margins
    ``(value - baseline) / tolerance`` (points without one are left out): relative to the
    baseline of each night, so a rebake starts afresh and a ``tile=worst`` family row, whose
    tile changes from night to night, compares like with like."""
    import numpy as np

    with np.errstate(divide="ignore", invalid="ignore"):
        margin = (v - b) / t
    margin = margin[np.isfinite(margin)]
    have = np.flatnonzero(np.isfinite(v))
    used = None
    if len(have):
        tol, delta = t[have[-1]], v[have[-1]] - b[have[-1]]
        if math.isfinite(tol) and math.isfinite(delta):
            used = abs(delta) / tol if tol > 0 else (math.inf if delta else 0.0)
    if not len(margin):
        return used, None, 0, 0.0
    steps = np.sign(np.diff(margin))
    run = 0
    while run < len(steps) and steps[-1 - run] != 0 and steps[-1 - run] == steps[-1]:
        run += 1
    sign = int(steps[-1]) if run else 0
    return used, float(margin[-1] - margin[0]), run * sign, float(abs(margin[-1] - margin[-1 - run]))


def _flags(statuses: Sequence[str], used: float | None, run: int, run_move: float, streak: int,
           near: float) -> tuple[str, ...]:
    flags = []
    if statuses and statuses[-1] in GATING:
        flags.append("fail")
    elif used is not None and used > near:
        flags.append("near")
    if abs(run) >= streak and run_move >= MIN_STREAK_MOVE:
        flags.append("trend")
    return tuple(flags)


_FAMILY = re.compile(r"(^| )(tile|sub)=worst( |$)")
_HEAD = ("case", "metric", "slice", "runs", "last", "baseline ± tol", "used", "moved", "streak", "flags")


def table_rows(view: TrendView) -> list[tuple[str, ...]]:
    """The shown series as table cells (terminal and HTML alike)."""
    import numpy as np

    rows = []
    for s in view.shown:
        last = len(s.values) - 1
        band = f"{num(_f(s.baselines[last]))} ± {num(_f(s.tolerances[last]))}"
        used = "-" if s.used is None else ("inf" if math.isinf(s.used) else f"{s.used:.0%}")
        moved = "-" if s.moved is None else f"{s.moved:+.2f} tol"
        streak = f"{'up' if s.streak > 0 else 'down'} {abs(s.streak)}" if s.streak else "-"
        rows.append((s.case, s.metric, s.slice, str(int(np.isfinite(s.values).sum())),
                     num(_f(s.values[last])), band, used, moved, streak, " ".join(s.flags) or "-"))
    return rows


def _f(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def trend_table(view: TrendView) -> str:
    """The terminal view: what was read, the cap note, the table, the flags' meaning, the time."""
    first, last = view.runs[0], view.runs[-1]
    lines = [f"history {view.history}, suite {view.suite}: {len(view.runs)} runs, {first.created:%Y-%m-%d} -> "
             f"{last.created:%Y-%m-%d} ({first.run_id} .. {last.run_id})", view.cap_note(), ""]
    rows = [_HEAD, *table_rows(view)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(_HEAD))]
    right = {3, 4, 6, 7}
    for r in rows:
        cells = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))]
        lines.append("  ".join(cells).rstrip())
    lines += ["", "flags: " + "; ".join(f"{k} = {text}" for k, text in view.flag_legend()),
              f"read {view.rows:,} values of {len(view.runs)} runs in {view.seconds:.2f} s"]
    return "\n".join(lines)
