"""Test vectors: codified failure cases, declared in ``vectors/<id>.toml``.

A vector is a source image (a real photograph from ``skimage.data``, a PNG file
next to the vector, a deterministic synthetic recipe, or a prompt for the
generate stage), overlays to remove (text, watermark, an object) drawn with
their exact ground-truth mask, texture *anchors* that must keep their
micro-texture (microprinting, fine print, fabric, texture), and expectations.
Rendering is deterministic: fonts are Pillow's bundled FreeType font
(``ImageFont.load_default(size=N)``), noise is seeded, resizing is Lanczos.

Example (every key, with its allowed values, is validated; a bad value raises
:class:`~harness.errors.ConfigError` naming the file and the key)::

    id = "watermark_grass"            # must equal the file stem
    description = "semi-transparent watermark over grass"
    tags = ["watermark", "texture"]
    size = [256, 256]                 # [height, width], each 32..2048

    [source]
    kind = "skimage"                  # skimage | file | recipe | prompt
    name = "grass"                    # skimage: one of SKIMAGE_PHOTOS
    # crop = [x0, y0, x1, y1]         # skimage/file: crop the source first
    # fit = "resize"                  # skimage/file: "resize" (centre-crop to the aspect,
    #                                 # then Lanczos) or "crop" (centre-crop only)
    # blur = 0.7                      # Gaussian sigma applied after fitting

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

    [expect]
    anchors_survive = true

The overlay mask is the exact coverage of what was drawn (``alpha/255``, combined
over overlays as ``1 - prod(1 - a_i)``): it says *where* an overlay is, whatever
its opacity, so a faint watermark is still a region to remove.  The image is
composited with ``alpha/255 * opacity``; where the mask is 0 it equals the clean
image bit for bit.
"""

from __future__ import annotations

import hashlib
import math
import re
import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

import numpy as np

from harness.errors import ConfigError, InputError

__all__ = ["Vector", "Rendered", "VECTORS_DIR", "load_vector", "discover", "get_vector", "render", "describe",
           "render_to_png", "overlay_anchor_gap", "SKIMAGE_PHOTOS", "RECIPES", "SOURCE_KINDS", "OVERLAY_KINDS",
           "ANCHOR_KINDS", "DEFAULT_MAX_MASK_COVERAGE", "MIN_SIZE", "MAX_SIZE"]

SUITES_SUBDIR = "suites"
MIN_SIZE, MAX_SIZE = 32, 2048
DEFAULT_MAX_MASK_COVERAGE = 0.12
SKIMAGE_PHOTOS = ("astronaut", "brick", "camera", "cat", "chelsea", "coffee", "grass", "gravel", "rocket")
SOURCE_KINDS = ("skimage", "file", "recipe", "prompt")
OVERLAY_KINDS = ("text", "watermark", "object")
ANCHOR_KINDS = ("microprint", "fineprint", "fabric", "texture")
DRAWABLE_ANCHORS = ("microprint", "fineprint")
OBJECT_SHAPES = ("ellipse", "rect")
FIT_MODES = ("resize", "crop")

_TOP_KEYS = ("id", "description", "tags", "size", "source", "overlays", "anchors", "expect")
_SOURCE_KEYS = {
    "skimage": ("kind", "name", "crop", "fit", "blur"),
    "file": ("kind", "path", "crop", "fit", "blur"),
    "recipe": ("kind", "recipe", "seed", "params", "blur"),
    "prompt": ("kind", "prompt", "negative_prompt", "seed"),
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
_EXPECT_KEYS = ("anchors_survive", "max_mask_coverage", "upscale", "min_anchor_gap_px")
_ID_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


# --- the data ------------------------------------------------------------------

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
        """True for a ``prompt`` source: the generate stage makes the image."""
        return self.source.get("kind") == "prompt"

    @property
    def content_hash(self) -> str:
        return self.digest

    @property
    def max_mask_coverage(self) -> float:
        return float(self.expect.get("max_mask_coverage", DEFAULT_MAX_MASK_COVERAGE))


@dataclass(frozen=True)
class Rendered:
    vector_id: str
    image: np.ndarray  # (H, W, 3) uint8, overlays drawn on
    clean: np.ndarray  # (H, W, 3) uint8, without overlays
    overlay_mask: np.ndarray  # (H, W) float32 in [0, 1], exact alpha of the overlays
    anchors: np.ndarray  # (H, W) bool
    sha256: str


# --- validation helpers ----------------------------------------------------------

def _err(path: Path, key: str, msg: str) -> ConfigError:
    return ConfigError(f"{path}: {key}: {msg}")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _check_keys(path: Path, prefix: str, table: dict[str, Any], allowed: tuple[str, ...], what: str = "") -> None:
    unknown = sorted(set(table) - set(allowed))
    if unknown:
        scope = f" for {what}" if what else ""
        raise _err(path, f"{prefix}{unknown[0]}", f"unknown key{scope}; allowed: {', '.join(allowed)}")


def _int(path: Path, key: str, v: Any, lo: int, hi: int) -> int:
    if not _is_int(v) or not lo <= v <= hi:
        raise _err(path, key, f"expected an integer in {lo}..{hi}, got {v!r}")
    return v


def _num(path: Path, key: str, v: Any, lo: float, hi: float, *, lo_open: bool = False) -> float:
    ok = _is_num(v) and (lo < v if lo_open else lo <= v) and v <= hi
    if not ok:
        rng = f"({lo:g}, {hi:g}]" if lo_open else f"[{lo:g}, {hi:g}]"
        raise _err(path, key, f"expected a number in {rng}, got {v!r}")
    return float(v)


def _bool(path: Path, key: str, v: Any) -> bool:
    if not isinstance(v, bool):
        raise _err(path, key, f"expected true or false, got {v!r}")
    return v


def _str(path: Path, key: str, v: Any, *, empty: bool = False) -> str:
    if not isinstance(v, str) or (not empty and not v.strip()):
        raise _err(path, key, f"expected a {'' if empty else 'non-empty '}string, got {v!r}")
    if "\n" in v or "\r" in v:
        raise _err(path, key, "expected a single-line string")
    return v


def _choice(path: Path, key: str, v: Any, allowed: tuple[str, ...], what: str = "") -> str:
    if v not in allowed:
        prefix = f"{v!r} is not {what}; " if what else f"{v!r} is not allowed; "
        raise _err(path, key, f"{prefix}choose one of: {', '.join(allowed)}")
    return v


def _box(path: Path, key: str, box: Any, size: tuple[int, int] | None) -> tuple[int, int, int, int]:
    """``[x0, y0, x1, y1]`` integers, non-empty, inside ``size`` (H, W) when given."""
    if not (isinstance(box, list) and len(box) == 4 and all(_is_int(v) for v in box)):
        raise _err(path, key, f"expected [x0, y0, x1, y1] integers, got {box!r}")
    x0, y0, x1, y1 = box
    if not (0 <= x0 < x1 and 0 <= y0 < y1):
        raise _err(path, key, f"box {box} is empty or negative; need 0 <= x0 < x1 and 0 <= y0 < y1")
    if size is not None and (x1 > size[1] or y1 > size[0]):
        raise _err(path, key, f"box {box} is outside the {size[1]}x{size[0]} image; "
                              f"allowed: 0 <= x0 < x1 <= {size[1]}, 0 <= y0 < y1 <= {size[0]}")
    return x0, y0, x1, y1


def _color(path: Path, key: str, c: Any) -> tuple[int, int, int]:
    if not (isinstance(c, list) and len(c) == 3 and all(_is_int(v) and 0 <= v <= 255 for v in c)):
        raise _err(path, key, f"expected [r, g, b] integers in 0..255, got {c!r}")
    return (c[0], c[1], c[2])


def _table(path: Path, key: str, v: Any) -> dict[str, Any]:
    if not isinstance(v, dict):
        raise _err(path, key, f"expected a table, got {type(v).__name__}")
    return v


def _array_of_tables(path: Path, key: str, v: Any) -> list[dict[str, Any]]:
    if not isinstance(v, list) or not all(isinstance(t, dict) for t in v):
        raise _err(path, key, f"expected an array of tables ([[{key}]]), got {type(v).__name__}")
    return v


# --- recipes ---------------------------------------------------------------------

@dataclass(frozen=True)
class _Recipe:
    fn: Callable[..., np.ndarray]
    params: dict[str, tuple[Callable[[Path, str, Any], Any], Any]]  # name -> (validator, default)
    doc: str


_RECEIPT_ITEMS = ("MILK 1L", "BREAD", "COFFEE 250G", "APPLES", "TEA", "RICE 1KG", "EGGS x12")


def _font(size: int):
    from PIL import ImageFont, features

    if not features.check("freetype2"):  # load_default(size=...) would silently ignore the size
        raise ConfigError("Pillow was built without FreeType; vectors need ImageFont.load_default(size=N)")
    return ImageFont.load_default(size=size)


def _receipt(size: tuple[int, int], seed: int, *, items: tuple[str, ...], barcode: bool) -> np.ndarray:
    """A scanned till receipt: seeded paper texture, a header, item lines with prices, a barcode."""
    from PIL import Image, ImageDraw
    from scipy import ndimage

    h, w = size
    rng = np.random.default_rng(seed)
    paper = np.array([246, 243, 236], np.float64) + rng.normal(0, 2.5, (h, w, 1))
    paper += ndimage.gaussian_filter(rng.normal(0, 6, (h, w)), 3)[..., None]
    img = Image.fromarray(np.clip(paper, 0, 255).astype(np.uint8))
    d = ImageDraw.Draw(img)
    f_big, f = _font(14), _font(10)
    d.text((w // 2 - 40, 8), "CORNER STORE", fill=(30, 30, 30), font=f_big)
    y = 34
    for it in items:
        d.text((12, y), it, fill=(40, 40, 40), font=f)
        d.text((w - 52, y), f"{rng.integers(1, 30)}.{rng.integers(0, 99):02d}", fill=(40, 40, 40), font=f)
        y += 14
    if barcode:
        for x in range(12, w - 12, 3):
            if rng.random() < 0.6:
                d.line([(x, h - 30), (x, h - 10)], fill=(20, 20, 20), width=1 + int(rng.random() < 0.3))
    return np.asarray(img)


def _security_card(size: tuple[int, int], seed: int, *, period: float, lobes: int) -> np.ndarray:
    """Security-paper style card: a pastel gradient with fine guilloche lines."""
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    base = np.stack([225 - 20 * xx / w, 232 - 10 * yy / h, 214 + 15 * xx / w], axis=2)
    r = np.hypot(xx - w * 0.3, yy - h * 0.6)
    lines = 0.5 + 0.5 * np.cos(2 * np.pi * (r / period + 0.8 * np.sin(np.arctan2(yy - h * 0.6, xx - w * 0.3) * lobes)))
    base -= 28 * (lines[..., None] ** 4) * np.array([0.6, 1.0, 0.4])
    rng = np.random.default_rng(seed)
    base += rng.normal(0, 1.2, (h, w, 1))
    return np.clip(np.rint(base), 0, 255).astype(np.uint8)


def _v_items(path: Path, key: str, v: Any) -> tuple[str, ...]:
    if not (isinstance(v, list) and 1 <= len(v) <= 40):
        raise _err(path, key, f"expected a list of 1..40 strings, got {v!r}")
    return tuple(_str(path, key, s) for s in v)


RECIPES: dict[str, _Recipe] = {
    "receipt": _Recipe(_receipt, {"items": (_v_items, _RECEIPT_ITEMS), "barcode": (_bool, True)},
                       "till receipt: paper noise, item lines with prices, barcode"),
    "security_card": _Recipe(_security_card,
                             {"period": (lambda p, k, v: _num(p, k, v, 1.0, 64.0), 3.1),
                              "lobes": (lambda p, k, v: _int(p, k, v, 0, 64), 7)},
                             "pastel card with fine guilloche lines"),
}


# --- parsing ---------------------------------------------------------------------

def _parse_source(p: Path, raw: Any) -> tuple[dict[str, Any], bytes]:
    """The validated ``[source]`` table, plus the asset's bytes (for the digest)."""
    src = dict(_table(p, "source", raw))
    kind = _choice(p, "source.kind", src.get("kind"), SOURCE_KINDS, "a source kind")
    _check_keys(p, "source.", src, _SOURCE_KEYS[kind], f"kind {kind!r}")
    asset = b""
    if kind == "skimage":
        _choice(p, "source.name", src.get("name"), SKIMAGE_PHOTOS, "an offline skimage.data photo")
    elif kind == "file":
        rel = _str(p, "source.path", src.get("path"))
        f = p.parent / rel
        if f.suffix.lower() != ".png":
            raise _err(p, "source.path", f"{rel!r} is not a PNG; allowed: a .png file relative to the vector file")
        if not f.is_file():
            raise _err(p, "source.path", f"file {f} not found (paths are relative to the vector file)")
        asset = f.read_bytes()
    elif kind == "recipe":
        name = _choice(p, "source.recipe", src.get("recipe"), tuple(RECIPES), "a known recipe")
        src["seed"] = _int(p, "source.seed", src.get("seed", 0), 0, 2**32 - 1)
        params = _table(p, "source.params", src.get("params", {}))
        spec_ = RECIPES[name].params
        _check_keys(p, "source.params.", params, tuple(spec_), f"recipe {name!r}")
        src["params"] = {k: (check(p, f"source.params.{k}", params[k]) if k in params else default)
                         for k, (check, default) in spec_.items()}
    else:  # prompt
        _str(p, "source.prompt", src.get("prompt"))
        if "negative_prompt" in src:
            _str(p, "source.negative_prompt", src["negative_prompt"], empty=True)
        src["seed"] = _int(p, "source.seed", src.get("seed", 0), 0, 2**32 - 1)
    if "crop" in src:
        _box(p, "source.crop", src["crop"], None)
    if "fit" in src:
        _choice(p, "source.fit", src["fit"], FIT_MODES)
    if "blur" in src:
        _num(p, "source.blur", src["blur"], 0.0, 10.0)
    return src, asset


def _parse_overlay(p: Path, i: int, ov: dict[str, Any], hw: tuple[int, int]) -> dict[str, Any]:
    key = f"overlays[{i}]"
    kind = _choice(p, f"{key}.kind", ov.get("kind"), OVERLAY_KINDS, "an overlay kind")
    _check_keys(p, f"{key}.", ov, _OVERLAY_KEYS[kind], f"kind {kind!r}")
    out = dict(ov)
    out["color"] = list(_color(p, f"{key}.color", ov.get("color", [255, 255, 255])))
    out["opacity"] = _num(p, f"{key}.opacity", ov.get("opacity", 1.0), 0.0, 1.0, lo_open=True)
    if kind == "object":
        _box(p, f"{key}.box", ov.get("box"), hw)
        out["shape"] = _choice(p, f"{key}.shape", ov.get("shape", "ellipse"), OBJECT_SHAPES)
        return out
    _str(p, f"{key}.text", ov.get("text"))
    pos = ov.get("position")
    if not (isinstance(pos, list) and len(pos) == 2 and all(_is_int(v) for v in pos)
            and 0 <= pos[0] < hw[1] and 0 <= pos[1] < hw[0]):
        raise _err(p, f"{key}.position", f"expected [x, y] integers inside the {hw[1]}x{hw[0]} image "
                                         f"(0 <= x < {hw[1]}, 0 <= y < {hw[0]}), got {pos!r}")
    out["size"] = _int(p, f"{key}.size", ov.get("size", 20), 4, 512)
    if "angle" in ov:
        _num(p, f"{key}.angle", ov["angle"], -360.0, 360.0)
    out["stroke"] = _int(p, f"{key}.stroke", ov.get("stroke", 0), 0, 32)
    if "stroke_color" in ov:
        _color(p, f"{key}.stroke_color", ov["stroke_color"])
    if kind == "watermark":
        out["tiled"] = _bool(p, f"{key}.tiled", ov.get("tiled", False))
        if "spacing" in ov:
            sp = ov["spacing"]
            if not (isinstance(sp, list) and len(sp) == 2 and all(_is_int(v) and 0 <= v <= MAX_SIZE for v in sp)):
                raise _err(p, f"{key}.spacing", f"expected [x_gap, y_gap] integers in 0..{MAX_SIZE}, got {sp!r}")
            if not out["tiled"]:
                raise _err(p, f"{key}.spacing", "only allowed with tiled = true")
    return out


def _parse_anchor(p: Path, i: int, an: dict[str, Any], hw: tuple[int, int]) -> dict[str, Any]:
    key = f"anchors[{i}]"
    kind = _choice(p, f"{key}.kind", an.get("kind"), ANCHOR_KINDS, "an anchor kind")
    _check_keys(p, f"{key}.", an, _ANCHOR_KEYS[kind], f"kind {kind!r}")
    _box(p, f"{key}.box", an.get("box"), hw)
    out = dict(an)
    out["render"] = _bool(p, f"{key}.render", an.get("render", False))
    if out["render"] and kind not in DRAWABLE_ANCHORS:
        raise _err(p, f"{key}.render", f"render = true is only for kinds: {', '.join(DRAWABLE_ANCHORS)}")
    if "text" in an:
        _str(p, f"{key}.text", an["text"])
    if "size" in an:
        _int(p, f"{key}.size", an["size"], 4, 64)
    if "color" in an:
        _color(p, f"{key}.color", an["color"])
    return out


def _parse_expect(p: Path, raw: Any) -> dict[str, Any]:
    ex = dict(_table(p, "expect", raw))
    _check_keys(p, "expect.", ex, _EXPECT_KEYS)
    if "anchors_survive" in ex:
        _bool(p, "expect.anchors_survive", ex["anchors_survive"])
    if "max_mask_coverage" in ex:
        _num(p, "expect.max_mask_coverage", ex["max_mask_coverage"], 0.0, 1.0, lo_open=True)
    if "upscale" in ex:
        _int(p, "expect.upscale", ex["upscale"], 1, 8)
    if "min_anchor_gap_px" in ex:
        _int(p, "expect.min_anchor_gap_px", ex["min_anchor_gap_px"], 0, MAX_SIZE)
    return ex


def load_vector(path: str | Path) -> Vector:
    """Parse and validate one vector file; every problem is a one-line ConfigError naming file and key."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{p}: vector file not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{p}: is a directory, expected a vector .toml file") from None
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read vector file ({exc.strerror})") from None
    try:
        raw = tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{p}: invalid TOML (not UTF-8)") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: invalid TOML ({' '.join(str(exc).split())})") from None
    _check_keys(p, "", raw, _TOP_KEYS)
    vid = raw.get("id")
    if not isinstance(vid, str) or vid != p.stem:
        raise _err(p, "id", f"must equal the file name {p.stem!r}, got {vid!r}")
    if not _ID_RE.match(vid):
        raise _err(p, "id", f"{vid!r} has characters outside letters, digits, '_', '.', '-'")
    description = _str(p, "description", raw.get("description", ""), empty=True)
    tags = raw.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) and t for t in tags):
        raise _err(p, "tags", f"expected a list of non-empty strings, got {tags!r}")
    size = raw.get("size")
    if not (isinstance(size, list) and len(size) == 2 and all(_is_int(v) for v in size)):
        raise _err(p, "size", f"expected [height, width] integers, got {size!r}")
    if not all(MIN_SIZE <= v <= MAX_SIZE for v in size):
        raise _err(p, "size", f"each side must be in {MIN_SIZE}..{MAX_SIZE} px, got {size}")
    hw = (size[0], size[1])
    if "source" not in raw:
        raise _err(p, "source", "missing [source] table; allowed kinds: " + ", ".join(SOURCE_KINDS))
    src, asset = _parse_source(p, raw["source"])
    overlays = tuple(_parse_overlay(p, i, ov, hw)
                     for i, ov in enumerate(_array_of_tables(p, "overlays", raw.get("overlays", []))))
    anchors = tuple(_parse_anchor(p, i, an, hw)
                    for i, an in enumerate(_array_of_tables(p, "anchors", raw.get("anchors", []))))
    expect = _parse_expect(p, raw.get("expect", {}))
    digest = hashlib.sha256(data + b"\0asset\0" + asset).hexdigest()
    return Vector(vid, p, description, tuple(tags), hw, src, overlays, anchors, expect, digest)


def _vector_files(root: Path) -> list[Path]:
    out = []
    for f in sorted(root.rglob("*.toml")):
        rel = f.relative_to(root).parts
        if rel[0] == SUITES_SUBDIR or any(part.startswith(".") for part in rel):
            continue
        out.append(f)
    return out


def discover(roots: str | Path | Sequence[str | Path]) -> dict[str, Vector]:
    """Every vector under ``roots`` (one folder or several, searched in order; sub-folders too,
    except ``suites/``), sorted by id.  An id defined twice is an error naming both files."""
    if isinstance(roots, (str, Path)):
        roots = [roots]
    found: dict[str, Vector] = {}
    for root in roots:
        r = Path(root)
        if not r.is_dir():
            raise ConfigError(f"{r}: vectors directory not found")
        for f in _vector_files(r):
            v = load_vector(f)
            if v.id in found:
                if found[v.id].path.resolve() == f.resolve():
                    continue
                raise ConfigError(f"{f}: id: duplicate vector id {v.id!r} (also in {found[v.id].path}); "
                                  f"ids must be unique across the project and the built-in vectors")
            found[v.id] = v
    return {vid: found[vid] for vid in sorted(found)}


def get_vector(vector_id: str, roots: str | Path | Sequence[str | Path]) -> Vector:
    known = discover(roots)
    if vector_id not in known:
        raise ConfigError(f"unknown vector {vector_id!r}; known: {', '.join(known) or '(none)'}")
    return known[vector_id]


# --- rendering -------------------------------------------------------------------

def _fit(img: np.ndarray, size: tuple[int, int], mode: str = "resize") -> np.ndarray:
    """``resize``: centre-crop to the target aspect, then Lanczos.  ``crop``: centre-crop only."""
    from PIL import Image

    h, w = img.shape[:2]
    th, tw = size
    if mode == "crop":
        y0, x0 = (h - th) // 2, (w - tw) // 2
        return np.ascontiguousarray(img[y0:y0 + th, x0:x0 + tw])
    if h * tw > w * th:
        nh = max(1, round(w * th / tw))
        y0 = (h - nh) // 2
        img = img[y0:y0 + nh]
    else:
        nw = max(1, round(h * tw / th))
        x0 = (w - nw) // 2
        img = img[:, x0:x0 + nw]
    if img.shape[:2] == (th, tw):
        return np.ascontiguousarray(img)
    return np.asarray(Image.fromarray(np.ascontiguousarray(img)).resize((tw, th), Image.Resampling.LANCZOS))


def _as_rgb8(img: np.ndarray) -> np.ndarray:
    img = np.asarray(img)
    if img.dtype == np.uint16:
        img = np.rint(img / 257.0).astype(np.uint8)
    elif img.dtype != np.uint8:
        img = np.clip(np.rint(img.astype(np.float64)), 0, 255).astype(np.uint8)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    return np.ascontiguousarray(img[..., :3])


def _source_raw(v: Vector) -> np.ndarray:
    src = v.source
    kind = src["kind"]
    if kind == "prompt":
        raise ConfigError(f"{v.path}: source.kind: vector {v.id!r} has a prompt source; its image is made by the "
                          f"generate stage (pass it as render(vector, base=image))")
    if kind == "skimage":
        from skimage import data

        return getattr(data, src["name"])()
    if kind == "file":
        from harness.imageio import load_image

        try:
            return load_image(v.path.parent / src["path"])
        except InputError as exc:
            raise _err(v.path, "source.path", str(exc)) from None
    recipe = RECIPES[src["recipe"]]
    return recipe.fn(v.size, int(src["seed"]), **src["params"])


def _prepare(v: Vector, img: np.ndarray) -> np.ndarray:
    """Crop, fit to ``v.size`` and blur a source image."""
    src = v.source
    img = _as_rgb8(img)
    h, w = img.shape[:2]
    if "crop" in src:
        x0, y0, x1, y1 = src["crop"]
        if x1 > w or y1 > h:
            raise _err(v.path, "source.crop", f"box {src['crop']} is outside the {w}x{h} source image; "
                                              f"allowed: x1 <= {w}, y1 <= {h}")
        img = img[y0:y1, x0:x1]
    mode = src.get("fit", "resize")
    if mode == "crop" and (img.shape[0] < v.size[0] or img.shape[1] < v.size[1]):
        raise _err(v.path, "source.fit", f"'crop' needs a source of at least {v.size[1]}x{v.size[0]}, "
                                         f"got {img.shape[1]}x{img.shape[0]}; use fit = \"resize\"")
    img = _fit(np.ascontiguousarray(img), v.size, mode)
    if src.get("blur"):
        from scipy import ndimage

        s = float(src["blur"])
        img = np.clip(np.rint(np.stack([ndimage.gaussian_filter(img[..., c].astype(np.float64), s)
                                        for c in range(3)], axis=2)), 0, 255).astype(np.uint8)
    return img


def _draw_anchor_content(img: np.ndarray, an: dict[str, Any]) -> np.ndarray:
    """Microprint / fine print drawn into the clean image (it is content, not overlay), clipped to its box."""
    from PIL import Image, ImageDraw

    x0, y0, x1, y1 = an["box"]
    pil = Image.fromarray(img)
    d = ImageDraw.Draw(pil)
    color = tuple(an.get("color", [60, 60, 70]))
    if an["kind"] == "microprint":
        size = int(an.get("size", 6))
        text = (an.get("text", "SECURE") + " ") * 60
        y = y0
        while y + size <= y1:
            d.text((x0 - (y * 7) % 23, y), text, fill=color, font=_font(size))
            y += size + 1
    else:
        size = int(an.get("size", 8))
        words = an.get("text", "Terms and conditions apply. Valid only with proof of purchase. "
                               "Not redeemable for cash. See store for details.").split()
        y, line = y0, ""
        f = _font(size)
        for word in words * 4:
            trial = (line + " " + word).strip()
            if d.textlength(trial, font=f) > x1 - x0:
                d.text((x0, y), line, fill=color, font=f)
                y += size + 2
                line = word
                if y + size > y1:
                    break
            else:
                line = trial
    out = np.asarray(pil).copy()
    keep = np.zeros(img.shape[:2], bool)
    keep[y0:y1, x0:x1] = True
    return np.where(keep[..., None], out, img)


def _text_layer(size: tuple[int, int], ov: dict[str, Any], stroke: int):
    """The alpha (mode "L") of a text/watermark overlay, drawn with ``stroke``; single or tiled."""
    from PIL import Image, ImageDraw

    h, w = size
    f = _font(int(ov["size"]))
    text, (px, py) = ov["text"], ov["position"]
    angle = float(ov.get("angle", 0.0))
    if not ov.get("tiled"):
        layer = Image.new("L", (w, h), 0)
        ImageDraw.Draw(layer).text((px, py), text, fill=255, font=f, stroke_width=stroke, stroke_fill=255)
        if angle:
            layer = layer.rotate(angle, resample=Image.Resampling.BICUBIC, center=(px, py))
        return layer
    # tiled: a staggered grid on a padded canvas (so rotation leaves no empty corners), rotated about the
    # image centre, then cropped.  The grid depends on the overlay only, never on ``stroke``.
    full = int(ov.get("stroke", 0))
    bx0, by0, bx1, by1 = f.getbbox(text, stroke_width=full)
    gx, gy = ov.get("spacing", [2 * int(ov["size"]), 2 * int(ov["size"])])
    step_x, step_y = max(1, bx1 - bx0 + gx), max(1, by1 - by0 + gy)
    pad = int(math.ceil(math.hypot(w, h) / 2)) + max(step_x, step_y)
    cw, ch = w + 2 * pad, h + 2 * pad
    layer = Image.new("L", (cw, ch), 0)
    d = ImageDraw.Draw(layer)
    j0, j1 = -((pad + py) // step_y) - 1, (ch - pad - py) // step_y + 1
    i0, i1 = -((pad + px) // step_x) - 2, (cw - pad - px) // step_x + 1
    for j in range(j0, j1 + 1):
        for i in range(i0, i1 + 1):
            x = pad + px + i * step_x + (j % 2) * (step_x // 2)
            y = pad + py + j * step_y
            d.text((x, y), text, fill=255, font=f, stroke_width=stroke, stroke_fill=255)
    if angle:
        layer = layer.rotate(angle, resample=Image.Resampling.BICUBIC, center=(pad + w / 2, pad + h / 2))
    return layer.crop((pad, pad, pad + w, pad + h))


def _overlay_layer(size: tuple[int, int], ov: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """RGB colour (H, W, 3) and alpha (H, W) in [0, 1] of one overlay, drawn on a transparent layer."""
    from PIL import Image, ImageDraw

    h, w = size
    color = tuple(ov.get("color", [255, 255, 255]))
    rgb = np.zeros((h, w, 3), np.float64) + np.array(color, np.float64)
    if ov["kind"] == "object":
        alpha = Image.new("L", (w, h), 0)
        d = ImageDraw.Draw(alpha)
        x0, y0, x1, y1 = ov["box"]
        if ov.get("shape", "ellipse") == "ellipse":
            d.ellipse([x0, y0, x1 - 1, y1 - 1], fill=255)
        else:
            d.rectangle([x0, y0, x1 - 1, y1 - 1], fill=255)
        yy, xx = np.mgrid[0:h, 0:w]
        shade = 1.0 - 0.35 * np.clip(np.hypot((xx - x0) / max(x1 - x0, 1), (yy - y0) / max(y1 - y0, 1)), 0, 1.4)
        rgb = rgb * shade[..., None]
    else:
        stroke = int(ov.get("stroke", 0))
        alpha = _text_layer(size, ov, stroke)
        if stroke:
            fill = np.asarray(_text_layer(size, ov, 0), np.float64)[..., None] / 255.0
            sc = np.array(ov.get("stroke_color", [0, 0, 0]), np.float64)
            rgb = fill * rgb + (1 - fill) * sc
    return rgb, np.asarray(alpha, np.float64) / 255.0


def _compose(v: Vector, base: np.ndarray) -> Rendered:
    img = base
    anchors = np.zeros(v.size, bool)
    for an in v.anchors:
        if an.get("render"):
            img = _draw_anchor_content(img, an)
        x0, y0, x1, y1 = an["box"]
        anchors[y0:y1, x0:x1] = True
    clean = np.ascontiguousarray(img, dtype=np.uint8)
    out = clean.astype(np.float64)
    total = np.zeros(v.size, np.float64)
    for ov in v.overlays:
        rgb, cover = _overlay_layer(v.size, ov)
        a = cover * float(ov.get("opacity", 1.0))
        out = out * (1 - a[..., None]) + rgb * a[..., None]  # exactly ``clean`` wherever every a == 0
        total = 1 - (1 - total) * (1 - cover)
    image = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    mask = np.clip(total, 0.0, 1.0).astype(np.float32)
    h = hashlib.sha256(f"{v.size[0]}x{v.size[1]}".encode())
    for arr in (image, mask, anchors):
        h.update(np.ascontiguousarray(arr).tobytes())
    for arr in (image, clean, mask, anchors):
        arr.setflags(write=False)
    return Rendered(v.id, image, clean, mask, anchors, h.hexdigest())


class _Key:
    """lru_cache key: the vector's id and content digest (the Vector itself is carried, not hashed)."""

    __slots__ = ("vector", "key")

    def __init__(self, vector: Vector) -> None:
        self.vector = vector
        self.key = (vector.id, vector.digest or _digest_of(vector))

    def __hash__(self) -> int:
        return hash(self.key)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Key) and other.key == self.key


def _digest_of(v: Vector) -> str:
    """Digest of a Vector built in code (not loaded from a file)."""
    import json

    body = json.dumps([v.id, v.size, v.source, v.overlays, v.anchors], sort_keys=True, default=str)
    return hashlib.sha256(body.encode()).hexdigest()


@lru_cache(maxsize=32)
def _render_cached(key: _Key) -> Rendered:
    v = key.vector
    return _compose(v, _prepare(v, _source_raw(v)))


def render(v: Vector, base: np.ndarray | None = None, *, cache: bool = True) -> Rendered:
    """Render a vector: its source fitted to ``size``, anchors drawn, overlays composited.

    Cached in-process by (id, content digest of the file and its asset); the arrays are
    read-only.  ``base`` supplies the source image instead (a prompt vector's generated
    image, from the generate stage): it is fitted like any source and never cached.
    A prompt vector without ``base`` raises :class:`ConfigError`.
    """
    if base is not None:
        return _compose(v, _prepare(v, base))
    if not cache:
        return _compose(v, _prepare(v, _source_raw(v)))
    return _render_cached(_Key(v))


def overlay_anchor_gap(r: Rendered) -> int | None:
    """Clear pixels between the overlays (mask > 0) and the anchors (chessboard metric):
    dilating the overlay mask by this many pixels (square) does not touch an anchor.
    -1 if they overlap; None if either is empty."""
    from scipy import ndimage

    ov = r.overlay_mask > 0
    if not ov.any() or not r.anchors.any():
        return None
    d = ndimage.distance_transform_cdt(~ov, metric="chessboard")
    return int(d[r.anchors].min()) - 1


def describe(v: Vector) -> str:
    """Multi-line human description (``harness vectors show ID``)."""
    lines = [f"{v.id}: {v.description}", f"  file     {v.path}", f"  size     {v.size[1]}x{v.size[0]} (WxH)",
             f"  source   {', '.join(f'{k}={val}' for k, val in v.source.items())}",
             f"  tags     {', '.join(v.tags) or '-'}"]
    for ov in v.overlays:
        if ov["kind"] == "object":
            what = f"{ov.get('shape', 'ellipse')} box {ov['box']}"
        else:
            what = f"{ov['text']!r} at {ov['position']} size {ov['size']}"
            if ov.get("angle"):
                what += f" angle {ov['angle']}"
            if ov.get("tiled"):
                what += " tiled"
        lines.append(f"  overlay  {ov['kind']}: {what}, color {ov['color']}, opacity {ov['opacity']:g}")
    for an in v.anchors:
        lines.append(f"  anchor   {an['kind']} box {an['box']}{' (drawn)' if an.get('render') else ''}")
    if v.expect:
        lines.append(f"  expect   {', '.join(f'{k}={val}' for k, val in v.expect.items())}")
    if v.needs_generation:
        lines.append("  render   by the generate stage (prompt source); overlays and anchors are applied to its image")
    else:
        r = render(v)
        gap = overlay_anchor_gap(r)
        lines.append(f"  overlay coverage {float((r.overlay_mask >= 0.5).mean()):.4f} (>= 0.5), "
                     f"{float((r.overlay_mask > 0).mean()):.4f} (> 0); anchor px {int(r.anchors.sum())}"
                     + (f"; overlay-anchor gap {gap} px" if gap is not None else ""))
        lines.append(f"  sha256   {r.sha256}")
    return "\n".join(lines)


def render_to_png(v: Vector, out_dir: str | Path) -> list[Path]:
    """Write ``out_dir/<id>/{image,clean,overlay_mask,anchors}.png`` (masks as 8-bit grey)."""
    from harness.imageio import save_png

    r = render(v)
    out = Path(out_dir) / v.id
    files = {"image.png": r.image, "clean.png": r.clean,
             "overlay_mask.png": np.rint(r.overlay_mask * 255).astype(np.uint8),
             "anchors.png": r.anchors.astype(np.uint8) * 255}
    paths = []
    for name, arr in files.items():
        save_png(out / name, arr)
        paths.append(out / name)
    return paths
