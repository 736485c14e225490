"""detect: find what must be removed and return a soft mask.

``rapidocr``      real text detection: the PP-OCR detection network shipped inside
                  the ``rapidocr`` wheel, run with onnxruntime on the CPU (no
                  download).  DB post-processing: probability map → threshold →
                  dilation that stands in for DB's polygon "unclip".
``ground_truth``  the vector's exact overlay mask (isolates the later stages).

Both report recall / precision / IoU against the vector's ground truth.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from harness.errors import StageError
from harness.stages.base import StageContext, StageResult, register, spec

__all__ = ["detection_scores", "RapidOCRDetect", "GroundTruth"]


def detection_scores(pred: np.ndarray | None, truth: np.ndarray | None) -> dict[str, float]:
    """Pixel recall, precision and IoU of ``pred`` against ``truth`` (both thresholded at 0.5)."""
    if truth is None:
        return {}
    t = truth >= 0.5
    p = pred >= 0.5 if pred is not None else np.zeros_like(t)
    tp = float(np.logical_and(p, t).sum())
    n_t, n_p = float(t.sum()), float(p.sum())
    union = float(np.logical_or(p, t).sum())
    return {"recall": tp / n_t if n_t else 1.0, "precision": tp / n_p if n_p else 1.0,
            "iou": tp / union if union else 1.0}


@lru_cache(maxsize=2)
def _session(model: str):
    import onnxruntime as ort
    import rapidocr

    path = Path(rapidocr.__file__).parent / "models" / model
    if not path.exists():
        raise StageError(f"detect backend 'rapidocr': model {path} is missing from the rapidocr wheel")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1  # thread count changes bits: pinned
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])


@register("detect", "rapidocr")
class RapidOCRDetect:
    """PP-OCR text detection (DB) from the rapidocr wheel."""

    @dataclass(frozen=True)
    class Params:
        threshold: float = spec(0.3, 0.01, 0.99)
        dilate_px: int = spec(3, 0, 32)
        min_side: int = spec(736, 64, 2048)
        model: str = spec("PP-OCRv6_det_small.onnx")

    def __init__(self, params: "RapidOCRDetect.Params") -> None:
        self.params = params

    def probability(self, image: np.ndarray) -> np.ndarray:
        import cv2

        h, w = image.shape[:2]
        scale = max(1.0, self.params.min_side / min(h, w))
        scale = min(scale, 2048 / max(h, w))
        nh, nw = max(32, int(round(h * scale / 32)) * 32), max(32, int(round(w * scale / 32)) * 32)
        bgr = cv2.resize(image[..., ::-1], (nw, nh), interpolation=cv2.INTER_LINEAR).astype(np.float32)
        x = ((bgr / 255.0 - 0.5) / 0.5).transpose(2, 0, 1)[None]
        sess = _session(self.params.model)
        prob = sess.run(None, {sess.get_inputs()[0].name: x})[0][0, 0]
        return cv2.resize(prob.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)

    def __call__(self, image: np.ndarray, ctx: StageContext) -> StageResult:
        import cv2

        prob = self.probability(image)
        mask = (prob > self.params.threshold).astype(np.uint8)
        if self.params.dilate_px:
            k = 2 * self.params.dilate_px + 1
            mask = cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
        m = mask.astype(np.float32)
        return StageResult(image=None, mask=m, info={**detection_scores(m, ctx.truth_mask),
                                                    "detected_px": int(mask.sum())})


@register("detect", "ground_truth")
class GroundTruth:
    """The vector's exact overlay mask."""

    @dataclass(frozen=True)
    class Params:
        pass

    def __init__(self, params: "GroundTruth.Params") -> None:
        self.params = params

    def __call__(self, image: np.ndarray, ctx: StageContext) -> StageResult:
        if ctx.truth_mask is None:
            raise StageError("detect backend 'ground_truth': this vector has no ground-truth mask")
        m = np.asarray(ctx.truth_mask, dtype=np.float32)
        return StageResult(image=None, mask=m.copy(), info=detection_scores(m, m))
