"""harness.suite.vectors.summary: what `harness vectors show` prints and writes."""

from __future__ import annotations

import numpy as np

from harness.imageio import load_image, load_mask
from harness.suite import vectors as V


def test_describe_and_render_to_png(shipped, tmp_path):
    v = shipped["receipt_microprint"]
    text = V.describe(v)
    assert text.startswith("receipt_microprint: ")
    assert "anchor   microprint box [8, 175, 184, 196] (drawn)" in text
    assert "overlay  text: 'PAID' at [70, 140] size 26" in text
    assert "expect   anchors_survive=True, max_mask_coverage=0.12" in text
    assert "overlay-anchor gap 9 px" in text and V.render(v).sha256 in text
    paths = V.render_to_png(v, tmp_path)
    assert [p.name for p in paths] == ["image.png", "clean.png", "overlay_mask.png", "anchors.png"]
    assert all(p.parent == tmp_path / v.id for p in paths)
    r = V.render(v)
    assert np.array_equal(load_image(paths[0]), r.image)
    assert np.array_equal(load_image(paths[1]), r.clean)
    assert np.abs(load_mask(paths[2], v.size) - r.overlay_mask).max() <= 0.5 / 255 + 1e-6
    assert np.array_equal(load_mask(paths[3], v.size) >= 0.5, r.anchors)
