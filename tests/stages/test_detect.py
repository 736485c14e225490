"""detect: PP-OCRv6 text detection via onnxruntime, ground truth, detection scores."""

from __future__ import annotations

import numpy as np
import pytest
from stage_helpers import draw_text, photo

from harness.errors import StageError
from harness.stages import StageContext, build_backend, run_stage
from harness.stages.detect import detection_scores, model_path

LINES = [(20, 60, "SALE 50% OFF"), (40, 170, "harness 2026")]


@pytest.fixture(scope="module")
def captioned():
    return draw_text(photo("astronaut"), LINES, size=24)


def test_detection_scores_exact():
    truth = np.zeros((10, 10), np.float32)
    truth[2:6, 2:6] = 1.0  # 16 px
    pred = np.zeros((10, 10), np.float32)
    pred[4:8, 2:6] = 0.6  # 16 px, 8 of them true
    assert detection_scores(pred, truth) == {"recall": 0.5, "precision": 0.5, "iou": round(8 / 24, 6)}
    assert detection_scores(np.zeros((10, 10)), truth) == {"recall": 0.0, "precision": 1.0, "iou": 0.0}
    assert detection_scores(pred, None) == {}
    with pytest.raises(StageError, match=r"differ in shape"):
        detection_scores(pred, truth[:5])


def test_model_ships_in_the_wheel():
    assert model_path().name == "PP-OCRv6_det_small.onnx" and model_path().stat().st_size > 1_000_000


@pytest.mark.parametrize("mode", ["boxes", "regions"])
def test_rapidocr_detects_rendered_text(captioned, mode):
    img, truth = captioned
    b = build_backend("detect", "rapidocr", {"mode": mode})
    r = run_stage(b, img, StageContext(seed=0, truth_mask=truth))
    assert r.image is None and r.mask.shape == truth.shape and r.mask.dtype == np.float32
    assert r.info["recall"] >= 0.95  # brief: >= 0.6; measured 1.0
    assert r.info["precision"] >= 0.15  # a region covers the glyphs *and* the gaps between them
    assert r.info["regions"] == 2  # one per text line
    assert 0.03 < r.info["coverage"] < 0.15
    assert r.mask.max() == 1.0 and np.any((r.mask > 0) & (r.mask < 1))  # soft edges
    scores = detection_scores(r.mask, truth)
    assert {k: r.info[k] for k in scores} == scores
    again = run_stage(b, img, StageContext(seed=1, truth_mask=truth))
    assert np.array_equal(again.mask, r.mask)  # deterministic, seed-independent


def test_regions_mode_is_tighter_than_boxes(captioned):
    img, truth = captioned
    boxes = run_stage(build_backend("detect", "rapidocr", {"mode": "boxes"}), img, StageContext(0, truth_mask=truth))
    regions = run_stage(build_backend("detect", "rapidocr", {"mode": "regions"}), img,
                        StageContext(0, truth_mask=truth))
    assert regions.info["precision"] > boxes.info["precision"]


def test_dilate_px_grows_the_mask(captioned):
    img, truth = captioned
    base = run_stage(build_backend("detect", "rapidocr", {}), img, StageContext(0))
    grown = run_stage(build_backend("detect", "rapidocr", {"dilate_px": 4}), img, StageContext(0))
    assert grown.info["detected_px"] > base.info["detected_px"]
    assert np.all(grown.mask >= base.mask)
    assert "recall" not in base.info  # no truth, no scores


@pytest.mark.parametrize("name", ["grass", "astronaut"])
def test_rapidocr_finds_nothing_on_plain_photos(name):
    r = run_stage(build_backend("detect", "rapidocr", {}), photo(name), StageContext(0))
    assert r.info["regions"] == 0 and r.info["coverage"] == 0.0 and r.mask.max() == 0.0


def test_ground_truth_backend(captioned):
    _, truth = captioned
    r = run_stage(build_backend("detect", "ground_truth", {}), captioned[0], StageContext(0, truth_mask=truth))
    assert np.array_equal(r.mask, truth) and r.mask is not truth
    assert r.info["recall"] == 1.0 and r.info["precision"] == 1.0 and r.info["iou"] == 1.0
    assert r.info["detected_px"] == int(truth.sum())
    with pytest.raises(StageError, match=r"^detect backend 'ground_truth': this vector has no ground-truth mask$"):
        run_stage(build_backend("detect", "ground_truth", {}), captioned[0], StageContext(0))
