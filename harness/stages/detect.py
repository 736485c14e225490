"""detect: find what must be removed; return a soft mask ``(H, W)`` float32 in [0, 1].

``rapidocr``      real text detection: the PP-OCRv6 DB detection network shipped
                  inside the ``rapidocr`` wheel (``rapidocr/models/``), run by
                  onnxruntime on the CPU with the suite's ``threads`` (intra-op;
                  one inter-op thread); nothing is downloaded.
                  Pre-processing is rapidocr's own ``DetPreProcess`` (BGR input,
                  shorter side resized to ``limit_side_len``, multiples of 32,
                  ``(x/255 - 0.5)/0.5``).  Post-processing, by ``mode``:

                  * ``"boxes"``: rapidocr's own ``DBPostProcess`` (probability >
                    ``threshold`` → regions scored ≥ ``box_threshold`` → DB
                    "unclip" by ``unclip_ratio`` → rotated boxes), filled;
                  * ``"regions"``: the thresholded probability map itself, each
                    region grown by its DB unclip distance (area·ratio/perimeter)
                    with a disk: follows the text's shape instead of its box.

                  The binary map (network resolution) is resized bilinearly to the
                  input size, so edges are soft; ``dilate_px`` grows it further.
``ground_truth``  the vector's exact overlay mask (isolates the later stages).

Both put ``recall``/``precision``/``iou`` against the vector's ground truth
(:func:`detection_scores`) into ``info`` when the truth is known.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from harness.errors import StageError
from harness.stages.base import BackendBase, StageContext, StageResult, register, spec
from harness.threads import cv2_module

__all__ = ["detection_scores", "RapidOCRDetect", "GroundTruth", "disk"]

DET_MODEL = "PP-OCRv6_det_small.onnx"


def detection_scores(pred_mask: np.ndarray | None, truth_mask: np.ndarray | None) -> dict[str, float]:
    """Pixel recall, precision and IoU of ``pred_mask`` against ``truth_mask`` (both at >= 0.5).

    Empty denominators count as perfect (nothing to find / nothing claimed);
    returns ``{}`` when there is no truth.
    """
    if truth_mask is None:
        return {}
    t = np.asarray(truth_mask) >= 0.5
    p = np.asarray(pred_mask) >= 0.5 if pred_mask is not None else np.zeros_like(t)
    if p.shape != t.shape:
        raise StageError(f"detect: predicted mask {p.shape} and ground truth {t.shape} differ in shape")
    tp = float(np.count_nonzero(p & t))
    n_t, n_p, union = float(t.sum()), float(p.sum()), float(np.count_nonzero(p | t))
    return {"recall": round(tp / n_t, 6) if n_t else 1.0, "precision": round(tp / n_p, 6) if n_p else 1.0,
            "iou": round(tp / union, 6) if union else 1.0}


def disk(r: int) -> np.ndarray:
    """Euclidean disk structuring element of radius ``r`` (uint8, ``2r+1`` square)."""
    y, x = np.mgrid[-r:r + 1, -r:r + 1]
    return (x * x + y * y <= r * r + 0.25).astype(np.uint8)  # +0.25: keep the 4 axis tips at r


def model_path() -> Path:
    import rapidocr

    return Path(rapidocr.__file__).parent / "models" / DET_MODEL


@lru_cache(maxsize=4)
def _session(threads: int = 1):
    import onnxruntime as ort

    path = model_path()
    if not path.exists():
        raise StageError(f"detect backend 'rapidocr': model {path} is missing from the rapidocr wheel")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = int(threads)  # changes float summation order: pinned, recorded
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])


@register("detect", "rapidocr")
class RapidOCRDetect(BackendBase):
    """PP-OCRv6 text detection (DB) from the rapidocr wheel, onnxruntime on the CPU."""

    @dataclass(frozen=True)
    class Params:
        mode: str = spec("boxes", choices=("boxes", "regions"))
        threshold: float = spec(0.3, 0.01, 0.99)  # DB binarisation of the probability map
        box_threshold: float = spec(0.5, 0.0, 1.0)  # a region's mean probability must reach this
        unclip_ratio: float = spec(1.6, 0.0, 4.0)  # DB unclip: grow by area * ratio / perimeter
        dilate_px: int = spec(0, 0, 32)  # extra growth (disk) at input resolution
        limit_side_len: int = spec(736, 32, 2048)  # the shorter side is scaled up to this

    def weight_paths(self) -> list[Path]:
        """The weight files this backend loads (hashed into the stage cache key)."""
        return [model_path()]

    def probability(self, image: np.ndarray) -> np.ndarray:
        """The DB probability map at network resolution (multiples of 32), float32."""
        from rapidocr.ch_ppocr_det.utils import DetPreProcess

        pre = DetPreProcess(self.params.limit_side_len, "min", [0.5, 0.5, 0.5], [0.5, 0.5, 0.5])
        x = pre(np.ascontiguousarray(image[..., ::-1]))  # PP-OCR models take BGR
        if x is None:
            raise StageError(f"detect backend 'rapidocr': cannot resize a {image.shape[1]}x{image.shape[0]} image")
        from harness.threads import configured_threads

        sess = _session(configured_threads())
        return sess.run(None, {sess.get_inputs()[0].name: x})[0][0, 0].astype(np.float32)

    def _boxes(self, prob: np.ndarray) -> tuple[np.ndarray, int]:
        from rapidocr.ch_ppocr_det.utils import DBPostProcess

        cv2 = cv2_module()
        p = self.params
        post = DBPostProcess(thresh=p.threshold, box_thresh=p.box_threshold, max_candidates=1000,
                             unclip_ratio=p.unclip_ratio, score_mode="fast", use_dilation=True)
        boxes, _ = post(prob[None, None], prob.shape)  # boxes in network coordinates
        out = np.zeros(prob.shape, np.uint8)
        if len(boxes):
            cv2.fillPoly(out, [np.asarray(b, np.int32) for b in boxes], 1)
        return out, len(boxes)

    def _regions(self, prob: np.ndarray) -> tuple[np.ndarray, int]:
        cv2 = cv2_module()
        p = self.params
        seg = cv2.dilate((prob > p.threshold).astype(np.uint8), np.ones((2, 2), np.uint8))  # as DBPostProcess
        contours, _ = cv2.findContours(seg, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        out = np.zeros(prob.shape, np.uint8)
        n = 0
        for c in contours[:1000]:
            if min(cv2.minAreaRect(c)[1]) < 3:  # DB's min_size
                continue
            x, y, w, h = cv2.boundingRect(c)
            region = np.zeros((h, w), np.uint8)
            cv2.drawContours(region, [c - [x, y]], -1, 1, thickness=cv2.FILLED)
            if cv2.mean(prob[y:y + h, x:x + w], region)[0] < p.box_threshold:
                continue
            area, perim = float(region.sum()), cv2.arcLength(c, True)
            r = int(round(area * p.unclip_ratio / perim)) if perim > 0 else 0
            y0, x0 = max(y - r, 0), max(x - r, 0)
            y1, x1 = min(y + h + r, prob.shape[0]), min(x + w + r, prob.shape[1])
            canvas = np.zeros((y1 - y0, x1 - x0), np.uint8)
            canvas[y - y0:y - y0 + h, x - x0:x - x0 + w] = region
            if r:
                canvas = cv2.dilate(canvas, disk(r))
            out[y0:y1, x0:x1] |= canvas
            n += 1
        return out, n

    def __call__(self, image: np.ndarray, ctx: StageContext) -> StageResult:
        cv2 = cv2_module()
        h, w = image.shape[:2]
        prob = self.probability(image)
        binary, n = (self._boxes if self.params.mode == "boxes" else self._regions)(prob)
        mask = cv2.resize(binary.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
        if self.params.dilate_px:
            mask = cv2.dilate(mask, disk(self.params.dilate_px))  # grey dilation keeps the soft edge
        mask = np.clip(mask, 0.0, 1.0).astype(np.float32)
        info = {"regions": n, "detected_px": int(np.count_nonzero(mask >= 0.5)),
                "coverage": round(float(np.mean(mask >= 0.5)), 6), **detection_scores(mask, ctx.truth_mask)}
        return StageResult(image=None, mask=mask, info=info)


@register("detect", "ground_truth")
class GroundTruth(BackendBase):
    """The vector's exact overlay mask (``ctx.truth_mask``)."""

    @dataclass(frozen=True)
    class Params:
        pass

    def __call__(self, image: np.ndarray, ctx: StageContext) -> StageResult:
        if ctx.truth_mask is None:
            raise StageError("detect backend 'ground_truth': this vector has no ground-truth mask")
        m = np.asarray(ctx.truth_mask, dtype=np.float32).copy()
        info = {"detected_px": int(np.count_nonzero(m >= 0.5)),
                "coverage": round(float(np.mean(m >= 0.5)), 6), **detection_scores(m, m)}
        return StageResult(image=None, mask=m, info=info)
