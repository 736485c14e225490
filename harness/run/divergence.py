"""The first stage of a case whose image differs from its baseline's reference image.

A baseline records ``images = {stage: "sha256:…"}`` (:func:`harness.run.store.reference_images`,
written by ``harness bake``); a run records ``artifacts = {stage: "sha256:…" | run-folder path}``.
:func:`first_divergence` walks the stages in pipeline order (:func:`stage_order`) and returns
report.json's ``diverged`` (:class:`harness.report.format_v2.Diverged`) for the first stage that
differs:

* a stage whose artifact is the reference itself is identical: the store is content-addressed,
  so equal references are equal PNG bytes and no pixel is read (an older run's run-folder PNG is
  hashed once and compared the same way);
* the first one that differs is loaded on both sides and measured: ``mean_abs`` and ``max_abs`` of
  the per-pixel difference on a 0..1 scale, ``changed_fraction`` the share of pixels that differ by
  more than 1/255 in some channel (one 8-bit LSB of rounding is not a change), ``box`` the pixel box
  ``[x0, y0, x1, y1]`` (ends exclusive) around them; two encodings of the same pixels are identical;
* a stage that only one side has diverges there (a stage switched on or off, a mask rejected), and
  different image sizes are said with both shapes.

It never raises and never changes a case's status: what it cannot tell (no references in the
baseline, a reference pruned from the store, an unreadable image) is said in ``note`` with
``stage`` null.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from harness.errors import HarnessError
from harness.run.store import ImageStore, is_ref, resolve_artifact
from harness.stages.base import STAGES

__all__ = ["first_divergence", "stage_order", "image_difference", "NO_REFERENCES", "ALL_IDENTICAL"]

NO_REFERENCES = "no reference images in the baseline (bake again to record them)"
ALL_IDENTICAL = "every stage identical to its reference image"
_CHANGED = 1.0 / 255.0  # a difference above one 8-bit step is a change; the tiny epsilon absorbs float rounding

# Artifact names in the order a case writes them (harness.run.case): the input and the generate stage's
# image, then per stage its guide (upscale), its mask (detect, mask) and its image, then the output.
# "generate" and "input" share a rank: a generated vector's base comes first and the input is drawn
# on it, while a vector with its own image is the input of a generate stage (source, img2img).
_ORDER = (*(name for s in STAGES if s != "generate" for name in (f"{s}_guide", f"{s}_mask", s)), "output")
_RANK = {"generate": 0, "input": 0, **{name: i + 1 for i, name in enumerate(_ORDER)}}


def stage_order(*names: Mapping[str, Any]) -> list[str]:
    """The stage names of ``names`` (dicts keyed by stage; the run's artifacts first, in the order the
    case wrote them) in pipeline order; generate and input, and names the pipeline does not know, in
    the order first seen."""
    seen = list(dict.fromkeys(k for m in names for k in m))
    return sorted(seen, key=lambda k: (_RANK.get(k, len(_RANK) + 1), seen.index(k)))


def _as_unit(arr: np.ndarray) -> np.ndarray:
    """``(H, W, C)`` float32 on 0..1 from a uint8 / uint16 / float image."""
    a = np.asarray(arr)
    if a.ndim == 2:
        a = a[..., None]
    if a.dtype == np.uint16:
        return a.astype(np.float32) / 65535.0
    if a.dtype.kind in "ub":
        return a.astype(np.float32) / 255.0
    return a.astype(np.float32)


def image_difference(reference: np.ndarray, candidate: np.ndarray) -> dict[str, Any]:
    """``mean_abs``, ``max_abs`` (0..1), ``changed_fraction`` and ``box`` of two same-sized images.

    ``mean_abs`` averages ``|Δ|`` over every pixel and channel; ``max_abs`` and the changed pixels
    (``|Δ| > 1/255`` in any channel) take each pixel's largest channel; ``box`` is None when no pixel
    changed."""
    d = np.abs(_as_unit(candidate) - _as_unit(reference))
    per_pixel = d.max(axis=2)
    changed = per_pixel > _CHANGED + 1e-6
    box = None
    if changed.any():
        rows, cols = np.flatnonzero(changed.any(axis=1)), np.flatnonzero(changed.any(axis=0))
        box = [int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1]
    return {"mean_abs": float(d.mean()), "max_abs": float(per_pixel.max()),
            "changed_fraction": float(changed.mean()), "box": box}


def _shape(a: np.ndarray) -> str:
    return "x".join(str(n) for n in a.shape)


class _Unreadable(Exception):
    """An image that cannot be compared: the message is the ``note``."""


class _Walk:
    """One case's comparison: where its images are."""

    def __init__(self, store_root: str | Path | None, run_dir: str | Path | None) -> None:
        self.store_root = Path(store_root) if store_root else None
        self.store = ImageStore(self.store_root) if self.store_root else None
        self.run_dir = Path(run_dir) if run_dir else None

    def same_bytes(self, ref: str, value: str) -> bool:
        """True when the run's ``value`` names the reference's PNG bytes (equal references; an older
        run's run-folder PNG hashing to it)."""
        if value == ref:
            return True
        if is_ref(value) or self.run_dir is None:
            return False
        p = resolve_artifact(value, self.run_dir, None)
        try:
            return p is not None and "sha256:" + hashlib.sha256(p.read_bytes()).hexdigest() == ref
        except OSError:
            return False  # unreadable: loading it says why

    def reference(self, stage: str, ref: str) -> np.ndarray:
        if self.store is None:
            raise _Unreadable(f"the reference image of stage {stage} ({ref}) cannot be read: "
                              "this run recorded no image store")
        if not is_ref(ref) or not self.store.has(ref):
            raise _Unreadable(f"the reference image of stage {stage} ({ref}) is missing from the image store "
                              f"{self.store_root} (pruned, or baked on another machine: copy the store or bake again)")
        return self._load(stage, "reference", lambda: self.store.load(ref))

    def candidate(self, stage: str, value: str) -> np.ndarray:
        p = resolve_artifact(value, self.run_dir or ".", self.store_root)
        if p is None:
            raise _Unreadable(f"the run's image of stage {stage} ({value}) is not found"
                              + (f" in the image store {self.store_root}" if is_ref(value) else " in the run folder"))
        from harness.imageio import load_image

        return self._load(stage, "run's", lambda: load_image(p))

    @staticmethod
    def _load(stage: str, whose: str, read) -> np.ndarray:
        try:
            return read()
        except (HarnessError, OSError, ValueError) as exc:
            raise _Unreadable(f"the {whose} image of stage {stage} cannot be read: {exc}") from None


def first_divergence(references: Mapping[str, str] | None, artifacts: Mapping[str, str],
                     store_root: str | Path | None, run_dir: str | Path | None = None) -> dict[str, Any]:
    """report.json's ``diverged`` for one case: its run ``artifacts`` against its baseline's
    ``references`` (``{stage: "sha256:…"}``), the images in the store at ``store_root`` (run-folder
    paths inside ``run_dir``).  See the module docstring; never raises."""
    if not references:
        return {"stage": None, "note": NO_REFERENCES}
    walk = _Walk(store_root, run_dir)
    for stage in stage_order(artifacts, references):
        ref, value = references.get(stage), artifacts.get(stage)
        if ref is None or value is None:  # a stage one side has and the other has not
            return {"stage": stage, "reference": ref, "candidate": value if is_ref(value) else None,
                    "note": (f"the baseline has no reference image of stage {stage}; the run made one" if ref is None
                             else f"the run made no image of stage {stage}; the baseline has one")}
        try:
            if walk.same_bytes(ref, value):
                continue
            found = _compared(stage, ref, value, walk.reference(stage, ref), walk.candidate(stage, value))
        except _Unreadable as why:
            return {"stage": None, "note": str(why), "reference": ref, "candidate": value if is_ref(value) else None}
        if found is not None:
            return found
    return {"stage": None, "note": ALL_IDENTICAL}


def _compared(stage: str, ref: str, value: str, a: np.ndarray, b: np.ndarray) -> dict[str, Any] | None:
    """The ``diverged`` of a stage whose images differ in bytes; None when their pixels are the same."""
    out: dict[str, Any] = {"stage": stage, "reference": ref, "candidate": value if is_ref(value) else None}
    if a.shape[:2] != b.shape[:2]:
        return {**out, "note": f"the image sizes differ: reference {_shape(a)}, run {_shape(b)}"}
    diff = image_difference(a, b)
    if diff["max_abs"] == 0.0:
        return None  # the same pixels in another encoding
    note = (f"{100 * diff['changed_fraction']:.3g} % of pixels differ by more than 1/255" if diff["box"]
            else "differs by at most 1/255 (rounding)")
    return {**out, **diff, "note": note}
