"""The shipped vectors render deterministically with exact masks, and each tells its story."""

from __future__ import annotations

import numpy as np
import pytest
from vector_helpers import GENERATED_VECTORS, PROMPT_VECTORS, SHIPPED, dilate, gap

from harness.errors import ConfigError
from harness.suite import vectors as V
from harness.suite.vectors.rendering import _prepare, _source_raw
from harness.project import builtin_dir


def test_discover_finds_exactly_the_shipped_vectors_sorted(shipped):
    assert tuple(shipped) == tuple(sorted(SHIPPED + PROMPT_VECTORS + GENERATED_VECTORS))


def test_prompt_vector_renders_only_on_a_generated_base(shipped):
    v = shipped["generated_texture"]
    assert v.needs_generation
    with pytest.raises(ConfigError, match="prompt source"):
        V.render(v)
    base = np.random.default_rng(0).integers(0, 256, (256, 256, 3), dtype=np.uint8)
    r = V.render(v, base=base)
    assert r.overlay_mask.max() == 1.0 and r.anchors.sum() == 80 * 60
    assert np.array_equal(r.clean, base)
    assert all(v.id == v.path.stem and v.path.parent == builtin_dir("vectors") for v in shipped.values())


@pytest.mark.parametrize("vid", SHIPPED)
def test_shipped_vector_renders_with_exact_masks(shipped, vid):
    v = shipped[vid]
    h, w = v.size
    if v.expect.get("upscale"):
        assert 96 <= h <= 128 and 96 <= w <= 128
    else:
        assert 192 <= h <= 320 and 192 <= w <= 320
    r = V.render(v)
    assert r.vector_id == vid
    assert r.image.shape == r.clean.shape == (h, w, 3) and r.image.dtype == r.clean.dtype == np.uint8
    assert r.overlay_mask.shape == (h, w) and r.overlay_mask.dtype == np.float32
    assert r.anchors.shape == (h, w) and r.anchors.dtype == np.bool_
    assert 0.0 <= r.overlay_mask.min() and r.overlay_mask.max() <= 1.0
    assert not any(a.flags.writeable for a in (r.image, r.clean, r.overlay_mask, r.anchors))

    # the mask is the exact alpha of what was drawn: untouched pixels are bit-identical ...
    changed = (r.image != r.clean).any(axis=2)
    assert not np.any(changed & (r.overlay_mask == 0))
    # ... and nearly every firmly covered pixel did change (an outline drawn over an equally
    # dark background may not)
    firm = r.overlay_mask >= 0.5
    if firm.any():
        assert changed[firm].mean() > 0.95
    assert changed.any() == bool(v.overlays)

    # coverage below the declared limit (default 0.12), even after the smoke suite's 2 px dilation
    limit = v.max_mask_coverage
    assert (r.overlay_mask > 0).mean() < limit
    assert dilate(firm, 2).mean() < limit

    # anchors are exactly the declared boxes, and clear of every overlay by the declared gap
    boxes = np.zeros((h, w), bool)
    for an in v.anchors:
        x0, y0, x1, y1 = an["box"]
        boxes[y0:y1, x0:x1] = True
    assert np.array_equal(r.anchors, boxes)
    if v.anchors:
        assert r.anchors.any()
        if v.overlays:
            assert gap(r) >= v.expect.get("min_anchor_gap_px", 2)

    # sha256 is over the rendered bytes
    assert len(r.sha256) == 64
    assert V.render(v, cache=False).sha256 == r.sha256


@pytest.mark.parametrize("vid", SHIPPED)
def test_render_is_deterministic_and_cached_by_content(shipped, vid):
    v = shipped[vid]
    a, b = V.render(v, cache=False), V.render(v, cache=False)
    assert a.sha256 == b.sha256
    for name in ("image", "clean", "overlay_mask", "anchors"):
        assert np.array_equal(getattr(a, name), getattr(b, name))
    assert V.render(v) is V.render(V.load_vector(v.path))  # same id + same content -> cache hit


def test_drawn_anchors_put_fine_detail_into_the_clean_image(shipped):
    for v in shipped.values():
        drawn = [an for an in v.anchors if an.get("render")]
        if not drawn:
            continue
        r = V.render(v)
        plain = _prepare(v, _source_raw(v))  # the source without anchor content
        inside = np.zeros(v.size, bool)
        for an in drawn:
            x0, y0, x1, y1 = an["box"]
            inside[y0:y1, x0:x1] = True
        assert np.array_equal(r.clean[~inside], plain[~inside]), v.id
        assert (r.clean[inside] != plain[inside]).any(axis=1).mean() > 0.15, v.id


def test_microprint_dilation_story(shipped):
    """A 2 px dilation of the text mask leaves the microprint alone; 12 px swallows a large part of it."""
    v = shipped["microprint_dilation"]
    r = V.render(v)
    assert 2 <= gap(r) <= 4
    assert [an["kind"] for an in v.anchors] == ["microprint"] and v.anchors[0]["size"] in (6, 7)
    firm = r.overlay_mask >= 0.5
    assert not (dilate(firm, 2) & r.anchors).any()
    assert (dilate(firm, 12) & r.anchors).sum() / r.anchors.sum() > 0.3


def test_receipt_microprint_story(shipped):
    v = shipped["receipt_microprint"]
    r = V.render(v)
    assert v.source["kind"] == "recipe" and v.expect["anchors_survive"] is True
    assert 6 <= gap(r) <= 10
    firm = r.overlay_mask >= 0.5
    assert not (dilate(firm, 3) & r.anchors).any()
    assert (dilate(firm, 16) & r.anchors).any()
    # paper is not flat: seeded noise texture in the blank margin
    assert r.clean[100:130, 150:185].std() > 1.0


def test_watermark_is_semi_transparent(shipped):
    v = shipped["watermark_grass"]
    r = V.render(v)
    assert v.overlays[0]["kind"] == "watermark" and 0.4 <= v.overlays[0]["opacity"] <= 0.6
    assert r.overlay_mask.max() == pytest.approx(1.0, abs=1e-6)  # the mask says where, not how opaque
    firm = r.overlay_mask >= 1.0 - 1e-6
    # a blend: strictly between the grass underneath and pure white
    img, clean = r.image[firm].astype(int), r.clean[firm].astype(int)
    assert np.all(img >= clean) and np.mean(img < 250) > 0.9


def test_caption_portrait_has_an_outlined_caption_on_a_face(shipped):
    v = shipped["caption_portrait"]
    r = V.render(v)
    assert v.source["name"] == "astronaut" and v.overlays[0]["stroke"] > 0
    solid = r.image[r.overlay_mask >= 0.999]
    assert (solid.min(axis=1) > 230).sum() > 100  # white fill
    assert (solid.max(axis=1) < 40).sum() > 100  # dark outline


def test_photobomb_object_is_opaque_with_a_binary_mask(shipped):
    v = shipped["photobomb_fill"]
    r = V.render(v)
    (ov,) = v.overlays
    assert ov["kind"] == "object" and ov["shape"] == "ellipse"
    assert set(np.unique(r.overlay_mask)) == {0.0, 1.0}
    x0, y0, x1, y1 = ov["box"]
    assert r.overlay_mask.sum() == pytest.approx(np.pi * (x1 - x0) * (y1 - y0) / 4, rel=0.05)
    assert r.image[r.overlay_mask == 1].std(axis=0).max() > 3  # shaded, not flat


def test_lowres_capture_is_for_the_upscaler(shipped):
    v = shipped["lowres_capture"]
    assert v.expect["upscale"] == 2 and max(v.size) <= 128 and v.source.get("blur")
    assert (V.render(v).overlay_mask > 0).any()
