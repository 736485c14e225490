"""The vector file format: the :class:`Vector` dataclass, and parsing/validation of ``<id>.toml``.

Example (every key, with its allowed values, is validated; a bad value raises
:class:`~harness.errors.ConfigError` naming the file and the key)::

    id = "watermark_grass"            # must equal the file stem
    description = "semi-transparent watermark over grass"
    tags = ["watermark", "texture"]
    size = [256, 256]                 # [height, width], each 32..2048

    [source]
    kind = "skimage"                  # skimage | file | recipe | prompt | generated
    name = "grass"                    # skimage: one of SKIMAGE_PHOTOS
    # crop = [x0, y0, x1, y1]         # skimage/file: crop the source first
    # fit = "resize"                  # skimage/file: "resize" (centre-crop to the aspect,
    #                                 # then Lanczos) or "crop" (centre-crop only)
    # blur = 0.7                      # Gaussian sigma applied after fitting
    #                                 # prompt: prompt = "...", negative_prompt, seed
    #                                 # generated: no keys but an optional note; an
    #                                 # unconditional model (generate: face_gan) makes it

    [[overlays]]
    kind = "watermark"                # text | watermark | object
    text = "(c) STOCK"
    position = [40, 110]              # [x, y] of the text origin
    size = 30                         # font size in px
    color = [255, 255, 255]
    opacity = 0.5
    # angle = 20                      # degrees, counter-clockwise
    # tiled = true                    # watermark only: repeat over the image
    # spacing = [40, 40]              # watermark only: gaps between tiles

    [[anchors]]
    kind = "texture"                  # microprint | fineprint | fabric | texture
    box = [10, 190, 120, 250]         # x0, y0, x1, y1 (x1, y1 exclusive)
    # render = true                   # microprint/fineprint: draw it into the box

    [expect]                          # enforced as absolute checks (harness.checks.expectations)
    anchors_survive = true            # each anchor keeps its fine texture through the pipeline
    # max_mask_coverage = 0.12        # the fill region covers at most this share of the image
    # min_detect_recall = 0.9         # detect finds >= this share of the overlay (default 0.5)
    # min_anchor_gap_px = 2           # the fill region stays >= this far (px) from every anchor
    # mask_rejected = true            # the mask stage is expected to reject the mask
    # upscale = 2                     # the output is this many times the vector's size

Recipes (``kind = "recipe"``) are in :mod:`.recipes`; the checks use :mod:`harness.validate`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.naming import NAME_RE
from harness.suite.vectors.recipes import RECIPES
from harness.validate import Where, is_int, read_toml

__all__ = ["Vector", "load_vector", "SKIMAGE_PHOTOS", "SOURCE_KINDS", "OVERLAY_KINDS", "ANCHOR_KINDS",
           "DRAWABLE_ANCHORS", "OBJECT_SHAPES", "FIT_MODES", "GENERATED_KINDS", "DEFAULT_MAX_MASK_COVERAGE",
           "MIN_SIZE", "MAX_SIZE"]

MIN_SIZE, MAX_SIZE = 32, 2048
DEFAULT_MAX_MASK_COVERAGE = 0.12
SKIMAGE_PHOTOS = ("astronaut", "brick", "camera", "cat", "chelsea", "coffee", "grass", "gravel", "rocket")
SOURCE_KINDS = ("skimage", "file", "recipe", "prompt", "generated")
OVERLAY_KINDS = ("text", "watermark", "object")
ANCHOR_KINDS = ("microprint", "fineprint", "fabric", "texture")
DRAWABLE_ANCHORS = ("microprint", "fineprint")
OBJECT_SHAPES = ("ellipse", "rect")
FIT_MODES = ("resize", "crop")
GENERATED_KINDS = ("prompt", "generated")  # source kinds whose image the generate stage makes

_TOP_KEYS = ("id", "description", "tags", "size", "source", "overlays", "anchors", "expect")
_SOURCE_KEYS = {
    "skimage": ("kind", "name", "crop", "fit", "blur"),
    "file": ("kind", "path", "crop", "fit", "blur"),
    "recipe": ("kind", "recipe", "seed", "params", "blur"),
    "prompt": ("kind", "prompt", "negative_prompt", "seed"),
    "generated": ("kind", "note"),
}
_TEXT_KEYS = ("kind", "text", "position", "size", "color", "opacity", "angle", "stroke", "stroke_color")
_OVERLAY_KEYS = {
    "text": _TEXT_KEYS,
    "watermark": _TEXT_KEYS + ("tiled", "spacing"),
    "object": ("kind", "shape", "box", "color", "opacity"),
}
_ANCHOR_KEYS = {
    "microprint": ("kind", "box", "render", "text", "size", "color"),
    "fineprint": ("kind", "box", "render", "text", "size", "color"),
    "fabric": ("kind", "box", "render"),
    "texture": ("kind", "box", "render"),
}
_EXPECT_KEYS = ("anchors_survive", "max_mask_coverage", "upscale", "min_anchor_gap_px", "min_detect_recall",
                "mask_rejected")
_ID_RE = NAME_RE
_SEED_MAX = 2**32 - 1


@dataclass(frozen=True)
class Vector:
    """One parsed, validated vector file.  ``digest`` hashes the file and its asset."""

    id: str
    path: Path
    description: str
    tags: tuple[str, ...]
    size: tuple[int, int]  # (H, W)
    source: dict[str, Any]
    overlays: tuple[dict[str, Any], ...] = ()
    anchors: tuple[dict[str, Any], ...] = ()
    expect: dict[str, Any] = field(default_factory=dict)
    digest: str = ""

    @property
    def needs_generation(self) -> bool:
        """True for a ``prompt`` or ``generated`` source: the generate stage makes the image."""
        return self.source.get("kind") in GENERATED_KINDS

    @property
    def content_hash(self) -> str:
        return self.digest

    @property
    def max_mask_coverage(self) -> float:
        return float(self.expect.get("max_mask_coverage", DEFAULT_MAX_MASK_COVERAGE))


# --- vector-specific readers, on top of harness.validate -------------------------------------------------------------

def _box(w: Where, key: str, box: Any, size: tuple[int, int] | None) -> tuple[int, int, int, int]:
    """``[x0, y0, x1, y1]`` integers, non-empty, inside ``size`` (H, W) when given."""
    x0, y0, x1, y1 = w.ints(key, box, ("x0", "y0", "x1", "y1"))
    if not (0 <= x0 < x1 and 0 <= y0 < y1):
        raise w.error(key, f"box {box} is empty or negative; need 0 <= x0 < x1 and 0 <= y0 < y1")
    if size is not None and (x1 > size[1] or y1 > size[0]):
        raise w.error(key, f"box {box} is outside the {size[1]}x{size[0]} image; "
                           f"allowed: 0 <= x0 < x1 <= {size[1]}, 0 <= y0 < y1 <= {size[0]}")
    return x0, y0, x1, y1


def _color(w: Where, key: str, c: Any) -> tuple[int, int, int]:
    r, g, b = w.ints(key, c, ("r", "g", "b"), 0, 255)
    return r, g, b


def _position(w: Where, key: str, pos: Any, hw: tuple[int, int]) -> None:
    """``[x, y]`` inside the image (one message for a wrong type and a point outside)."""
    if not (isinstance(pos, list) and len(pos) == 2 and all(is_int(v) for v in pos)
            and 0 <= pos[0] < hw[1] and 0 <= pos[1] < hw[0]):
        raise w.invalid(key, pos, f"[x, y] integers inside the {hw[1]}x{hw[0]} image "
                                  f"(0 <= x < {hw[1]}, 0 <= y < {hw[0]})")


# --- parsing -----------------------------------------------------------------------------------------------------

def _parse_source(w: Where, raw: Any, folder: Path) -> tuple[dict[str, Any], bytes]:
    """The validated ``[source]`` table, plus the asset's bytes (for the digest)."""
    src = dict(w.table("source", raw))
    s = w.at("source")
    kind = s.choice("kind", src.get("kind"), SOURCE_KINDS, "a source kind")
    s.keys(src, _SOURCE_KEYS[kind], what=f"kind {kind!r}")
    asset = b""
    if kind == "skimage":
        s.choice("name", src.get("name"), SKIMAGE_PHOTOS, "an offline skimage.data photo")
    elif kind == "file":
        rel = s.string("path", src.get("path"))
        f = folder / rel
        if f.suffix.lower() != ".png":
            raise s.error("path", f"{rel!r} is not a PNG; allowed: a .png file relative to the vector file")
        if not f.is_file():
            raise s.error("path", f"file {f} not found (paths are relative to the vector file)")
        asset = f.read_bytes()
    elif kind == "recipe":
        name = s.choice("recipe", src.get("recipe"), tuple(RECIPES), "a known recipe")
        src["seed"] = s.integer("seed", src.get("seed", 0), 0, _SEED_MAX)
        params = s.table("params", src.get("params", {}))
        p = s.at("params")
        readers = RECIPES[name].params
        p.keys(params, tuple(readers), what=f"recipe {name!r}")
        src["params"] = {k: (read(p, k, params[k]) if k in params else default)
                         for k, (read, default) in readers.items()}
    elif kind == "generated":  # an unconditional generator's image: nothing to read but a note
        if "note" in src:
            s.string("note", src["note"], empty=True)
    else:  # prompt
        s.string("prompt", src.get("prompt"))
        if "negative_prompt" in src:
            s.string("negative_prompt", src["negative_prompt"], empty=True)
        src["seed"] = s.integer("seed", src.get("seed", 0), 0, _SEED_MAX)
    if "crop" in src:
        _box(s, "crop", src["crop"], None)
    if "fit" in src:
        s.choice("fit", src["fit"], FIT_MODES)
    if "blur" in src:
        s.number("blur", src["blur"], 0.0, 10.0)
    return src, asset


def _parse_overlay(w: Where, ov: dict[str, Any], hw: tuple[int, int]) -> dict[str, Any]:
    kind = w.choice("kind", ov.get("kind"), OVERLAY_KINDS, "an overlay kind")
    w.keys(ov, _OVERLAY_KEYS[kind], what=f"kind {kind!r}")
    out = dict(ov)
    out["color"] = list(_color(w, "color", ov.get("color", [255, 255, 255])))
    out["opacity"] = w.number("opacity", ov.get("opacity", 1.0), 0.0, 1.0, lo_open=True)
    if kind == "object":
        _box(w, "box", ov.get("box"), hw)
        out["shape"] = w.choice("shape", ov.get("shape", "ellipse"), OBJECT_SHAPES)
        return out
    w.string("text", ov.get("text"))
    _position(w, "position", ov.get("position"), hw)
    out["size"] = w.integer("size", ov.get("size", 20), 4, 512)
    if "angle" in ov:
        w.number("angle", ov["angle"], -360.0, 360.0)
    out["stroke"] = w.integer("stroke", ov.get("stroke", 0), 0, 32)
    if "stroke_color" in ov:
        _color(w, "stroke_color", ov["stroke_color"])
    if kind == "watermark":
        out["tiled"] = w.boolean("tiled", ov.get("tiled", False))
        if "spacing" in ov:
            w.ints("spacing", ov["spacing"], ("x_gap", "y_gap"), 0, MAX_SIZE)
            if not out["tiled"]:
                raise w.error("spacing", "only allowed with tiled = true")
    return out


def _parse_anchor(w: Where, an: dict[str, Any], hw: tuple[int, int]) -> dict[str, Any]:
    kind = w.choice("kind", an.get("kind"), ANCHOR_KINDS, "an anchor kind")
    w.keys(an, _ANCHOR_KEYS[kind], what=f"kind {kind!r}")
    _box(w, "box", an.get("box"), hw)
    out = dict(an)
    out["render"] = w.boolean("render", an.get("render", False))
    if out["render"] and kind not in DRAWABLE_ANCHORS:
        raise w.error("render", f"render = true is only for kinds: {', '.join(DRAWABLE_ANCHORS)}")
    if "text" in an:
        w.string("text", an["text"])
    if "size" in an:
        w.integer("size", an["size"], 4, 64)
    if "color" in an:
        _color(w, "color", an["color"])
    return out


def _parse_expect(w: Where, raw: Any) -> dict[str, Any]:
    ex = dict(w.table("expect", raw))
    e = w.at("expect")
    e.keys(ex, _EXPECT_KEYS)
    if "anchors_survive" in ex:
        e.boolean("anchors_survive", ex["anchors_survive"])
    if "max_mask_coverage" in ex:
        e.number("max_mask_coverage", ex["max_mask_coverage"], 0.0, 1.0, lo_open=True)
    if "upscale" in ex:
        e.integer("upscale", ex["upscale"], 1, 8)
    if "min_anchor_gap_px" in ex:
        e.integer("min_anchor_gap_px", ex["min_anchor_gap_px"], 0, MAX_SIZE)
    if "min_detect_recall" in ex:
        ex["min_detect_recall"] = e.number("min_detect_recall", ex["min_detect_recall"], 0.0, 1.0)
    if "mask_rejected" in ex:
        e.boolean("mask_rejected", ex["mask_rejected"])
    return ex


def load_vector(path: str | Path) -> Vector:
    """Parse and validate one vector file; every problem is a one-line ConfigError naming file and key."""
    p = Path(path)
    raw, data = read_toml(p, "vector")
    w = Where(p)
    w.keys(raw, _TOP_KEYS)
    vid = raw.get("id")
    if not isinstance(vid, str) or vid != p.stem:
        raise w.error("id", f"must equal the file name {p.stem!r}, got {vid!r}")
    if not _ID_RE.match(vid):
        raise w.error("id", f"{vid!r} has characters outside letters, digits, '_', '.', '-'")
    description = w.string("description", raw.get("description", ""), empty=True)
    tags = raw.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) and t for t in tags):
        raise w.invalid("tags", tags, "a list of non-empty strings")
    hw = w.ints("size", raw.get("size"), ("height", "width"))
    if not all(MIN_SIZE <= v <= MAX_SIZE for v in hw):
        raise w.error("size", f"each side must be in {MIN_SIZE}..{MAX_SIZE} px, got {list(hw)}")
    if "source" not in raw:
        raise w.error("source", "missing [source] table; allowed kinds: " + ", ".join(SOURCE_KINDS))
    src, asset = _parse_source(w, raw["source"], p.parent)
    overlays = tuple(_parse_overlay(w.at(f"overlays[{i}]"), ov, hw)
                     for i, ov in enumerate(w.array_of_tables("overlays", raw.get("overlays", []))))
    anchors = tuple(_parse_anchor(w.at(f"anchors[{i}]"), an, hw)
                    for i, an in enumerate(w.array_of_tables("anchors", raw.get("anchors", []))))
    expect = _parse_expect(w, raw.get("expect", {}))
    digest = hashlib.sha256(data + b"\0asset\0" + asset).hexdigest()
    return Vector(vid, p, description, tuple(tags), hw, src, overlays, anchors, expect, digest)
