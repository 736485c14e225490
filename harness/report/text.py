"""Checks as text, formatted once: the line a pytest failure, a CLI table and a summary show."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Iterable, Sequence

from harness.status import GATING

if TYPE_CHECKING:
    from harness.comparing.engine import Check

__all__ = ["num", "format_box", "format_check", "format_severity", "severity_line", "worst_checks", "check_lines",
           "table_header", "table_row"]


def num(v: float | None, width: int = 0) -> str:
    """A value with 4 significant digits; ``-`` for a missing one."""
    return f"{v:>{width}.4g}" if v is not None else f"{'-':>{width}}"


def format_box(box: Sequence[int] | None) -> str:
    """``@ x 224-288, y 192-256`` for a pixel box ``(x0, y0, x1, y1)`` (ends exclusive); ``""`` for none."""
    if box is None:
        return ""
    x0, y0, x1, y1 = box
    return f"@ x {x0}-{x1}, y {y0}-{y1}"


def format_check(c: Check) -> str:
    """One line: ``fail band_power [band=high tile=r7c9 ch=Y] @ x 224-288, y 192-256: 113 vs baseline 171
    (delta -58, tolerance 16)``.

    The ``@ x .., y ..`` part (pixels, ends exclusive) appears only for a check that has a box.
    A distribution-mode check adds its power: ``...; detects >= 5.3 with 64+64 seeds)`` (its
    ``min_detectable`` and ``seeds``; ``detects nothing`` when no drift could be seen); a group's
    ``power`` check reads ``fail power [hue rotation 6° needs 47 seeds, have 16]: smallest
    detectable 10.85 vs target 6``.
    """
    where = f" {format_box(c.box)}" if getattr(c, "box", None) is not None else ""
    seeds = getattr(c, "seeds", None)
    if seeds is not None and c.metric == "power":  # a group's power verdict: what it could see vs its target
        return f"{c.status} power [{c.slice}]: smallest detectable {num(c.value)} vs target {num(c.baseline)}"
    power = ""
    if seeds is not None and c.metric != "power" and c.status != "error":
        md = getattr(c, "min_detectable", None)
        power = (f"; detects >= {num(md)}" if md is not None and math.isfinite(md) else "; detects nothing") + \
            f" with {seeds[0]}+{seeds[1]} seeds"
    return (f"{c.status} {c.metric} [{c.slice}]{where}: {num(c.value)} vs baseline {num(c.baseline)} "
            f"(delta {num(c.delta)}, tolerance {num(c.tolerance)}{power})")


def format_severity(c: Check) -> str:
    """How far past its allowance a check lies: ``3.6× tolerance`` (``|delta| / tolerance``); ``""`` for a
    check without one (an error, an absolute check, a skip)."""
    sev = c.severity
    if not (math.isfinite(sev) and sev >= 0):
        return ""
    return f"{sev:.1f}× tolerance" if sev < 10 else f"{sev:.0f}× tolerance"


def severity_line(c: Check) -> str:
    """:func:`format_check` with the severity: ``fail band_power [band=high tile=r7c9 ch=Y] @ x 224-288,
    y 192-256: 113 vs baseline 171 (delta -58, tolerance 16) = 3.6× tolerance``."""
    sev = format_severity(c)
    return f"{format_check(c)} = {sev}" if sev else format_check(c)


def worst_checks(checks: Iterable[Check], limit: int | None = None, *, gating_only: bool = True) -> list[Check]:
    """Checks sorted worst first (errors, then by ``|delta| / tolerance``); only failing ones by default."""
    pool = [c for c in checks if c.status in GATING] if gating_only else list(checks)
    out = sorted(pool, key=lambda c: c.severity, reverse=True)
    return out if limit is None else out[:limit]


def table_header(indent: str = "      ") -> str:
    return (f"{indent}{'status':6} {'metric':12} {'slice':34} {'where (px)':22} {'value':>11} {'baseline':>11} "
            f"{'delta':>10} {'tol':>9} {'x tol':>6}")


def table_row(c: Check, indent: str = "      ") -> str:
    """One row under :func:`table_header`: ``where`` is ``x 224-288, y 192-256`` for a check with a box, else ``-``.

    ``x tol`` (the severity) stays the last field, so a row splits on whitespace.
    """
    sev = f"{c.severity:6.2f}" if math.isfinite(c.severity) and c.severity >= 0 else f"{'-':>6}"
    box = getattr(c, "box", None)
    where = format_box(box)[2:] if box is not None else "-"
    return (f"{indent}{c.status:6} {c.metric:12} {c.slice:34} {where:22} {num(c.value, 11)} {num(c.baseline, 11)} "
            f"{num(c.delta, 10)} {num(c.tolerance, 9)} {sev}")


def check_lines(checks: Sequence[Check], limit: int, *, where: str = "") -> list[str]:
    """The failing checks of one case as lines, worst first, with a pointer to the rest."""
    bad = worst_checks(checks)
    lines = [f"  {format_check(c)}" for c in bad[:limit]]
    if len(bad) > limit:
        lines.append(f"  ... {len(bad) - limit} more failing checks" + (f" in {where}" if where else ""))
    return lines
