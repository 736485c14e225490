"""mask: dilation, feathering, coverage gate and texture-anchor clipping."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from harness.errors import StageError
from harness.stages import StageContext, build_backend, run_stage
from harness.stages.detect import disk

IMG = np.full((100, 100, 3), 128, np.uint8)


def shape(ctx: StageContext, **params):
    return run_stage(build_backend("mask", "shape", params), IMG, ctx)


def square(y0, y1, x0, x1, value=1.0) -> np.ndarray:
    m = np.zeros((100, 100), np.float32)
    m[y0:y1, x0:x1] = value
    return m


def test_disk_is_euclidean():
    assert disk(1).sum() == 5 and disk(2).sum() == 13 and disk(3).sum() == 29
    assert disk(2)[0, 2] == 1 and disk(2)[0, 1] == 0


def test_empty_or_missing_mask_is_rejected_not_raised():
    for m in (None, np.zeros((100, 100), np.float32), square(0, 10, 0, 10, 0.4)):
        r = shape(StageContext(0, mask=m))
        assert r.info == {"dilate_px": 2, "coverage": 0.0, "anchor_clipped_px": 0, "rejected": "empty mask"}
        assert r.image is None and r.mask.shape == (100, 100) and r.mask.max() == 0.0


def test_threshold_binarises_the_soft_detection():
    r = shape(StageContext(0, mask=square(10, 20, 10, 20, 0.4)), threshold=0.3, dilate_px=0)
    assert "rejected" not in r.info and r.info["coverage"] == 0.01
    assert set(np.unique(r.mask)) == {0.0, 1.0}


def test_dilation_by_a_disk_and_coverage():
    m = np.zeros((100, 100), np.float32)
    m[50, 50] = 1.0
    r = shape(StageContext(0, mask=m), dilate_px=2)
    assert r.info == {"dilate_px": 2, "coverage": 0.0013, "anchor_clipped_px": 0}
    assert np.array_equal(r.mask[48:53, 48:53], disk(2).astype(np.float32))
    r3 = shape(StageContext(0, mask=square(10, 20, 10, 20)), dilate_px=0)
    assert r3.info["coverage"] == 0.01


def test_coverage_above_max_is_rejected_with_the_numbers():
    r = shape(StageContext(0, mask=square(0, 40, 0, 40)), dilate_px=0)  # 1600 px of 10000
    assert r.info["rejected"] == "coverage 0.160 > max_coverage 0.12"
    assert r.info["coverage"] == 0.16 and r.mask.max() == 0.0
    ok = shape(StageContext(0, mask=square(0, 40, 0, 40)), dilate_px=0, max_coverage=0.2)
    assert "rejected" not in ok.info and ok.mask.sum() == 1600
    # dilation counts towards coverage: 30x30 (0.09) grows past 0.12
    grown = shape(StageContext(0, mask=square(30, 60, 30, 60)), dilate_px=4)
    assert grown.info["rejected"].startswith("coverage 0.1") and grown.info["rejected"].endswith("> max_coverage 0.12")


def test_anchor_clipping_removes_only_what_dilation_added():
    det = square(20, 30, 20, 30)  # 10x10 detection
    anchors = np.zeros((100, 100), bool)
    anchors[:, 27:] = True  # an anchor that the detection itself overlaps (columns 27..29)
    r = shape(StageContext(0, mask=det, anchors=anchors), dilate_px=3)
    grown = ndimage.binary_dilation(det > 0.5, structure=disk(3).astype(bool))
    added_on_anchor = grown & ~(det > 0.5) & anchors
    # right of the square: columns 30, 31 (14 rows each), 32 (10 rows); above/below columns 27-29: 3 + 3 rows each
    assert r.info["anchor_clipped_px"] == int(added_on_anchor.sum()) == 14 + 14 + 10 + 3 * 6
    out = r.mask >= 0.5
    assert np.all(out[20:30, 20:30])  # the overlay on the anchor is still removed
    assert not np.any(out & anchors & ~(det > 0.5))  # nothing else on the anchor
    assert np.array_equal(out, grown & ~added_on_anchor)
    assert r.info["coverage"] == round(float(out.mean()), 6)


def test_anchor_clipping_can_be_disabled():
    det = square(20, 30, 20, 30)
    anchors = np.zeros((100, 100), bool)
    anchors[:, 27:] = True
    r = shape(StageContext(0, mask=det, anchors=anchors), dilate_px=3, protect_anchors=False)
    assert r.info["anchor_clipped_px"] == 0
    assert np.array_equal(r.mask >= 0.5, ndimage.binary_dilation(det > 0.5, structure=disk(3).astype(bool)))


def test_feathering_keeps_the_fill_region_and_spares_anchors():
    det = square(40, 60, 40, 60)
    anchors = np.zeros((100, 100), bool)
    anchors[:, 70:] = True
    hard = shape(StageContext(0, mask=det, anchors=anchors), dilate_px=2)
    soft = shape(StageContext(0, mask=det, anchors=anchors), dilate_px=2, feather_px=8)
    assert np.array_equal(soft.mask >= 0.5, hard.mask >= 0.5)
    assert soft.info["coverage"] == hard.info["coverage"]
    rim = (soft.mask > 0) & (soft.mask < 0.5)
    assert rim.sum() > 500 and soft.mask[rim].max() <= 0.49
    assert soft.mask[anchors].max() == 0.0


def test_shape_mismatch_is_a_stage_error():
    with pytest.raises(StageError, match=r"^mask backend 'shape': mask shape \(50, 50\) does not match the image"):
        shape(StageContext(0, mask=np.ones((50, 50), np.float32)))
    with pytest.raises(StageError, match=r"anchors shape \(50, 50\) does not match"):
        shape(StageContext(0, mask=square(0, 5, 0, 5), anchors=np.ones((50, 50), bool)))


def test_regions_mostly_on_an_anchor_are_the_anchors_own_print_and_dropped():
    """A text detector finds an anchor's fine print as text: with drop_anchor_regions, a detected
    region at least that share on an anchor is kept out of the fill region; one that only crosses
    an anchor (an overlay over it) is removed whole."""
    anchors = np.zeros((100, 100), bool)
    anchors[60:90, 10:90] = True  # the fine print's box
    line = square(70, 74, 20, 80)  # one of its lines, 240 px, all on the anchor
    caption = square(50, 65, 30, 50)  # an overlay crossing the anchor's top edge: 100 of its 300 px on it
    logo = square(10, 20, 60, 80)  # an overlay away from it
    det = np.maximum.reduce([line, caption, logo])
    r = shape(StageContext(0, mask=det, anchors=anchors), dilate_px=0, drop_anchor_regions=0.5)
    assert r.info["anchor_dropped_px"] == 240 and "rejected" not in r.info
    assert np.array_equal(r.mask >= 0.5, (caption > 0) | (logo > 0))
    off = shape(StageContext(0, mask=det, anchors=anchors), dilate_px=0)  # the default keeps every detection
    assert "anchor_dropped_px" not in off.info and np.array_equal(off.mask >= 0.5, det > 0)
    # at 0.3 the caption (1/3 on the anchor) goes too; without protect_anchors nothing is dropped
    assert shape(StageContext(0, mask=det, anchors=anchors), dilate_px=0,
                 drop_anchor_regions=0.3).info["anchor_dropped_px"] == 540
    unprotected = shape(StageContext(0, mask=det, anchors=anchors), dilate_px=0, drop_anchor_regions=0.5,
                        protect_anchors=False)
    assert "anchor_dropped_px" not in unprotected.info and np.array_equal(unprotected.mask >= 0.5, det > 0)


def test_a_detection_all_on_anchors_leaves_an_empty_mask_rejected():
    anchors = np.zeros((100, 100), bool)
    anchors[60:90, 10:90] = True
    r = shape(StageContext(0, mask=square(70, 74, 20, 80), anchors=anchors), drop_anchor_regions=0.5)
    assert r.info["rejected"] == "empty mask" and r.info["anchor_dropped_px"] == 240 and r.mask.max() == 0.0
