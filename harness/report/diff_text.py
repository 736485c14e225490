"""``harness diff`` as text (terminal), diff.md and diff.json.

diff.json (``"format": "harness-diff/1"``)::

    {"format", "run_a": {"run_id", "path"}, "run_b": {...}, "failed": bool, "incomplete": [str],
     "environment": [{"key", "a", "b"}], "environment_same": ["device cpu", ...],
     "pipeline": [{"change": "mask.dilate_px 2 → 6", "units": ["vector/pipeline", ...]}], "notes": [str],
     "units": [{"unit", "status", "regressed", "fixed", "cases": [{"seed", "a", "b"}], "newly_failing",
                "newly_fixed", "config": [str], "first_image_change", "diverged_a", "diverged_b", "error_b", "worst_seed",
                "images": [{"stage", "seed", "a", "b", "difference", "note"}]}],
     "counts": {"newly_failing", "newly_fixed", "still_failing", "moved", "only_in_a", "only_in_b",
                "unchanged", "checks"},
     "rows": [ROW, ...]}

``rows`` are the sections in order (every newly failing, newly fixed and still failing row; the
largest moves, capped); a ROW is :meth:`harness.report.diff.DiffRow.to_dict`: ``unit, metric,
slice, section, regressed, seeds, newly_failing, newly_fixed, status`` (``pass → fail in 2/3
seeds``), ``change`` ({median, min, max} of B − A over the seeds), ``severity_a``/``severity_b``
(worst ``|delta| / tolerance`` over the seeds, ``"inf"`` for an error), ``box`` and ``per_seed``.
``counts`` are folded rows per section before any cap (``only_in_a``/``only_in_b``: passing checks
the other run lacks, counted only), ``checks`` the seed-level checks compared.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from harness.fsio import atomic_write_text
from harness.report.diff import SECTIONS, DiffResult, DiffRow
from harness.report.text import format_box

__all__ = ["TITLES", "format_diff", "diff_doc", "diff_markdown", "write_diff_text", "row_change", "row_severity"]

TITLES = {"newly_failing": "newly failing", "newly_fixed": "newly fixed", "still_failing": "still failing",
          "moved": "moved within tolerance"}


def _sev(v: float | None) -> str:
    return "-" if v is None else "err" if math.isinf(v) else f"{v:.2f}"


def row_severity(r: DiffRow) -> str:
    """``0.00 → 255.26``: the worst ``|delta| / tolerance`` over the seeds, A → B."""
    return f"{_sev(r.severity_a)} → {_sev(r.severity_b)}"


def row_change(r: DiffRow) -> str:
    """``+317.6 [+317.6..+317.6]``: B − A over the seeds, median [min..max]; ``-`` without values."""
    ch = r.change
    if ch is None:
        return "-"
    med, lo, hi = ch
    return f"{med:+.4g}" + (f" [{lo:+.4g}..{hi:+.4g}]" if r.n_seeds > 1 else "")


def _row_line(r: DiffRow) -> str:
    where = f" {format_box(r.box)}" if r.box else ""
    mark = "!" if r.regressed else " "
    return (f"{mark} {r.unit}  {r.metric} [{r.slice}]{where}  {r.status}  B−A {row_change(r)}  "
            f"× tol {row_severity(r)}")


def _head(res: DiffResult) -> list[str]:
    cfg = res.config
    lines = [f"diff {res.run_a} → {res.run_b}   (A: {res.dir_a}, B: {res.dir_b})"]
    lines += [f"! {line}; this diff is no verdict" for line in res.incomplete]
    if cfg is None:
        return lines
    env = "; ".join(f"{k} {a} → {b}" for k, a, b in cfg.environment[:8])
    more = f" (+{len(cfg.environment) - 8} more)" if len(cfg.environment) > 8 else ""
    lines.append(f"environment: {env + more if env else 'no difference'}"
                 + (f"; same: {', '.join(cfg.same)}" if cfg.same else ""))
    if cfg.pipeline:
        lines.append("pipeline config A → B:")
        for text, units in cfg.pipeline[:10]:
            names = ", ".join(units[:4]) + (f" (+{len(units) - 4})" if len(units) > 4 else "")
            lines.append(f"  {text}  in {len(units)} vector × pipeline(s): {names}")
    else:
        lines.append("pipeline config A → B: no difference")
    lines += [f"  note: {n}" for n in cfg.notes]
    return lines


def _unit_lines(res: DiffResult, limit: int) -> list[str]:
    changed = [u for u in res.units if u.changed]
    lines = [f"cases by vector × pipeline ({len(changed)} changed, {len(res.units) - len(changed)} unchanged):"]
    for u in changed[:limit]:
        mark = "!" if u.regressed or u.newly_failing else " "
        bits = [f"{u.newly_failing} check(s) newly failing"] if u.newly_failing else []
        bits += [f"{u.newly_fixed} newly fixed"] if u.newly_fixed else []
        bits += [f"first differing image: {u.first_image_change}"] if u.first_image_change else []
        bits += [f"B: {u.diverged_b}"] if u.diverged_b else []
        bits += [f"B error: {u.error_b}"] if u.error_b else []
        lines.append(f"{mark} {u.unit}  {u.status}" + (f"  ({'; '.join(bits)})" if bits else ""))
    if len(changed) > limit:
        lines.append(f"  ... {len(changed) - limit} more changed vector × pipelines")
    return lines


def summary_line(res: DiffResult) -> str:
    c = res.counts
    return (f"{len(res.regressed_units)} regression(s): {c.get('newly_failing', 0)} check(s) newly failing in "
            f"{len(res.regressed_units)} vector × pipeline(s); {c.get('newly_fixed', 0)} newly fixed, "
            f"{c.get('still_failing', 0)} still failing, {c.get('moved', 0)} moved within tolerance, "
            + "".join(f"{c[k]} only in {k[-1].upper()}, " for k in ("only_in_a", "only_in_b") if c.get(k))
            + f"{c.get('unchanged', 0)} unchanged ({c.get('checks', 0)} checks compared, seeds folded)")


def format_diff(res: DiffResult, limit: int = 30) -> str:
    """The terminal view: config differences, then vector × pipelines, then each section worst
    first (``limit`` rows each), then the counts."""
    lines = _head(res) + _unit_lines(res, limit)
    for name in SECTIONS:
        rows, total = res.sections[name], res.counts.get(name, 0)
        if not total:
            lines.append(f"{TITLES[name]}: none")
            continue
        lines.append(f"{TITLES[name]}: {total} check(s) (vector × pipeline × metric + slice, seeds folded)"
                     + (", worst first" if name != "moved" else ", largest move first"))
        lines += [_row_line(r) for r in rows[:limit]]
        if total > min(limit, len(rows)):
            lines.append(f"  ... {total - min(limit, len(rows))} more ({'diff.json' if name != 'moved' else 'counted'}"
                         f"; --limit N shows more)")
    lines.append(summary_line(res))
    return "\n".join(lines)


def diff_doc(res: DiffResult, images: dict[str, list[dict[str, Any]]] | None = None) -> dict[str, Any]:
    """diff.json's document (the shape in this module's docstring)."""
    cfg = res.config
    units = [{"unit": u.unit, "status": u.status, "regressed": u.regressed, "fixed": u.fixed,
              "cases": [{"seed": s, "a": a, "b": b} for s, a, b in u.cases],
              "newly_failing": u.newly_failing, "newly_fixed": u.newly_fixed, "config": list(u.config),
              "first_image_change": u.first_image_change, "diverged_a": u.diverged_a, "diverged_b": u.diverged_b,
              "error_b": u.error_b or None,
              "worst_seed": u.worst_seed, "images": (images or {}).get(u.unit, [])} for u in res.units]
    return {"format": "harness-diff/1", "run_a": {"run_id": res.run_a, "path": str(res.dir_a)},
            "run_b": {"run_id": res.run_b, "path": str(res.dir_b)}, "failed": res.failed,
            "incomplete": list(res.incomplete),
            "environment": [{"key": k, "a": a, "b": b} for k, a, b in (cfg.environment if cfg else [])],
            "environment_same": list(cfg.same) if cfg else [],
            "pipeline": [{"change": t, "units": list(us)} for t, us in (cfg.pipeline if cfg else [])],
            "notes": list(cfg.notes) if cfg else [], "units": units, "counts": dict(res.counts),
            "rows": [r.to_dict() for r in res.rows]}


def _md(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def diff_markdown(res: DiffResult, limit: int = 50) -> str:
    """diff.md: the same facts as the terminal view, as GitHub markdown tables."""
    out = [f"# harness diff `{_md(res.run_a)}` → `{_md(res.run_b)}`", ""]
    out += [f"> **{_md(line)}**: this diff is no verdict" for line in res.incomplete]
    out += ["```", *_head(res)[1 + len(res.incomplete):], "```", "", "## Vector × pipeline", "",
            "| | vector × pipeline | cases A → B | newly failing | newly fixed | first differing image | B diverged |",
            "|---|---|---|---:|---:|---|---|"]
    for u in [u for u in res.units if u.changed][:limit]:
        out.append(f"| {'❌' if u.regressed or u.newly_failing else ''} | {_md(u.unit)} | {_md(u.status)} | "
                   f"{u.newly_failing} | {u.newly_fixed} | {_md(u.first_image_change or '')} | {_md(u.diverged_b)} |")
    for name in SECTIONS:
        rows, total = res.sections[name], res.counts.get(name, 0)
        out += ["", f"## {TITLES[name].capitalize()}: {total}", ""]
        if not rows:
            continue
        out += ["| vector × pipeline | metric | slice | box (px) | seeds A → B | B − A median [min..max] | × tol A → B |",
                "|---|---|---|---|---|---|---|"]
        out += [f"| {_md(r.unit)} | {_md(r.metric)} | {_md(r.slice)} | {_md(format_box(r.box)[2:]) or '-'} | "
                f"{_md(r.status)} | {_md(row_change(r))} | {_md(row_severity(r))} |" for r in rows[:limit]]
        if total > min(limit, len(rows)):
            out.append(f"\n… {total - min(limit, len(rows))} more")
    out += ["", f"**{_md(summary_line(res))}**", ""]
    return "\n".join(out)


def write_diff_text(res: DiffResult, out: Path, images: dict[str, list[dict[str, Any]]] | None = None) -> list[Path]:
    """diff.json and diff.md under ``out`` (created), each written atomically."""
    out.mkdir(parents=True, exist_ok=True)
    pj, pm = out / "diff.json", out / "diff.md"
    atomic_write_text(pj, json.dumps(diff_doc(res, images), indent=1, ensure_ascii=False, allow_nan=False) + "\n")
    atomic_write_text(pm, diff_markdown(res))
    return [pj, pm]

