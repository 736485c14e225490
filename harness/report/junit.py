"""What a failing pytest item tells a CI's JUnit view: ``(name, value)`` pairs that the plugin adds
to the item's ``user_properties``, which ``pytest --junitxml`` writes as ``<property>`` elements.

Names are prefixed ``harness_`` and values are one-line strings, in the words every other view
uses (:mod:`harness.report.whatchanged`, :mod:`harness.report.text`):

* ``harness_stage``: the first stage whose image differs from its reference (only when one does);
* ``harness_diverged``: that stage and how much, or why none was found (when it was looked for);
* ``harness_changed``: the configuration differences from the baseline (``mask.dilate_px 2 → 6``;
  several joined by ``; ``);
* ``harness_check``, ``harness_slice``, ``harness_box``: the worst failing check as one line, its slice,
  and its pixel box ``[x0, y0, x1, y1]`` (ends exclusive; only for a check with a box);
* ``harness_artifact_<stage>``: each stage image, as a resolved file path (the image store's object
  or the run folder's PNG), else as recorded (a store reference whose object is gone).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from harness.report.text import format_check, worst_checks
from harness.report.whatchanged import change_text, diverged_text

if TYPE_CHECKING:
    from harness.comparing.engine import Check
    from harness.report.schema import CaseResult

__all__ = ["junit_properties"]


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def junit_properties(checks: Sequence[Check], case: CaseResult | None = None, run_dir: str | Path | None = None,
                     store_root: str | Path | None = None) -> list[tuple[str, str]]:
    """The properties of one failing item: its ``checks`` (the worst failing one is named), and, for
    a recorded case, its ``diverged``, ``changed`` and ``artifacts`` (resolved in ``run_dir`` and the
    image store at ``store_root``)."""
    out: list[tuple[str, str]] = []
    d = case.diverged if case is not None else None
    if d and d.get("stage"):
        out.append(("harness_stage", str(d["stage"])))
    if d:
        out.append(("harness_diverged", _one_line(diverged_text(d))))
    if case is not None and case.changed:
        out.append(("harness_changed", _one_line("; ".join(change_text(ch) for ch in case.changed))))
    worst = worst_checks(checks, 1)
    if worst:
        c = worst[0]
        out += [("harness_check", _one_line(format_check(c))), ("harness_slice", _one_line(c.slice))]
        if getattr(c, "box", None) is not None:
            out.append(("harness_box", str([int(v) for v in c.box])))
    if case is not None:
        out += _artifacts(case, run_dir, store_root)
    return out


def _artifacts(case: CaseResult, run_dir: str | Path | None, store_root: str | Path | None) -> list[tuple[str, str]]:
    from harness.run.store import resolve_artifact

    out = []
    for stage, value in case.artifacts.items():
        p = resolve_artifact(value, run_dir, store_root) if run_dir is not None else None
        out.append((f"harness_artifact_{stage}", str(p) if p is not None else str(value)))
    return out
