"""harness.suite.vectors.rendering: sources, overlays and anchors, on vectors written to tmp_path."""

from __future__ import annotations

import numpy as np
import pytest
from vector_helpers import BASE, S, gap, write

from harness.errors import ConfigError
from harness.imageio import load_image, save_png
from harness.suite import vectors as V


def test_base_vector_is_valid(tmp_path):
    v = V.load_vector(write(tmp_path, BASE))
    assert v.size == (64, 80) and v.source["params"] == {"period": 3.1, "lobes": 7}
    r = V.render(v)
    assert r.image.shape == (64, 80, 3) and r.anchors.sum() == 800 and gap(r) >= 2


def test_overlay_mask_is_the_drawn_coverage_and_the_image_its_opacity_composite(tmp_path):
    """Independent re-drawing: mask == alpha/255, image == the composite with alpha/255 * opacity."""
    from PIL import Image, ImageDraw, ImageFont

    # a colour close to the card's: faint edge pixels round back to the clean value, yet stay in the mask
    v = V.load_vector(write(tmp_path, BASE.replace("color = [255, 0, 0]", "color = [215, 225, 225]\nopacity = 0.2")))
    r = V.render(v)
    layer = Image.new("L", (80, 64), 0)
    ImageDraw.Draw(layer).text((4, 4), "HI", fill=255, font=ImageFont.load_default(size=12))
    cover = np.asarray(layer, np.float64) / 255.0
    alpha = cover * 0.2
    assert np.array_equal(r.overlay_mask, cover.astype(np.float32))
    expect = np.rint(r.clean * (1 - alpha[..., None]) + np.array([215, 225, 225]) * alpha[..., None])
    assert np.array_equal(r.image, expect.astype(np.uint8))
    assert ((r.overlay_mask > 0) & (r.image == r.clean).all(axis=2)).any()


def test_tiled_rotated_watermark(tmp_path):
    text = BASE.replace('kind = "text"', 'kind = "watermark"\ntiled = true\nangle = 30\nspacing = [10, 8]')
    text = text.replace("color = [255, 0, 0]", "color = [255, 0, 0]\nopacity = 0.5")
    text = text.replace('kind = "microprint"\nbox = [0, 40, 80, 50]\nrender = true', 'kind = "texture"\nbox = [0, 0, 2, 2]')
    r = V.render(V.load_vector(write(tmp_path, text)))
    single = V.render(V.load_vector(write(tmp_path, BASE.replace('id = "bad"', 'id = "one"'), "one")))
    assert (r.overlay_mask > 0).mean() > 4 * (single.overlay_mask > 0).mean()
    assert r.overlay_mask.max() == pytest.approx(1.0)
    assert not np.any((r.image != r.clean).any(axis=2) & (r.overlay_mask == 0))
    ys, xs = np.nonzero(r.overlay_mask > 0)
    assert ys.min() < 8 and ys.max() > 56 and xs.min() < 8 and xs.max() > 72  # tiles reach every border


def test_file_source_and_cache_follows_the_asset(tmp_path):
    rng = np.random.default_rng(0)
    save_png(tmp_path / "a.png", rng.integers(0, 255, (100, 120, 3), dtype=np.uint8))
    text = BASE.replace('kind = "recipe"\nrecipe = "security_card"\nseed = 1',
                        'kind = "file"\npath = "a.png"\ncrop = [10, 10, 110, 90]\nfit = "crop"')
    p = write(tmp_path, text)
    r1 = V.render(V.load_vector(p))
    # crop 100x80 at (10, 10), then centre-crop 80x64: rows 10+8.., columns 10+10..
    assert np.array_equal(r1.clean[~r1.anchors], load_image(tmp_path / "a.png")[18:82, 20:100][~r1.anchors])
    save_png(tmp_path / "a.png", rng.integers(0, 255, (100, 120, 3), dtype=np.uint8))
    r2 = V.render(V.load_vector(p))
    assert r2.sha256 != r1.sha256


def test_prompt_source_needs_the_generate_stage(tmp_path):
    text = BASE.replace('kind = "recipe"\nrecipe = "security_card"\nseed = 1',
                        'kind = "prompt"\nprompt = "a receipt on a wooden table"\nseed = 7')
    v = V.load_vector(write(tmp_path, text))
    assert v.needs_generation and v.source["prompt"] == "a receipt on a wooden table"
    with pytest.raises(ConfigError, match=r"bad\.toml: source\.kind: .*prompt source.*generate stage"):
        V.render(v)
    with pytest.raises(ConfigError, match="generate stage"):
        V.render_to_png(v, tmp_path)
    assert "by the generate stage" in V.describe(v)
    generated = np.full((128, 160, 3), 90, np.uint8)
    r = V.render(v, base=generated)
    assert r.image.shape == (64, 80, 3) and (r.overlay_mask > 0).any() and r.anchors.any()
    assert np.all(r.clean[~r.anchors] == 90)


def test_config_errors_found_when_rendering(tmp_path):
    crop = write(tmp_path, BASE.replace(S, 'kind = "skimage"\nname = "camera"\ncrop = [0, 0, 600, 100]'))
    with pytest.raises(ConfigError, match=r"bad\.toml: source\.crop: box \[0, 0, 600, 100\] is outside the 512x512 "
                                          r"source image"):
        V.render(V.load_vector(crop))
    small = write(tmp_path, BASE.replace(S, 'kind = "skimage"\nname = "camera"\ncrop = [0, 0, 50, 50]\nfit = "crop"'))
    with pytest.raises(ConfigError, match=r"bad\.toml: source\.fit: 'crop' needs a source of at least 80x64, got 50x50"):
        V.render(V.load_vector(small))
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    broken = write(tmp_path, BASE.replace(S, 'kind = "file"\npath = "broken.png"'))
    with pytest.raises(ConfigError, match=r"bad\.toml: source\.path: .*broken\.png"):
        V.render(V.load_vector(broken))
