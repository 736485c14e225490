"""What changed between a case's baseline and its run, in words shared by every view (terminal,
summary.md, index.html, JUnit properties, ``harness diff``).

* configuration: a case's ``changed`` (:func:`harness.report.model.changed_params`), one
  ``stage.param old → new`` per difference (:func:`change_text`);
* images: a case's ``diverged`` (:class:`harness.report.format_v2.Diverged`), the first stage whose
  output differs from its reference image and by how much (:func:`diverged_text`).
"""

from __future__ import annotations

from typing import Any

from harness.report.model import Report

__all__ = ["change_text", "run_changes", "diverged_text", "stage_label"]


def change_text(ch: dict[str, Any]) -> str:
    """One configuration difference from a case's ``changed``: ``mask.dilate_px 2 → 6``."""
    return f"{ch.get('stage')}.{ch.get('param')} {ch.get('baseline')} → {ch.get('run')}"


def run_changes(report: Report) -> list[tuple[str, int, list[str]]]:
    """The run's configuration differences from its baselines, most cases first: ``(change, number of
    cases, their statuses)``."""
    seen: dict[str, list[str]] = {}
    for c in report.cases:
        for ch in c.changed:
            seen.setdefault(change_text(ch), []).append(c.status)
    return sorted(((t, len(st), sorted(set(st))) for t, st in seen.items()), key=lambda x: -x[1])


def stage_label(name: str) -> str:
    """An artifact name in words: ``mask_mask`` → ``mask's mask``, ``upscale_guide`` → ``upscale's guide``;
    a stage's own image keeps its name."""
    for part in ("mask", "guide"):
        stage, sep, tail = name.rpartition(f"_{part}")
        if sep and not tail and stage:
            return f"{stage}'s {part}"
    return name


def diverged_text(d: dict[str, Any] | None) -> str:
    """A case's ``diverged`` in words: ``first diverging stage: inpaint (mean |Δ| 3.1 %, max 0.82,
    12.5 % of pixels in [10, 4, 90, 60])``; for a stage without numbers (one side has no image, the
    sizes differ) its ``note`` follows; its ``note`` alone when no stage diverged; "" when not looked for."""
    if not d:
        return ""
    if not d.get("stage"):
        return str(d.get("note") or "no stage diverged from its reference image")
    parts = []
    if d.get("mean_abs") is not None:
        parts.append(f"mean |Δ| {100 * d['mean_abs']:.2g} %")
    if d.get("max_abs") is not None:
        parts.append(f"max {d['max_abs']:.2g}")
    if d.get("changed_fraction") is not None:
        where = f" in {list(d['box'])}" if d.get("box") else ""
        parts.append(f"{100 * d['changed_fraction']:.3g} % of pixels{where}")
    how = f" ({', '.join(parts)})" if parts else (f": {d['note']}" if d.get("note") else "")
    return f"first diverging stage: {stage_label(str(d['stage']))}{how}"
