"""Absolute checks: the vector's ``[expect]`` table, and whether every stage did something.

A baseline records what a pipeline *did*; comparing with it says whether that changed,
not whether it was right.  A baseline baked from a detector that missed the watermark,
or from a mask the coverage gate rejected, blesses a case in which nothing was removed.
The checks made here are **absolute**: they are never compared with a baseline, no
baseline and no ``[[tolerances]]`` rule can change their status (their metric names,
``expect`` and ``stage_effect``, are deliberately not in the metric registry, so a suite
cannot name them), and they fail a case that matches its baseline exactly.

They are ordinary :class:`~harness.comparing.engine.Check` rows (plus an optional
``note``, a sentence saying what happened), so every view -- the run table, report.json,
checks.csv, the pytest message, summary.md -- shows them.  Columns: ``value`` is what
happened, ``baseline`` the required bound, ``tolerance`` 0 (a hard bound) or, for
``anchors_survive``, the allowance; ``status`` ``fail`` when violated.

``expect`` -- the vector's ``[expect]`` keys (``slice`` starts with the key):

``min_detect_recall stage=detect``
    pixel recall of the detect stage's mask against the vector's ground-truth overlay
    mask >= ``min_detect_recall`` (default :data:`DEFAULT_MIN_DETECT_RECALL`), when the
    pipeline has a detect stage and the vector an overlay.
``max_mask_coverage stage=mask``
    the fill region handed to inpaint (mask >= 0.5, 0 when the mask was rejected) covers
    at most ``max_mask_coverage`` of the image (default 0.12).
``mask_rejected stage=mask``
    only when the key is set: whether the mask stage rejected the mask, as expected.
``min_anchor_gap_px anchor=i``
    the Euclidean distance (px, at the vector's scale) from anchor ``i`` to the nearest
    fill-region pixel >= ``min_anchor_gap_px``: a fill pixel touching the anchor is 1 px
    away, one overlapping it 0.  ``skip`` when nothing was filled.
``anchors_survive anchor=i band=high+top``
    anchor ``i`` still holds its fine texture (see :func:`anchor_retention`).
``upscale stage=upscale``
    the output is ``upscale`` times the vector's size on both axes.

``stage_effect`` -- one per stage the pipeline names, ``slice`` ``stage=<s> effect=<what
happened>``; ``value`` how much the stage changed (0: nothing), ``baseline`` 0 (1 for
upscale, a scale factor), failing when a stage did nothing it should have done:

========  ===========================================  ============================
stage     effects (passing)                            effects (failing)
========  ===========================================  ============================
generate  ``generated``; ``passthrough`` (the vector   ``blank`` (a prompt vector
          has its own source)                          got the grey placeholder)
detect    ``found``; ``nothing`` when the vector has   ``nothing`` with an overlay
          no overlay to find                           to find
mask      ``kept``; ``rejected``/``empty`` when the    ``rejected`` (coverage gate),
          vector expects it (``mask_rejected = true``  ``empty``
          or nothing to remove)
inpaint   ``filled``; ``skipped`` when the rejection   ``skipped``, ``unchanged``
          was expected                                 (a non-empty fill region left
                                                       bit-identical)
denoise   ``changed``; ``off`` (strength 0)            ``unchanged`` (strength > 0,
                                                       identical bytes)
upscale   ``scaled``                                   ``unchanged`` (same size)
========  ===========================================  ============================

Cheap by design: equality tests on arrays the run already holds, one distance transform
at the vector's size, and four inverse FFTs at the vector's size for the anchors.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np

from harness.comparing.engine import Check
from harness.measuring.anchors import ANCHOR_BANDS, ANCHOR_MIN_RETAINED, NOISE_K, RESAMPLING, anchor_retention

__all__ = ["EXPECT_METRIC", "STAGE_EFFECT_METRIC", "DEFAULT_MIN_DETECT_RECALL", "ANCHOR_MIN_RETAINED", "ANCHOR_BANDS",
           "NOISE_K", "RESAMPLING", "ExpectationCheck", "StageLog", "evaluate", "anchor_retention", "failure_note",
           "is_expectation"]

EXPECT_METRIC = "expect"
STAGE_EFFECT_METRIC = "stage_effect"

# A detector that finds less than half of the overlay's pixels has missed it (a word or
# more of a caption, most of a watermark); above that, partial misses along glyph edges
# are what the mask stage's dilation is for.  Vectors whose removal must be complete
# state a stricter bound (the smoke vectors: 0.9).
DEFAULT_MIN_DETECT_RECALL = 0.5

_HAS_BOX = "box" in {f.name for f in dataclasses.fields(Check)}


@dataclass(frozen=True)
class ExpectationCheck(Check):
    """A :class:`Check` that was not compared with a baseline, with a sentence saying what happened."""

    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out.pop("note", None)
        if self.note:
            out["note"] = self.note
        return out


def is_expectation(c: Check) -> bool:
    """True for an absolute check made here (by metric name, so it also holds for a reloaded report)."""
    return c.metric in (EXPECT_METRIC, STAGE_EFFECT_METRIC)


def _check(metric: str, slice_: str, value: float | None, baseline: float | None, ok: bool | None, note: str,
           tolerance: float = 0.0, box: tuple[int, int, int, int] | None = None) -> ExpectationCheck:
    """``ok=None`` is a ``skip`` (nothing to judge)."""
    status = "skip" if ok is None else ("pass" if ok else "fail")
    delta = value - baseline if value is not None and baseline is not None else None
    kw: dict[str, Any] = {"box": box} if (_HAS_BOX and box is not None) else {}
    return ExpectationCheck(metric=metric, slice=slice_, value=value, baseline=baseline, delta=delta,
                            tolerance=tolerance, status=status, note=note, **kw)


def _pct(x: float) -> str:
    return f"{100.0 * x:.1f}%"


# --- what the stages did, recorded while the case runs ---------------------------------------------------------------

@dataclass
class StageLog:
    """What each stage of one case did, recorded by :func:`~harness.run.case.execute_case`.

    Plain data (picklable): per stage an ``effect`` word, the ``value`` (how much it
    changed), whether that is a failure (``ok``; ``None`` = decided by the vector's
    expectations), a note; plus the facts the ``[expect]`` checks need.
    """

    effects: dict[str, dict[str, Any]] = field(default_factory=dict)
    recall: float | None = None  # detect's pixel recall against the ground truth
    truth_px: int = 0  # ground-truth overlay pixels (>= 0.5)
    rejected: str | None = None  # the mask stage's reason, when it rejected the mask
    attempted_coverage: float | None = None  # the mask stage's coverage, kept or not
    fill: np.ndarray | None = None  # (H, W) bool: the region handed to inpaint
    has_mask_stage: bool = False

    def _set(self, stage: str, effect: str, value: float, ok: bool | None, note: str) -> None:
        self.effects[stage] = {"effect": effect, "value": float(value), "ok": ok, "note": note}

    def generated(self, backend: str, clean: np.ndarray, anchors: np.ndarray | None) -> None:
        """A prompt vector's base image: ``blank`` when it is still the grey placeholder."""
        keep = ~anchors if anchors is not None else np.ones(clean.shape[:2], bool)
        changed = float(np.mean(np.any(clean[keep] != 128, axis=-1))) if keep.any() else 0.0
        if changed > 0:
            self._set("generate", "generated", changed, True, f"generate ({backend}) made the base image")
        else:
            self._set("generate", "blank", 0.0, False, f"generate ({backend}) returned the blank grey placeholder")

    def skipped(self, stage: str, reason: str | None = None) -> None:
        """A stage the case skipped (today: inpaint without a mask); the reason defaults to why there was none."""
        if reason is None:
            if self.rejected:
                reason = f"the mask was rejected ({self.rejected})"
            elif self.effects.get("detect", {}).get("effect") == "nothing":
                reason = "detect found nothing"
            else:
                reason = "no detect or mask stage made a mask"
        self._set(stage, "skipped", 0.0, None, f"{stage} did not run: {reason}")

    def record(self, stage: str, backend: str, params: dict[str, Any], image: np.ndarray, mask_in: np.ndarray | None,
               truth: np.ndarray | None, out_img: np.ndarray | None, out_mask: np.ndarray | None,
               info: dict[str, Any]) -> None:
        """One stage's result: ``image``/``mask_in`` went in, ``out_img``/``out_mask``/``info`` came out."""
        h, w = image.shape[:2]
        if stage == "generate":  # in the stage loop only for vectors with their own source
            self._set(stage, "passthrough", 0.0, True, f"generate ({backend}): the vector's own source image")
        elif stage == "detect":
            from harness.stages.detect import detection_scores

            found = out_mask is not None and np.asarray(out_mask).shape == (h, w) and bool(np.any(out_mask >= 0.5))
            px = int(np.count_nonzero(np.asarray(out_mask) >= 0.5)) if found else 0
            if truth is not None:
                self.truth_px = int(np.count_nonzero(np.asarray(truth) >= 0.5))
                self.recall = float(detection_scores(out_mask if found else None, truth).get("recall", 1.0))
            if found:
                self._set(stage, "found", px / (h * w), True,
                          f"detect ({backend}) found {px} px ({_pct(px / (h * w))} of the image)")
            else:
                self._set(stage, "nothing", 0.0, None, f"detect ({backend}) found nothing")
            self._fill(out_mask, info.get("rejected"))
        elif stage == "mask":
            self.has_mask_stage = True
            rejected = info.get("rejected")
            empty = out_mask is None or not bool(np.any(np.asarray(out_mask) >= 0.5))
            cov = info.get("coverage")
            self.attempted_coverage = float(cov) if isinstance(cov, (int, float)) else None
            if rejected or empty:
                reason = str(rejected) if rejected else "empty mask"
                self.rejected = reason
                effect = "empty" if reason == "empty mask" else "rejected"
                self._set(stage, effect, 0.0, None, f"mask ({backend}) rejected the mask ({reason})")
            else:
                fill = float(np.mean(np.asarray(out_mask) >= 0.5))
                self._set(stage, "kept", fill, True, f"mask ({backend}) kept a fill region of {_pct(fill)}")
            self._fill(out_mask, rejected)
        elif stage == "inpaint":
            region = np.asarray(mask_in) >= 0.5 if mask_in is not None else np.zeros((h, w), bool)
            n = int(region.sum())
            if n == 0:  # nothing to fill: judged like a skipped inpaint
                self._set(stage, "skipped", 0.0, None, f"inpaint ({backend}) had an empty fill region")
                return
            if out_img is None or out_img.shape != image.shape:
                self._set(stage, "unchanged", 0.0, False, f"inpaint ({backend}) returned no image of the input's size")
                return
            changed = int(np.count_nonzero(np.any(out_img[region] != image[region], axis=-1)))
            if changed:
                self._set(stage, "filled", changed / n, True,
                          f"inpaint ({backend}) changed {_pct(changed / n)} of the {n} px fill region")
            else:
                self._set(stage, "unchanged", 0.0, False,
                          f"inpaint ({backend}) left all {n} px of the fill region unchanged")
        elif stage == "denoise":
            strength = params.get("strength")
            label = f"denoise ({backend}" + (f", strength {strength:g})" if isinstance(strength, (int, float)) else ")")
            if isinstance(strength, (int, float)) and strength == 0:
                self._set(stage, "off", 0.0, True, f"{label} is off by configuration")
                return
            same = out_img is None or (out_img.shape == image.shape and np.array_equal(out_img, image))
            if same:
                self._set(stage, "unchanged", 0.0, False, f"{label} returned its input unchanged")
            else:
                changed = float(np.mean(np.any(out_img != image, axis=-1))) if out_img.shape == image.shape else 1.0
                self._set(stage, "changed", changed, True, f"{label} changed {_pct(changed)} of the pixels")
        elif stage == "upscale":
            oh, ow = out_img.shape[:2] if out_img is not None else (h, w)
            scale = min(oh / h, ow / w)
            if (oh, ow) != (h, w) and scale > 1:
                self._set(stage, "scaled", scale, True, f"upscale ({backend}) {w}x{h} -> {ow}x{oh}")
            else:
                self._set(stage, "unchanged", scale, False, f"upscale ({backend}) returned a {ow}x{oh} image "
                                                             f"from the {w}x{h} input")
        else:  # a stage this module does not know: recorded, never judged
            self._set(stage, "ran", 1.0, True, f"{stage} ({backend}) ran")

    def _fill(self, out_mask: np.ndarray | None, rejected: Any) -> None:
        m = None if rejected or out_mask is None else np.asarray(out_mask) >= 0.5
        self.fill = m if m is not None and m.any() else None


# --- the checks --------------------------------------------------------------------------------------------------

def _anchor_name(i: int, an: dict[str, Any]) -> str:
    return f"anchor {i} ({an.get('kind', 'anchor')})"


def _scaled_box(box: Sequence[int], sy: float, sx: float) -> tuple[int, int, int, int]:
    x0, y0, x1, y1 = box
    return round(x0 * sx), round(y0 * sy), round(x1 * sx), round(y1 * sy)


def evaluate(vector, stage_names: Sequence[str], backends: dict[str, str], log: StageLog, clean: np.ndarray,
             output: np.ndarray) -> list[ExpectationCheck]:
    """The absolute checks of one executed case (see the module docstring).

    ``stage_names``: the pipeline's stages in order; ``backends``: stage -> backend name;
    ``clean``: the vector's clean source render (``Rendered.clean``); ``output``: the final image.
    """
    ex = dict(vector.expect)
    has_overlay = log.truth_px > 0 or bool(vector.overlays)
    masking = "detect" in stage_names or "mask" in stage_names
    checks = _stage_effects(stage_names, log, has_overlay, ex.get("mask_rejected"),
                            not has_overlay and log.fill is None)
    if "detect" in stage_names and has_overlay and log.recall is not None:
        lo = float(ex.get("min_detect_recall", DEFAULT_MIN_DETECT_RECALL))
        ok = log.recall >= lo
        checks.append(_check(EXPECT_METRIC, "min_detect_recall stage=detect", log.recall, lo, ok,
                             f"detect recall {log.recall:.3f} {'>=' if ok else '<'} min_detect_recall {lo:g}"))
    if masking:
        checks += _mask_checks(vector, log, ex.get("mask_rejected"))
    h, w = vector.size
    oh, ow = output.shape[:2]
    sy, sx = oh / h, ow / w
    if "min_anchor_gap_px" in ex and vector.anchors and masking:
        checks += _anchor_gaps(vector, log, float(ex["min_anchor_gap_px"]), sy, sx)
    if ex.get("anchors_survive") and vector.anchors:
        checks += _anchors_survive(vector, clean, output, backends.get("upscale", "lanczos"), sy, sx)
    if "upscale" in ex:
        want = float(ex["upscale"])
        ok = oh == h * want and ow == w * want
        value = sx if sx == sy else min(sx, sy)
        checks.append(_check(EXPECT_METRIC, "upscale stage=upscale", value, want, ok,
                             f"the output is {ow}x{oh}, {'' if ok else 'not '}{want:g}x the {w}x{h} vector"))
    return checks


def _stage_effects(stage_names: Sequence[str], log: StageLog, has_overlay: bool, expect_rejected: Any,
                   nothing_to_remove: bool) -> list[ExpectationCheck]:
    """``stage_effect``: one check per named stage that recorded its effect."""
    checks = []
    for stage in stage_names:
        eff = log.effects.get(stage)
        if eff is None:
            continue
        ok, note, effect = eff["ok"], eff["note"], eff["effect"]
        if ok is None:  # decided by what the vector expects
            if stage == "detect":
                ok = not has_overlay
                note += ", and the vector has no overlay to find" if ok else \
                    f": the overlay ({log.truth_px} px) was not found"
            elif stage == "mask":
                ok = bool(expect_rejected) or nothing_to_remove
                if expect_rejected:
                    note += ", as the vector expects (mask_rejected = true)"
                elif nothing_to_remove:
                    note += ": there is nothing to remove"
            elif stage == "inpaint":
                ok = bool(expect_rejected) or nothing_to_remove
                if expect_rejected:
                    note += ", as the vector expects (mask_rejected = true)"
            else:
                ok = False
        base = 1.0 if stage == "upscale" else 0.0
        checks.append(_check(STAGE_EFFECT_METRIC, f"stage={stage} effect={effect}", eff["value"], base, ok, note))
    return checks


def _mask_checks(vector, log: StageLog, expect_rejected: Any) -> list[ExpectationCheck]:
    """``max_mask_coverage`` and, when the vector says, ``mask_rejected``."""
    hi = float(vector.max_mask_coverage)
    cov = float(log.fill.mean()) if log.fill is not None else 0.0
    ok = cov <= hi
    what = (f"the fill region covers {cov:.3f} of the image" if log.fill is not None
            else "nothing was filled (no mask reached inpaint)")
    checks = [_check(EXPECT_METRIC, "max_mask_coverage stage=mask", cov, hi, ok,
                     f"{what} {'<=' if ok else '>'} max_mask_coverage {hi:g}")]
    if expect_rejected is not None:
        got = log.rejected is not None
        ok = got == bool(expect_rejected)
        if got:
            what = f"the mask was rejected ({log.rejected})"
        else:
            what = "the mask was kept" + (f" (coverage {log.attempted_coverage:.3f})"
                                          if log.attempted_coverage is not None else "")
        want = "rejected" if expect_rejected else "kept"
        note = f"{what}, as the vector expects" if ok else f"{what}; the vector expects it {want}"
        checks.append(_check(EXPECT_METRIC, "mask_rejected stage=mask", float(got), float(bool(expect_rejected)),
                             ok, note))
    return checks


def _anchor_gaps(vector, log: StageLog, lo: float, sy: float, sx: float) -> list[ExpectationCheck]:
    """``min_anchor_gap_px``: how far the fill region stays from each anchor box."""
    checks = []
    dist = None
    if log.fill is not None:
        from scipy import ndimage

        dist = ndimage.distance_transform_edt(~log.fill)
    for i, an in enumerate(vector.anchors):
        x0, y0, x1, y1 = an["box"]
        box = _scaled_box(an["box"], sy, sx)
        if dist is None:
            checks.append(_check(EXPECT_METRIC, f"min_anchor_gap_px anchor={i}", None, lo, None,
                                 f"{_anchor_name(i, an)}: nothing was filled", box=box))
            continue
        d = float(dist[y0:y1, x0:x1].min())
        ok = d >= lo
        where = f"overlaps {_anchor_name(i, an)} (0 px)" if d == 0 else f"is {d:.1f} px from {_anchor_name(i, an)}"
        checks.append(_check(EXPECT_METRIC, f"min_anchor_gap_px anchor={i}", d, lo, ok,
                             f"the fill region {where} {'>=' if ok else '<'} min_anchor_gap_px {lo:g}", box=box))
    return checks


def _anchors_survive(vector, clean: np.ndarray, output: np.ndarray, upscale: str, sy: float,
                     sx: float) -> list[ExpectationCheck]:
    """``anchors_survive``: each anchor keeps enough of the source's fine-band texture
    (:func:`harness.measuring.anchors.anchor_retention`)."""
    checks = []
    boxes = [an["box"] for an in vector.anchors]
    res = anchor_retention(clean, output, boxes, upscale)
    band = "+".join(ANCHOR_BANDS)
    for i, (an, (kept, allow, power)) in enumerate(zip(vector.anchors, res)):
        box = _scaled_box(an["box"], sy, sx)
        slice_ = f"anchors_survive anchor={i} band={band}"
        if allow >= 1.0:
            checks.append(_check(EXPECT_METRIC, slice_, kept, 1.0, None,
                                 f"{_anchor_name(i, an)} has no {band} texture above the noise floor "
                                 f"(power {power:.3g} code²): nothing to check", tolerance=allow, box=box))
            continue
        ok = kept >= 1.0 - allow
        checks.append(_check(EXPECT_METRIC, slice_, kept, 1.0, ok,
                             f"{_anchor_name(i, an)} keeps {_pct(kept)} of the source's {band} band energy "
                             f"({'>=' if ok else '<'} the {_pct(1.0 - allow)} required)", tolerance=allow,
                             box=box))
    return checks


def failure_note(checks: Iterable[Check]) -> str | None:
    """One line naming every failing absolute check (its note), for a case's message; None if none fails."""
    notes = [getattr(c, "note", "") or f"{c.metric} [{c.slice}]" for c in checks
             if is_expectation(c) and c.status == "fail"]
    return ("expectation failed: " + "; ".join(notes)) if notes else None
