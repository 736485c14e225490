"""harness.suite.vectors.schema: every bad vector file is a one-line ConfigError naming the file and the key."""

from __future__ import annotations

import pytest
from vector_helpers import AN, BASE, OV, OVB, S, write

from harness.errors import ConfigError
from harness.suite import vectors as V

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
     r"expect\.sharpness: unknown key; allowed: anchors_survive, max_mask_coverage, upscale, min_anchor_gap_px, "
     r"min_detect_recall, mask_rejected$"),
    ("expect recall range", ("anchors_survive = true", "anchors_survive = true\nmin_detect_recall = 1.5"),
     r"expect\.min_detect_recall: expected a number in \[0, 1\], got 1\.5$"),
    ("expect recall type", ("anchors_survive = true", 'anchors_survive = true\nmin_detect_recall = "high"'),
     r"expect\.min_detect_recall: expected a number in \[0, 1\], got 'high'$"),
    ("expect rejected bool", ("anchors_survive = true", "anchors_survive = true\nmask_rejected = 1"),
     r"expect\.mask_rejected: expected true or false, got 1$"),
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
    p = write(tmp_path, text)
    with pytest.raises(ConfigError, match=r"^" + str(p).replace(".", r"\.") + r": " + pattern) as exc:
        V.load_vector(p)
    assert "\n" not in str(exc.value)


def test_missing_or_unreadable_vector_file(tmp_path):
    with pytest.raises(ConfigError, match=r"nope\.toml: vector file not found"):
        V.load_vector(tmp_path / "nope.toml")
    (tmp_path / "bin.toml").write_bytes(b"id = \"bin\"\n\xff\xfe")
    with pytest.raises(ConfigError, match=r"bin\.toml: invalid TOML \(not UTF-8\)"):
        V.load_vector(tmp_path / "bin.toml")


RECEIPT = 'kind = "recipe"\nrecipe = "receipt"'

MORE_BAD = [
    ("bool is not an int", ("size = 12", "size = true"),
     r"overlays\[0\]\.size: expected an integer in 4\.\.512, got True$"),
    ("bool is not a number", ("color = [255, 0, 0]", "color = [255, 0, 0]\nopacity = true"),
     r"overlays\[0\]\.opacity: expected a number in \(0, 1\], got True$"),
    ("bool in a colour", ("color = [255, 0, 0]", "color = [255, 0, true]"),
     r"overlays\[0\]\.color: expected \[r, g, b\] integers in 0\.\.255, got \[255, 0, True\]$"),
    ("box not ints", (AN, 'kind = "texture"\nbox = [0, 40, 80.0, 50]'),
     r"anchors\[0\]\.box: expected \[x0, y0, x1, y1\] integers, got \[0, 40, 80\.0, 50\]$"),
    ("spacing", (OV, 'kind = "watermark"\ntiled = true\nspacing = [10, -1]\ntext = "HI"\nposition = [4, 4]'),
     r"overlays\[0\]\.spacing: expected \[x_gap, y_gap\] integers in 0\.\.2048, got \[10, -1\]$"),
    ("seed range", (S, S.replace("seed = 1", "seed = -1")),
     r"source\.seed: expected an integer in 0\.\.4294967295, got -1$"),
    ("recipe items", (S, RECEIPT + "\nparams = { items = [] }"),
     r"source\.params\.items: expected a list of 1\.\.40 strings, got \[\]$"),
    ("recipe item", (S, RECEIPT + '\nparams = { items = ["A", " "] }'),
     r"source\.params\.items: expected a non-empty string, got ' '$"),
    ("recipe barcode", (S, RECEIPT + '\nparams = { barcode = "yes" }'),
     r"source\.params\.barcode: expected true or false, got 'yes'$"),
    ("recipe period", (S, S + "\nparams = { period = 0.5 }"),
     r"source\.params\.period: expected a number in \[1, 64\], got 0\.5$"),
    ("source not a table", ("[source]\n" + S, 'source = "camera"'), r"source: expected a table, got str$"),
    ("tags", ('tags = ["t"]', 'tags = ["t", ""]'), r"tags: expected a list of non-empty strings, got \['t', ''\]$"),
    ("multi-line text", ('text = "HI"', 'text = "H\\nI"'), r"overlays\[0\]\.text: expected a single-line string$"),
]


@pytest.mark.parametrize("old_new,pattern", [(c[1], c[2]) for c in MORE_BAD], ids=[c[0] for c in MORE_BAD])
def test_every_value_is_read_by_harness_validate(tmp_path, old_new, pattern):
    text = BASE
    for old, new in zip(old_new[::2], old_new[1::2]):
        assert old in text
        text = text.replace(old, new, 1)
    p = write(tmp_path, text)
    with pytest.raises(ConfigError, match=r"^" + str(p).replace(".", r"\.") + r": " + pattern):
        V.load_vector(p)


def test_recipe_params_get_their_defaults_and_types(tmp_path):
    v = V.load_vector(write(tmp_path, BASE.replace(S, RECEIPT + '\nparams = { items = ["TEA"] }')))
    assert v.source["params"] == {"items": ("TEA",), "barcode": True} and v.source["seed"] == 0
    v = V.load_vector(write(tmp_path, BASE.replace(S, S + "\nparams = { period = 2 }")))
    assert v.source["params"] == {"period": 2.0, "lobes": 7} and isinstance(v.source["params"]["period"], float)


def test_expect_keys_of_the_absolute_checks_are_read(tmp_path):
    """min_detect_recall and mask_rejected (enforced by harness.checks.expectations) parse with their types."""
    v = V.load_vector(write(tmp_path, BASE.replace("anchors_survive = true", "anchors_survive = true\n"
                                                   "min_detect_recall = 1\nmask_rejected = true\nmin_anchor_gap_px = 3")))
    assert v.expect == {"anchors_survive": True, "min_detect_recall": 1.0, "mask_rejected": True, "min_anchor_gap_px": 3}
    assert isinstance(v.expect["min_detect_recall"], float)
    assert V.load_vector(write(tmp_path, BASE)).expect == {"anchors_survive": True}  # defaults are not filled in
