"""What a baseline change does, in words (``harness baselines diff``).

For each case whose baseline differs between two versions (two folders, two git revisions, the
working tree and ``HEAD``, or the stored baselines and what a bake of a run would write):

* the largest value changes, one per *slice group* (a metric at one band and mask region, all
  tiles and channels together), ranked by how far they move against the tolerance a run would
  allow (:func:`harness.comparing.engine.compare_paired`, default compare config), each said as
  a relative change or, for counts, angles and signed levels, as ``old → new`` in its unit::

      band=mid ring energy −93 %, anchors clipped 0 → 263 px, contrast −12 % at tile=r2c3

* the pipeline config differences (:func:`harness.report.whatchanged.change_text`);
* other record changes (environment, reference images, calibration);
* the approval that came with the new version (who, when, why, which run), when there is one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from harness.report.model import changed_params
from harness.report.whatchanged import change_text

__all__ = ["CaseDiff", "diff_case", "approval_text", "fold", "case_lines", "WORDS"]

# A metric in words (a slice group reads "band=mid ring energy"); others keep their name.
WORDS = {"band_power": "energy", "spectrum": "spectrum", "periodic": "periodic peaks", "contrast": "contrast",
         "mean": "mean", "chroma": "chroma", "hue": "hue", "detail": "detail", "blockiness": "blockiness",
         "seam_step": "seam step", "seam_profile": "seam profile", "seam_grad": "seam gradient",
         "anchor_clipped_px": "anchors clipped", "mask_coverage": "mask coverage", "mask_rejected": "mask rejected",
         "detect_recall": "detector recall", "detect_precision": "detector precision", "noise": "added noise",
         "grid": "grid pattern"}
# Said as a relative change: powers and amplitudes (never signed, a ratio is what the eye sees).
_RELATIVE_UNITS = ("code²", "JND")
_RELATIVE_METRICS = ("contrast", "chroma", "mask_coverage")
_NOTICED = 0.01  # a change under 1 % of its tolerance is float noise, not worth a word
_RECORD_KEYS = ("stages", "images", "environment", "spread", "selfcheck", "accepted_failing")


@dataclass
class CaseDiff:
    """One case's baseline change: ``status`` is ``changed``, ``new``, ``removed`` or ``unchanged``."""

    case: str
    status: str
    values: list[str] = field(default_factory=list)   # the largest value changes, in words
    config: list[str] = field(default_factory=list)   # stage.param old → new
    record: list[str] = field(default_factory=list)   # other parts of the record that changed
    approval: dict[str, Any] | None = None            # the new version's newest approval, when it brought one
    moved: int = 0                                    # slices whose value differs at all
    severity: float = 0.0                             # the largest change against its tolerance


def _group(metric: str, slice_: str) -> tuple[str, str]:
    """``(group label, where within it)`` of a slice: ``("band=mid ring", "tile=r2c3 ch=Cb")``."""
    label, where = [], []
    for part in slice_.split(" "):
        if part.startswith("band="):
            label.append(part)
        elif part.startswith("region="):
            label.append(part[7:])
        elif part != "all" and part != "ch=Y":
            where.append(part)
    return " ".join(label), " ".join(where)


def _number(v: float) -> str:
    return f"{v:.4g}".replace("-", "−")


def _amount(metric: str, old: float, new: float) -> str:
    """``−93 %`` or ``0 → 263 px``."""
    from harness.measuring.metrics import METRICS

    spec = METRICS.resolve(metric) if metric in METRICS else None
    unit = spec.unit if spec else ""
    relative = (unit in _RELATIVE_UNITS or metric in _RELATIVE_METRICS) and old != 0
    pct = 100.0 * (new - old) / abs(old) if relative else 0.0
    if relative and abs(pct) < 1000:  # beyond ten-fold, from next to nothing: old → new says more
        digits = f"{pct:+.0f}" if abs(pct) >= 10 else f"{pct:+.2g}"
        return f"{digits.replace('-', '−')} %"
    suffix = f" {unit}" if unit and unit != "1" else ""
    return f"{_number(old)} → {_number(new)}{suffix}"


def _value_changes(old: dict[str, Any], new: dict[str, Any], top: int) -> tuple[list[str], int, float]:
    """The ``top`` largest value changes in words (one per slice group), how many slices moved and
    the largest change against its tolerance."""
    from harness.comparing.engine import compare_paired
    from harness.measuring.result import Measurement

    a, b = Measurement.from_dict(old["measurement"]), Measurement.from_dict(new["measurement"])
    try:
        checks = compare_paired(a, b)
    except ValueError as exc:  # another image size or tile grid: nothing compares slice by slice
        return [str(exc)], 0, math.inf
    moved = [c for c in checks if c.value is not None and c.baseline is not None and c.value != c.baseline
             and not c.severity < _NOTICED]
    best: dict[tuple[str, str], Any] = {}
    for c in moved:
        key = (c.metric, _group(c.metric, c.slice)[0])
        if key not in best or c.severity > best[key].severity:
            best[key] = c
    ranked = sorted(best.values(), key=lambda c: (-c.severity if math.isfinite(c.severity) else -1e300, c.metric))
    out = []
    for c in ranked[:top]:
        label, where = _group(c.metric, c.slice)
        old_v = c.baseline if c.metric not in ("noise", "grid") else 0.0
        text = " ".join(x for x in (label, WORDS.get(c.metric, c.metric)) if x)
        out.append(f"{text} {_amount(c.metric, old_v, c.value)}" + (f" at {where}" if where else ""))
    errors = [c for c in checks if c.status == "error" and c.value is None]
    if errors:
        out.append(f"{len(errors)} slice(s) on one side only")
    return out, len(moved), max((c.severity for c in moved), default=0.0)


def _keyed(what: str, a: dict[str, Any], b: dict[str, Any], top: int = 3) -> str:
    """``what (k old → new, …)`` of two tables; stages added or dropped named as such."""
    keys = [k for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
    if keys and all(k not in a for k in keys):
        return f"{what} added ({', '.join(keys)})"
    if keys and all(k not in b for k in keys):
        return f"{what} dropped ({', '.join(keys)})"
    def num(v: Any) -> str:
        return f"{v:.6g}" if isinstance(v, float) else str(v)

    parts = [k if what == "reference images" else f"{k} {num(a.get(k))} → {num(b.get(k))}" for k in keys[:top]]
    return f"{what} ({', '.join(parts)}{', …' if len(keys) > top else ''})"


def _record_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """The record's other parts that differ, in words: stage numbers, reference images, environment."""
    out = []
    for key in _RECORD_KEYS:
        a, b = old.get(key) or None, new.get(key) or None
        if a == b:
            continue
        if key == "environment":
            a, b = a or {}, b or {}
            out.append(f"environment ({', '.join(k for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k))})")
        elif key == "images":
            out.append(_keyed("reference images", a or {}, b or {}, top=8))
        elif key == "stages":
            out.append(_keyed("stage numbers", a or {}, b or {}))
        else:
            out.append(key)
    return out


def _newest(doc: dict[str, Any] | None) -> dict[str, Any] | None:
    raw = (doc or {}).get("approvals")
    return raw[0] if isinstance(raw, list) and raw and isinstance(raw[0], dict) else None


def diff_case(case: str, old: dict[str, Any] | None, new: dict[str, Any] | None, *, top: int = 3) -> CaseDiff:
    """How ``new`` (None: removed) differs from ``old`` (None: new); documents in the in-memory form
    (:func:`harness.suite.baselines.document.read_document`)."""
    if new is None:
        return CaseDiff(case, "removed")
    brought = _newest(new) if _newest(new) != _newest(old) else None
    if old is None:
        return CaseDiff(case, "new", approval=brought)
    d = CaseDiff(case, "changed", approval=brought)
    if old.get("measurement") != new.get("measurement"):
        d.values, d.moved, d.severity = _value_changes(old, new, top)
    d.config = [change_text(ch) for ch in changed_params(old.get("pipeline") or {}, new.get("pipeline") or {})]
    d.record = _record_changes(old, new)
    if not (d.values or d.config or d.record or brought):
        d.status = "unchanged"
    return d


def approval_text(a: dict[str, Any] | None) -> str:
    """``approved by Ann <ann@x.org> at 2026-01-06T09:00:00Z: "why" (run R, git 1a2b3c4)``."""
    if not a:
        return ""
    why = f': "{a["reason"]}"' if a.get("reason") else " (no reason given)"
    run = [f"run {a['run']}"] if a.get("run") else []
    run += [f"git {str(a['git_sha'])[:10]}"] if a.get("git_sha") else []
    return f"approved by {a.get('by')} at {a.get('at')}{why}" + (f" ({', '.join(run)})" if run else "")


def fold(diffs: list[CaseDiff]) -> list[tuple[str, CaseDiff]]:
    """Seeds of one ``vector/pipeline`` whose change reads the same (status, config, record) folded
    into one entry: ``("microprint_dilation/classic (s1, s2, s3)", the seed that moved most)``."""
    groups: dict[tuple, list[CaseDiff]] = {}
    for d in diffs:
        group, _, seed = d.case.rpartition("/")
        kinds = tuple(r.split(" (")[0] for r in d.record)  # stage numbers differ a little per seed
        groups.setdefault((group or d.case, d.status, tuple(d.config), kinds), []).append(d)
    out = []
    for (group, *_), members in groups.items():
        if len(members) == 1:
            out.append((members[0].case, members[0]))
            continue
        worst = max(members, key=lambda d: d.severity)
        seeds = ", ".join(d.case.rpartition("/")[2] for d in members)
        label = f"{group} ({seeds}" + (f"; largest in {worst.case.rpartition('/')[2]})" if worst.values else ")")
        out.append((label, worst))
    return out


def case_lines(d: CaseDiff, label: str | None = None) -> list[str]:
    """The lines ``harness baselines diff`` prints for one case (or a folded group, ``label``)."""
    head = f"{d.status:9} {label or d.case}"
    if d.values:
        head += ": " + ", ".join(d.values)
    elif d.status == "changed":
        head += ": same values"
    lines = [head]
    if d.config:
        lines.append(f"{'':9} config: {', '.join(d.config)}")
    if d.record:
        lines.append(f"{'':9} record: {', '.join(d.record)}")
    if d.approval:
        lines.append(f"{'':9} {approval_text(d.approval)}")
    return lines
