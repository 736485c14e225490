"""Test vectors: the shipped failure cases render deterministically with exact masks,
and every bad vector file is a one-line ConfigError naming the file and the key."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from harness.pipeline import vectors as V
from harness.project import builtin_dir
from harness.errors import ConfigError
from harness.imageio import load_image, load_mask, save_png

PROMPT_VECTORS = ("generated_texture",)
SHIPPED = ("caption_portrait", "fineprint_survive", "lowres_capture", "microprint_dilation", "photobomb_fill",
           "receipt_microprint", "watermark_grass")


@pytest.fixture(scope="module")
def shipped():
    return V.discover(builtin_dir("vectors"))


def _gap(r) -> int:
    g = V.overlay_anchor_gap(r)
    assert g is not None
    return g


def _dilate(mask: np.ndarray, r: float) -> np.ndarray:
    """Euclidean-disk dilation of a bool mask (what the mask stage's ``dilate_px`` does)."""
    return ndimage.distance_transform_edt(~mask) <= r


# --- shipped vectors ---------------------------------------------------------------

def test_discover_finds_exactly_the_shipped_vectors_sorted(shipped):
    assert tuple(shipped) == tuple(sorted(SHIPPED + PROMPT_VECTORS))


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
    assert _dilate(firm, 2).mean() < limit

    # anchors are exactly the declared boxes, and clear of every overlay by the declared gap
    boxes = np.zeros((h, w), bool)
    for an in v.anchors:
        x0, y0, x1, y1 = an["box"]
        boxes[y0:y1, x0:x1] = True
    assert np.array_equal(r.anchors, boxes)
    if v.anchors:
        assert r.anchors.any()
        if v.overlays:
            assert _gap(r) >= v.expect.get("min_anchor_gap_px", 2)

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
        plain = V._prepare(v, V._source_raw(v))  # the source without anchor content
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
    assert 2 <= _gap(r) <= 4
    assert [an["kind"] for an in v.anchors] == ["microprint"] and v.anchors[0]["size"] in (6, 7)
    firm = r.overlay_mask >= 0.5
    assert not (_dilate(firm, 2) & r.anchors).any()
    assert (_dilate(firm, 12) & r.anchors).sum() / r.anchors.sum() > 0.3


def test_receipt_microprint_story(shipped):
    v = shipped["receipt_microprint"]
    r = V.render(v)
    assert v.source["kind"] == "recipe" and v.expect["anchors_survive"] is True
    assert 6 <= _gap(r) <= 10
    firm = r.overlay_mask >= 0.5
    assert not (_dilate(firm, 3) & r.anchors).any()
    assert (_dilate(firm, 16) & r.anchors).any()
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


def test_fonts_are_pillows_bundled_freetype_font():
    from PIL import ImageFont

    f6, f28 = V._font(6), V._font(28)
    assert isinstance(f6, ImageFont.FreeTypeFont)
    assert f28.getbbox("VOID")[3] > 3 * f6.getbbox("VOID")[3]


# --- features, on vectors written to tmp_path --------------------------------------

BASE = """\
id = "bad"
description = "a valid vector that each error case breaks in one place"
tags = ["t"]
size = [64, 80]

[source]
kind = "recipe"
recipe = "security_card"
seed = 1

[[overlays]]
kind = "text"
text = "HI"
position = [4, 4]
size = 12
color = [255, 0, 0]

[[anchors]]
kind = "microprint"
box = [0, 40, 80, 50]
render = true

[expect]
anchors_survive = true
"""


def _write(tmp_path, text, name="bad"):
    p = tmp_path / f"{name}.toml"
    p.write_text(text)
    return p


def test_base_vector_is_valid(tmp_path):
    v = V.load_vector(_write(tmp_path, BASE))
    assert v.size == (64, 80) and v.source["params"] == {"period": 3.1, "lobes": 7}
    r = V.render(v)
    assert r.image.shape == (64, 80, 3) and r.anchors.sum() == 800 and _gap(r) >= 2


def test_overlay_mask_is_the_drawn_coverage_and_the_image_its_opacity_composite(tmp_path):
    """Independent re-drawing: mask == alpha/255, image == the composite with alpha/255 * opacity."""
    from PIL import Image, ImageDraw, ImageFont

    # a colour close to the card's: faint edge pixels round back to the clean value, yet stay in the mask
    v = V.load_vector(_write(tmp_path, BASE.replace("color = [255, 0, 0]", "color = [215, 225, 225]\nopacity = 0.2")))
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
    r = V.render(V.load_vector(_write(tmp_path, text)))
    single = V.render(V.load_vector(_write(tmp_path, BASE.replace('id = "bad"', 'id = "one"'), "one")))
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
    p = _write(tmp_path, text)
    r1 = V.render(V.load_vector(p))
    # crop 100x80 at (10, 10), then centre-crop 80x64: rows 10+8.., columns 10+10..
    assert np.array_equal(r1.clean[~r1.anchors], load_image(tmp_path / "a.png")[18:82, 20:100][~r1.anchors])
    save_png(tmp_path / "a.png", rng.integers(0, 255, (100, 120, 3), dtype=np.uint8))
    r2 = V.render(V.load_vector(p))
    assert r2.sha256 != r1.sha256


def test_prompt_source_needs_the_generate_stage(tmp_path):
    text = BASE.replace('kind = "recipe"\nrecipe = "security_card"\nseed = 1',
                        'kind = "prompt"\nprompt = "a receipt on a wooden table"\nseed = 7')
    v = V.load_vector(_write(tmp_path, text))
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


def test_discover_ignores_suites_and_rejects_duplicate_ids(tmp_path):
    _write(tmp_path, BASE)
    (tmp_path / "suites").mkdir()
    (tmp_path / "suites" / "smoke.toml").write_text('name = "smoke"\nvectors = ["*"]\n')
    assert list(V.discover(tmp_path)) == ["bad"]
    (tmp_path / "more").mkdir()
    _write(tmp_path / "more", BASE)
    with pytest.raises(ConfigError, match=r"more/bad\.toml: id: duplicate vector id 'bad' \(also in .*bad\.toml\)"):
        V.discover(tmp_path)
    with pytest.raises(ConfigError, match=r"vectors directory not found"):
        V.discover(tmp_path / "nope")


def test_get_vector_unknown_lists_known_ids(tmp_path):
    _write(tmp_path, BASE)
    _write(tmp_path, BASE.replace('id = "bad"', 'id = "ok"'), "ok")
    assert V.get_vector("ok", tmp_path).id == "ok"
    with pytest.raises(ConfigError, match=r"^unknown vector 'nope'; known: bad, ok$"):
        V.get_vector("nope", tmp_path)


S = 'kind = "recipe"\nrecipe = "security_card"\nseed = 1'
OV = 'kind = "text"\ntext = "HI"\nposition = [4, 4]'
OVB = OV + '\nsize = 12\ncolor = [255, 0, 0]'
AN = 'kind = "microprint"\nbox = [0, 40, 80, 50]\nrender = true'

BAD = [
    ("unknown top key", ('tags = ["t"]', 'tags = ["t"]\ncolour_space = "srgb"'),
     r"colour_space: unknown key; allowed: id, description, tags, size, source, overlays, anchors, expect"),
    ("id != stem", ('id = "bad"', 'id = "other"'), r"id: must equal the file name 'bad', got 'other'"),
    ("size too small", ("size = [64, 80]", "size = [16, 80]"), r"size: each side must be in 32\.\.2048 px, got \[16, 80\]"),
    ("size too large", ("size = [64, 80]", "size = [64, 4096]"), r"size: each side must be in 32\.\.2048 px"),
    ("size not a pair", ("size = [64, 80]", "size = 64"), r"size: expected \[height, width\] integers, got 64"),
    ("source kind", (S, 'kind = "http"\nurl = "x"'),
     r"source\.kind: 'http' is not a source kind; choose one of: skimage, file, recipe, prompt"),
    ("skimage name", (S, 'kind = "skimage"\nname = "moon"'),
     r"source\.name: 'moon' is not an offline skimage\.data photo; choose one of: astronaut, brick, .*rocket"),
    ("recipe name", (S, 'kind = "recipe"\nrecipe = "passport"'),
     r"source\.recipe: 'passport' is not a known recipe; choose one of: receipt, security_card"),
    ("recipe param", (S, S + '\nparams = { swirl = 3 }'),
     r"source\.params\.swirl: unknown key for recipe 'security_card'; allowed: period, lobes"),
    ("recipe param value", (S, S + '\nparams = { lobes = 1.5 }'),
     r"source\.params\.lobes: expected an integer in 0\.\.64, got 1\.5"),
    ("source key for kind", (S, 'kind = "skimage"\nname = "camera"\nseed = 3'),
     r"source\.seed: unknown key for kind 'skimage'; allowed: kind, name, crop, fit, blur"),
    ("missing file", (S, 'kind = "file"\npath = "missing.png"'), r"source\.path: file .*missing\.png not found"),
    ("file not png", (S, 'kind = "file"\npath = "photo.jpg"'), r"source\.path: 'photo\.jpg' is not a PNG"),
    ("fit mode", (S, 'kind = "skimage"\nname = "camera"\nfit = "stretch"'),
     r"source\.fit: 'stretch' is not allowed; choose one of: resize, crop"),
    ("blur range", (S, 'kind = "skimage"\nname = "camera"\nblur = -1'), r"source\.blur: expected a number in \[0, 10\]"),
    ("prompt missing", (S, 'kind = "prompt"'), r"source\.prompt: expected a non-empty string, got None"),
    ("overlay kind", (OV, 'kind = "sticker"\ntext = "HI"\nposition = [4, 4]'),
     r"overlays\[0\]\.kind: 'sticker' is not an overlay kind; choose one of: text, watermark, object"),
    ("overlay key", (OV, OV + '\nfont = "Arial"'),
     r"overlays\[0\]\.font: unknown key for kind 'text'; allowed: kind, text, position, size, color, opacity, "
     r"angle, stroke, stroke_color"),
    ("tiled on text", (OV, OV + '\ntiled = true'), r"overlays\[0\]\.tiled: unknown key for kind 'text'"),
    ("position outside", (OV, 'kind = "text"\ntext = "HI"\nposition = [80, 4]'),
     r"overlays\[0\]\.position: expected \[x, y\] integers inside the 80x64 image \(0 <= x < 80, 0 <= y < 64\)"),
    ("object box outside", (OVB, 'kind = "object"\nbox = [10, 10, 90, 30]'),
     r"overlays\[0\]\.box: box \[10, 10, 90, 30\] is outside the 80x64 image; allowed: 0 <= x0 < x1 <= 80"),
    ("object shape", (OVB, 'kind = "object"\nbox = [10, 10, 30, 30]\nshape = "star"'),
     r"overlays\[0\]\.shape: 'star' is not allowed; choose one of: ellipse, rect"),
    ("opacity", ("color = [255, 0, 0]", "color = [255, 0, 0]\nopacity = 1.5"),
     r"overlays\[0\]\.opacity: expected a number in \(0, 1\], got 1\.5"),
    ("colour", ("color = [255, 0, 0]", "color = [255, 0, 300]"),
     r"overlays\[0\]\.color: expected \[r, g, b\] integers in 0\.\.255, got \[255, 0, 300\]"),
    ("overlays not tables", ('tags = ["t"]', 'tags = ["t"]\noverlays = "none"', "[[overlays]]\n" + OVB + "\n", ""),
     r"overlays: expected an array of tables \(\[\[overlays\]\]\), got str"),
    ("anchor kind", (AN, 'kind = "hologram"\nbox = [0, 40, 80, 50]'),
     r"anchors\[0\]\.kind: 'hologram' is not an anchor kind; choose one of: microprint, fineprint, fabric, texture"),
    ("anchor box outside", (AN, 'kind = "microprint"\nbox = [0, 40, 80, 65]'),
     r"anchors\[0\]\.box: box \[0, 40, 80, 65\] is outside the 80x64 image"),
    ("anchor box empty", (AN, 'kind = "microprint"\nbox = [10, 40, 10, 50]'),
     r"anchors\[0\]\.box: box \[10, 40, 10, 50\] is empty or negative"),
    ("render on texture", (AN, 'kind = "texture"\nbox = [0, 40, 80, 50]\nrender = true'),
     r"anchors\[0\]\.render: render = true is only for kinds: microprint, fineprint"),
    ("anchor key", (AN, 'kind = "fabric"\nbox = [0, 40, 80, 50]\ntext = "x"'),
     r"anchors\[0\]\.text: unknown key for kind 'fabric'; allowed: kind, box, render"),
    ("expect key", ("anchors_survive = true", "anchors_survive = true\nsharpness = 3"),
     r"expect\.sharpness: unknown key; allowed: anchors_survive, max_mask_coverage, upscale, min_anchor_gap_px"),
    ("expect value", ("anchors_survive = true", "anchors_survive = true\nmax_mask_coverage = 0"),
     r"expect\.max_mask_coverage: expected a number in \(0, 1\], got 0"),
    ("expect bool", ("anchors_survive = true", 'anchors_survive = "yes"'),
     r"expect\.anchors_survive: expected true or false, got 'yes'"),
    ("corrupt toml", ("size = [64, 80]", "size = [64, 80"), r"invalid TOML \("),
]


@pytest.mark.parametrize("old_new,pattern", [(c[1], c[2]) for c in BAD], ids=[c[0] for c in BAD])
def test_config_errors_name_the_file_and_the_key(tmp_path, old_new, pattern):
    text = BASE
    for old, new in zip(old_new[::2], old_new[1::2]):
        assert old in text
        text = text.replace(old, new, 1)
    p = _write(tmp_path, text)
    with pytest.raises(ConfigError, match=r"^" + str(p).replace(".", r"\.") + r": " + pattern) as exc:
        V.load_vector(p)
    assert "\n" not in str(exc.value)


def test_config_errors_found_when_rendering(tmp_path):
    crop = _write(tmp_path, BASE.replace(S, 'kind = "skimage"\nname = "camera"\ncrop = [0, 0, 600, 100]'))
    with pytest.raises(ConfigError, match=r"bad\.toml: source\.crop: box \[0, 0, 600, 100\] is outside the 512x512 "
                                          r"source image"):
        V.render(V.load_vector(crop))
    small = _write(tmp_path, BASE.replace(S, 'kind = "skimage"\nname = "camera"\ncrop = [0, 0, 50, 50]\nfit = "crop"'))
    with pytest.raises(ConfigError, match=r"bad\.toml: source\.fit: 'crop' needs a source of at least 80x64, got 50x50"):
        V.render(V.load_vector(small))
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    broken = _write(tmp_path, BASE.replace(S, 'kind = "file"\npath = "broken.png"'))
    with pytest.raises(ConfigError, match=r"bad\.toml: source\.path: .*broken\.png"):
        V.render(V.load_vector(broken))


def test_missing_or_unreadable_vector_file(tmp_path):
    with pytest.raises(ConfigError, match=r"nope\.toml: vector file not found"):
        V.load_vector(tmp_path / "nope.toml")
    (tmp_path / "bin.toml").write_bytes(b"id = \"bin\"\n\xff\xfe")
    with pytest.raises(ConfigError, match=r"bin\.toml: invalid TOML \(not UTF-8\)"):
        V.load_vector(tmp_path / "bin.toml")
