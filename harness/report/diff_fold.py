"""The checks of two runs joined per case, metric and slice, and folded over seeds, in Arrow:
the rows of :mod:`harness.report.diff`'s sections.

A nightly run holds millions of checks and most are unchanged, so everything up to choosing the
rows to show is columnar (pyarrow compute, a hash join, one group-by); only the shown rows become
:class:`~harness.report.diff.DiffRow` objects."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from harness.status import GATING

if TYPE_CHECKING:
    import pyarrow as pa

    from harness.report.diff_model import DiffRow

__all__ = ["Joined", "join_checks", "fold_checks"]

_KEYS = ["case", "vector", "pipeline", "seed", "metric", "slice"]
_NO_SEED = -1  # a distribution group's null seed, for the join (null keys never match)
_LISTED = ("seed", "status_a", "status_b", "value_a", "value_b", "sev_a", "sev_b", "row_a", "row_b")


@dataclass
class Joined:
    """Both runs' checks side by side (columns ``*_a`` / ``*_b``; a side's columns null where it
    lacks the check) and each run's ``box`` column, indexed by ``row_a`` / ``row_b`` (Arrow's join
    carries no list columns)."""

    table: pa.Table
    box_a: pa.ChunkedArray
    box_b: pa.ChunkedArray


def _prepare(t: pa.Table) -> tuple[pa.Table, pa.ChunkedArray]:
    import pyarrow as pa
    import pyarrow.compute as pc

    box = t.column("box") if "box" in t.column_names else pa.chunked_array([pa.nulls(t.num_rows)])
    t = t.drop_columns([c for c in ("box",) if c in t.column_names])
    t = t.set_column(t.schema.get_field_index("seed"), "seed", pc.fill_null(t.column("seed"), _NO_SEED))
    return t.append_column("row", pa.array(range(t.num_rows), pa.int64())), box


def join_checks(a: pa.Table, b: pa.Table) -> Joined:
    """A full outer join of two checks tables (:func:`harness.report.checks_table.read_checks`
    columns, ``box`` included) on case, vector, pipeline, seed, metric and slice."""
    ta, box_a = _prepare(a)
    tb, box_b = _prepare(b)
    joined = ta.join(tb, keys=_KEYS, join_type="full outer", left_suffix="_a", right_suffix="_b",
                     coalesce_keys=True)
    return Joined(joined, box_a, box_b)


def _severity(status, delta, tol):
    """:attr:`harness.comparing.checks.Check.severity`, column-wise: ``|delta| / tolerance``; inf for
    an error or a failed check without a tolerance; null for an absent check, a skip, or none to divide."""
    import pyarrow as pa
    import pyarrow.compute as pc

    ok = pc.fill_null(pc.and_(pc.is_valid(delta), pc.not_equal(tol, 0.0)), False)
    inf, null = pa.scalar(float("inf")), pa.scalar(None, pa.float64())
    base = pc.if_else(ok, pc.divide(pc.abs(delta), tol), pc.if_else(pc.equal(status, "fail"), inf, null))
    return pc.if_else(pc.equal(status, "error"), inf, pc.if_else(pc.equal(status, "skip"), null, base))


def _flags(t: pa.Table) -> pa.Table:
    """Per joined row: the unit (case id without its seed), newly failing / fixed / still failing,
    changed at all, both severities and ``move`` (``|severity_b − severity_a|``, null unless both finite)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    gating = pa.array(list(GATING))
    sa, sb = t.column("status_a"), t.column("status_b")
    ga = pc.fill_null(pc.is_in(sa, gating), False)
    gb = pc.fill_null(pc.is_in(sb, gating), False)
    va, vb = t.column("value_a"), t.column("value_b")
    both = pc.and_(pc.is_valid(sa), pc.is_valid(sb))
    value_moved = pc.or_(pc.fill_null(pc.not_equal(va, vb), False), pc.xor(pc.is_null(va), pc.is_null(vb)))
    # a check one run lacks is counted (only in A / only in B), never a move
    changed = pc.and_(both, pc.or_(pc.fill_null(pc.not_equal(sa, sb), False), value_moved))
    sev_a = _severity(sa, t.column("delta_a"), t.column("tolerance_a"))
    sev_b = _severity(sb, t.column("delta_b"), t.column("tolerance_b"))
    diff = pc.abs(pc.subtract(sev_b, sev_a))
    move = pc.if_else(pc.fill_null(pc.is_finite(diff), False), diff, pa.scalar(None, pa.float64()))
    i8 = pa.int8()
    cols = {"unit": pc.replace_substring_regex(t.column("case"), r"/s[0-9]+$", ""),
            "metric": t.column("metric"), "slice": t.column("slice"),
            "nf": pc.cast(pc.and_(pc.invert(ga), gb), i8), "fx": pc.cast(pc.and_(ga, pc.invert(gb)), i8),
            "sf": pc.cast(pc.and_(ga, gb), i8), "changed": pc.cast(changed, i8), "move": move,
            "only_a": pc.cast(pc.is_null(sb), i8), "only_b": pc.cast(pc.is_null(sa), i8),
            "seed": t.column("seed"), "status_a": sa, "status_b": sb, "value_a": va, "value_b": vb,
            "sev_a": sev_a, "sev_b": sev_b, "row_a": t.column("row_a"), "row_b": t.column("row_b")}
    return pa.table(cols)


def fold_checks(joined: Joined, *, moved_cap: int) -> tuple[dict[str, list[DiffRow]], dict[str, int]]:
    """The section rows (:data:`harness.report.diff.SECTIONS`), each sorted worst first, ``moved``
    capped at ``moved_cap``; and the number of folded rows per section before the cap, with
    ``only_in_a`` / ``only_in_b`` (passing checks one run lacks), ``unchanged`` and ``checks``
    (joined seed-level checks compared)."""
    import pyarrow.compute as pc

    from harness.report.diff_model import SECTIONS

    flags = _flags(joined.table)
    g = flags.group_by(["unit", "metric", "slice"]).aggregate(
        [("nf", "sum"), ("fx", "sum"), ("sf", "sum"), ("changed", "sum"), ("move", "max"), ("only_a", "sum"),
         ("only_b", "sum"),
         *((c, "list") for c in _LISTED)])
    is_nf = pc.greater(g.column("nf_sum"), 0)
    is_fx = pc.and_(pc.invert(is_nf), pc.greater(g.column("fx_sum"), 0))
    rest = pc.and_(pc.invert(is_nf), pc.invert(is_fx))
    is_sf = pc.and_(rest, pc.greater(g.column("sf_sum"), 0))
    is_mv = pc.and_(pc.and_(rest, pc.invert(is_sf)), pc.greater(g.column("changed_sum"), 0))
    masks = dict(zip(SECTIONS, (is_nf, is_fx, is_sf, is_mv)))
    counts = {s: _count(m) for s, m in masks.items()}
    left = pc.invert(pc.or_(pc.or_(is_nf, is_fx), pc.or_(is_sf, is_mv)))
    only_a = pc.and_(left, pc.greater(g.column("only_a_sum"), 0))
    only_b = pc.and_(pc.and_(left, pc.invert(only_a)), pc.greater(g.column("only_b_sum"), 0))
    counts.update(only_in_a=_count(only_a), only_in_b=_count(only_b))
    counts["unchanged"] = g.num_rows - sum(counts.values())
    counts["checks"] = joined.table.num_rows
    sections = {}
    for name, mask in masks.items():
        picked = g.filter(mask)
        if name == "moved":
            picked = picked.sort_by([("move_max", "descending")]).slice(0, moved_cap)
        sections[name] = _sorted(name, _rows(name, picked, joined))
    return sections, counts


def _count(mask) -> int:
    import pyarrow.compute as pc

    return int(pc.sum(pc.cast(mask, "int64")).as_py() or 0)


def _rows(section: str, g: pa.Table, joined: Joined) -> list[DiffRow]:
    """The folded rows of one section as :class:`DiffRow` objects, seeds in order, each with the
    slice's box (B's, else A's)."""
    from harness.report.diff_model import DiffRow, SeedDelta

    lists = {c: g.column(f"{c}_list").to_pylist() for c in _LISTED}
    keys = {c: g.column(c).to_pylist() for c in ("unit", "metric", "slice")}
    rows, want_a, want_b = [], [], []
    for i in range(g.num_rows):
        seeds = [SeedDelta(None if sd == _NO_SEED else sd, *rest[:6])
                 for sd, *rest in zip(*(lists[c][i] for c in _LISTED))]
        order = sorted(range(len(seeds)), key=lambda k: (seeds[k].seed is None, seeds[k].seed or 0))
        ra = [lists["row_a"][i][k] for k in order]
        rb = [lists["row_b"][i][k] for k in order]
        want_b.append(next((r for r in rb if r is not None), -1))
        want_a.append(next((r for r in ra if r is not None), -1))
        rows.append(DiffRow(keys["unit"][i], keys["metric"][i], keys["slice"][i], section,
                            [seeds[k] for k in order]))
    boxes_b = _take(joined.box_b, want_b)
    boxes_a = _take(joined.box_a, want_a)
    for row, bb, ba in zip(rows, boxes_b, boxes_a):
        box = bb or ba
        row.box = tuple(int(v) for v in box) if box else None
    return rows


def _take(column: pa.ChunkedArray, rows: list[int]) -> list:
    import pyarrow as pa

    if not rows:
        return []
    got = column.take(pa.array([max(r, 0) for r in rows], pa.int64())).to_pylist() if len(column) else [None] * len(rows)
    return [v if r >= 0 else None for v, r in zip(got, rows)]


def _neg(v: float | None) -> float:
    return -v if v is not None else 1.0  # None sorts after every real severity


def _sorted(section: str, rows: list[DiffRow]) -> list[DiffRow]:
    """Worst first: newly failing by B's severity (errors first), newly fixed by A's (so that
    ``diff B A`` lists them as ``diff A B`` lists its newly failing), still failing by how much
    the severity moved, moved by the move (already so ordered by the caller)."""
    def move(r: DiffRow) -> float:
        ds = [abs(s.severity_b - s.severity_a) for s in r.seeds
              if s.severity_a is not None and s.severity_b is not None
              and abs(s.severity_b) != float("inf") and abs(s.severity_a) != float("inf")]
        return max(ds) if ds else 0.0

    key = {"newly_failing": lambda r: (_neg(r.severity_b), -r.newly_failing, r.unit, r.metric, r.slice),
           "newly_fixed": lambda r: (_neg(r.severity_a), -r.newly_fixed, r.unit, r.metric, r.slice),
           "still_failing": lambda r: (-move(r), _neg(r.severity_b), r.unit, r.metric, r.slice),
           "moved": lambda r: (-move(r), r.unit, r.metric, r.slice)}[section]
    return sorted(rows, key=key)
