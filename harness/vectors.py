"""Test vectors: codified failure cases, declared in ``vectors/<id>.toml``.

A vector is a source image (a real photograph from ``skimage.data``, an image
file, a deterministic synthetic recipe, or a prompt for the generate stage),
overlays to remove (text, watermark, an object) drawn with their exact
ground-truth mask, texture *anchors* that must keep their micro-texture
(microprinting, fine print, fabric), and expectations.  Rendering is
deterministic: fonts are Pillow's bundled font, noise is seeded.

Example::

    id = "watermark_grass"
    description = "semi-transparent watermark over grass"
    tags = ["watermark", "texture"]
    size = [256, 256]

    [source]
    kind = "skimage"
    name = "grass"

    [[overlays]]
    kind = "watermark"
    text = "(c) STOCK"
    position = [40, 110]
    size = 30
    color = [255, 255, 255]
    opacity = 0.5

    [[anchors]]
    kind = "texture"
    box = [10, 190, 120, 250]      # x0, y0, x1, y1

    [expect]
    anchors_survive = true
"""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from harness.errors import ConfigError

__all__ = ["Vector", "Rendered", "VECTORS_DIR", "load_vector", "discover", "get_vector", "render", "describe",
           "render_to_png", "SKIMAGE_PHOTOS", "RECIPES"]

VECTORS_DIR = Path(__file__).resolve().parent.parent / "vectors"
SKIMAGE_PHOTOS = ("astronaut", "brick", "camera", "cat", "chelsea", "coffee", "grass", "gravel", "rocket")
RECIPES = ("receipt", "security_card")
SOURCE_KINDS = ("skimage", "file", "recipe", "prompt")
OVERLAY_KINDS = ("text", "watermark", "object")
ANCHOR_KINDS = ("microprint", "fineprint", "fabric", "texture")
_TOP = {"id", "description", "tags", "size", "source", "overlays", "anchors", "expect"}
_OVERLAY_KEYS = {"kind", "text", "position", "size", "color", "opacity", "angle", "stroke", "stroke_color", "shape",
                 "box"}
_ANCHOR_KEYS = {"kind", "box", "render", "text", "size", "color"}
_SOURCE_KEYS = {"kind", "name", "path", "recipe", "prompt", "crop", "blur", "seed"}


@dataclass(frozen=True)
class Vector:
    id: str
    path: Path
    description: str
    tags: tuple[str, ...]
    size: tuple[int, int]
    source: dict[str, Any]
    overlays: tuple[dict[str, Any], ...] = ()
    anchors: tuple[dict[str, Any], ...] = ()
    expect: dict[str, Any] = field(default_factory=dict)

    @property
    def needs_generation(self) -> bool:
        return self.source.get("kind") == "prompt"

    @property
    def content_hash(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest() if self.path.exists() else ""


@dataclass(frozen=True)
class Rendered:
    vector_id: str
    image: np.ndarray  # (H, W, 3) uint8, overlays drawn on
    clean: np.ndarray  # (H, W, 3) uint8, without overlays
    overlay_mask: np.ndarray  # (H, W) float32 in [0, 1]
    anchors: np.ndarray  # (H, W) bool
    sha256: str


def _err(path: Path, key: str, msg: str) -> ConfigError:
    return ConfigError(f"{path}: {key}: {msg}")


def _box(path: Path, key: str, box: Any, size: tuple[int, int]) -> tuple[int, int, int, int]:
    h, w = size
    if not (isinstance(box, list) and len(box) == 4 and all(isinstance(v, int) for v in box)):
        raise _err(path, key, f"expected [x0, y0, x1, y1] integers, got {box!r}")
    x0, y0, x1, y1 = box
    if not (0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h):
        raise _err(path, key, f"box {box} is outside the {w}x{h} image or empty")
    return x0, y0, x1, y1


def _color(path: Path, key: str, c: Any) -> tuple[int, int, int]:
    if not (isinstance(c, list) and len(c) == 3 and all(isinstance(v, int) and 0 <= v <= 255 for v in c)):
        raise _err(path, key, f"expected [r, g, b] integers in 0..255, got {c!r}")
    return tuple(c)  # type: ignore[return-value]


def load_vector(path: str | Path) -> Vector:
    """Parse and validate one vector file; every problem names the file and key."""
    p = Path(path)
    try:
        raw = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{p}: vector file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: invalid TOML ({exc})") from None
    unknown = set(raw) - _TOP
    if unknown:
        raise _err(p, sorted(unknown)[0], f"unknown key; allowed: {', '.join(sorted(_TOP))}")
    vid = raw.get("id")
    if vid != p.stem:
        raise _err(p, "id", f"must equal the file name {p.stem!r}, got {vid!r}")
    size = raw.get("size")
    if not (isinstance(size, list) and len(size) == 2 and all(isinstance(v, int) for v in size)):
        raise _err(p, "size", f"expected [height, width] integers, got {size!r}")
    if not all(32 <= v <= 2048 for v in size):
        raise _err(p, "size", f"each side must be in 32..2048 px, got {size}")
    hw = (size[0], size[1])
    src = raw.get("source")
    if not isinstance(src, dict):
        raise _err(p, "source", "missing [source] table")
    if set(src) - _SOURCE_KEYS:
        raise _err(p, f"source.{sorted(set(src) - _SOURCE_KEYS)[0]}",
                   f"unknown key; allowed: {', '.join(sorted(_SOURCE_KEYS))}")
    kind = src.get("kind")
    if kind not in SOURCE_KINDS:
        raise _err(p, "source.kind", f"{kind!r} is not allowed; choose one of: {', '.join(SOURCE_KINDS)}")
    if kind == "skimage" and src.get("name") not in SKIMAGE_PHOTOS:
        raise _err(p, "source.name", f"{src.get('name')!r} is not an offline skimage.data photo; "
                                     f"choose one of: {', '.join(SKIMAGE_PHOTOS)}")
    if kind == "recipe" and src.get("recipe") not in RECIPES:
        raise _err(p, "source.recipe", f"{src.get('recipe')!r} is unknown; choose one of: {', '.join(RECIPES)}")
    if kind == "file":
        f = p.parent / str(src.get("path", ""))
        if not src.get("path") or not f.is_file():
            raise _err(p, "source.path", f"file {f} not found")
    if kind == "prompt" and not isinstance(src.get("prompt"), str):
        raise _err(p, "source.prompt", "expected a prompt string")
    if "crop" in src:
        _box(p, "source.crop", src["crop"], (100000, 100000))
    overlays = []
    for i, ov in enumerate(raw.get("overlays", [])):
        key = f"overlays[{i}]"
        if set(ov) - _OVERLAY_KEYS:
            raise _err(p, f"{key}.{sorted(set(ov) - _OVERLAY_KEYS)[0]}",
                       f"unknown key; allowed: {', '.join(sorted(_OVERLAY_KEYS))}")
        if ov.get("kind") not in OVERLAY_KINDS:
            raise _err(p, f"{key}.kind", f"{ov.get('kind')!r}; choose one of: {', '.join(OVERLAY_KINDS)}")
        if ov["kind"] == "object":
            _box(p, f"{key}.box", ov.get("box"), hw)
            if ov.get("shape", "ellipse") not in ("ellipse", "rect"):
                raise _err(p, f"{key}.shape", "choose one of: ellipse, rect")
        else:
            if not isinstance(ov.get("text"), str) or not ov["text"]:
                raise _err(p, f"{key}.text", "expected a non-empty string")
            pos = ov.get("position")
            if not (isinstance(pos, list) and len(pos) == 2 and 0 <= pos[0] < hw[1] and 0 <= pos[1] < hw[0]):
                raise _err(p, f"{key}.position", f"expected [x, y] inside the image, got {pos!r}")
        _color(p, f"{key}.color", ov.get("color", [255, 255, 255]))
        op = ov.get("opacity", 1.0)
        if not isinstance(op, (int, float)) or not 0 < op <= 1:
            raise _err(p, f"{key}.opacity", f"expected a number in (0, 1], got {op!r}")
        overlays.append(dict(ov))
    anchors = []
    for i, an in enumerate(raw.get("anchors", [])):
        key = f"anchors[{i}]"
        if set(an) - _ANCHOR_KEYS:
            raise _err(p, f"{key}.{sorted(set(an) - _ANCHOR_KEYS)[0]}",
                       f"unknown key; allowed: {', '.join(sorted(_ANCHOR_KEYS))}")
        if an.get("kind") not in ANCHOR_KINDS:
            raise _err(p, f"{key}.kind", f"{an.get('kind')!r}; choose one of: {', '.join(ANCHOR_KINDS)}")
        _box(p, f"{key}.box", an.get("box"), hw)
        anchors.append(dict(an))
    expect = raw.get("expect", {})
    if not isinstance(expect, dict):
        raise _err(p, "expect", "expected a table")
    tags = raw.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise _err(p, "tags", "expected a list of strings")
    return Vector(vid, p, str(raw.get("description", "")), tuple(tags), hw, dict(src), tuple(overlays),
                  tuple(anchors), dict(expect))


def discover(root: str | Path | None = None) -> dict[str, Vector]:
    """Every vector under ``root`` (default: the repo's ``vectors/``), by id."""
    r = Path(root) if root else VECTORS_DIR
    out: dict[str, Vector] = {}
    for f in sorted(r.glob("*.toml")):
        v = load_vector(f)
        if v.id in out:
            raise ConfigError(f"{f}: duplicate vector id {v.id!r}")
        out[v.id] = v
    return out


def get_vector(vector_id: str, root: str | Path | None = None) -> Vector:
    known = discover(root)
    if vector_id not in known:
        raise ConfigError(f"unknown vector {vector_id!r}; known: {', '.join(known) or '(none)'}")
    return known[vector_id]


# --- rendering ---------------------------------------------------------------

def _font(size: int):
    from PIL import ImageFont

    return ImageFont.load_default(size=size)


def _fit(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Centre-crop to the target aspect, then resize with Lanczos."""
    from PIL import Image

    h, w = img.shape[:2]
    th, tw = size
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
    return np.asarray(Image.fromarray(img).resize((tw, th), Image.Resampling.LANCZOS))


def _receipt(size: tuple[int, int], seed: int) -> np.ndarray:
    from PIL import Image, ImageDraw

    h, w = size
    rng = np.random.default_rng(seed)
    paper = np.array([246, 243, 236], np.float64) + rng.normal(0, 2.5, (h, w, 1))
    from scipy import ndimage

    paper += ndimage.gaussian_filter(rng.normal(0, 6, (h, w)), 3)[..., None]
    img = Image.fromarray(np.clip(paper, 0, 255).astype(np.uint8))
    d = ImageDraw.Draw(img)
    f_big, f = _font(14), _font(10)
    d.text((w // 2 - 40, 8), "CORNER STORE", fill=(30, 30, 30), font=f_big)
    items = ["MILK 1L", "BREAD", "COFFEE 250G", "APPLES", "TEA", "RICE 1KG", "EGGS x12"]
    y = 34
    for i, it in enumerate(items):
        d.text((12, y), it, fill=(40, 40, 40), font=f)
        d.text((w - 52, y), f"{rng.integers(1, 30)}.{rng.integers(0, 99):02d}", fill=(40, 40, 40), font=f)
        y += 14
    for x in range(12, w - 12, 3):  # barcode
        if rng.random() < 0.6:
            d.line([(x, h - 30), (x, h - 10)], fill=(20, 20, 20), width=1 + int(rng.random() < 0.3))
    return np.asarray(img)


def _security_card(size: tuple[int, int], seed: int) -> np.ndarray:
    """Security-paper style card: a pastel gradient with fine guilloche lines."""
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    base = np.stack([225 - 20 * xx / w, 232 - 10 * yy / h, 214 + 15 * xx / w], axis=2)
    r = np.hypot(xx - w * 0.3, yy - h * 0.6)
    lines = 0.5 + 0.5 * np.cos(2 * np.pi * (r / 3.1 + 0.8 * np.sin(np.arctan2(yy - h * 0.6, xx - w * 0.3) * 7)))
    base -= 28 * (lines[..., None] ** 4) * np.array([0.6, 1.0, 0.4])
    rng = np.random.default_rng(seed)
    base += rng.normal(0, 1.2, (h, w, 1))
    return np.clip(np.rint(base), 0, 255).astype(np.uint8)


def _source(v: Vector) -> np.ndarray:
    src = v.source
    kind = src["kind"]
    if kind == "prompt":
        raise ConfigError(f"{v.path}: vector {v.id!r} has a prompt source; its image comes from the generate stage")
    seed = int(src.get("seed", 0))
    if kind == "skimage":
        from skimage import data

        img = getattr(data, src["name"])()
    elif kind == "file":
        from harness.imageio import load_image

        img = load_image(v.path.parent / src["path"])
        if img.dtype != np.uint8:
            img = (img // 257).astype(np.uint8)
    else:
        img = {"receipt": _receipt, "security_card": _security_card}[src["recipe"]](v.size, seed)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    img = img[..., :3]
    if "crop" in src:
        x0, y0, x1, y1 = src["crop"]
        img = img[y0:y1, x0:x1]
    img = _fit(np.ascontiguousarray(img), v.size)
    if src.get("blur"):
        from scipy import ndimage

        s = float(src["blur"])
        img = np.clip(np.rint(np.stack([ndimage.gaussian_filter(img[..., c].astype(np.float64), s)
                                        for c in range(3)], axis=2)), 0, 255).astype(np.uint8)
    return img


def _draw_anchor_content(img: np.ndarray, an: dict[str, Any]) -> np.ndarray:
    """Microprint / fine print drawn into the clean image (it is content, not overlay)."""
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
    # keep the content inside its box
    keep = np.zeros(img.shape[:2], bool)
    keep[y0:y1, x0:x1] = True
    return np.where(keep[..., None], out, img)


def _overlay_layer(size: tuple[int, int], ov: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """RGB colour and alpha in [0, 1] of one overlay, drawn on a transparent layer."""
    from PIL import Image, ImageDraw

    h, w = size
    color = tuple(ov.get("color", [255, 255, 255]))
    rgb = np.zeros((h, w, 3), np.float64) + np.array(color, np.float64)
    alpha = Image.new("L", (w, h), 0)
    d = ImageDraw.Draw(alpha)
    if ov["kind"] == "object":
        x0, y0, x1, y1 = ov["box"]
        if ov.get("shape", "ellipse") == "ellipse":
            d.ellipse([x0, y0, x1 - 1, y1 - 1], fill=255)
        else:
            d.rectangle([x0, y0, x1 - 1, y1 - 1], fill=255)
        yy, xx = np.mgrid[0:h, 0:w]
        shade = 1.0 - 0.35 * np.clip(np.hypot((xx - x0) / max(x1 - x0, 1), (yy - y0) / max(y1 - y0, 1)), 0, 1.4)
        rgb = rgb * shade[..., None]
    else:
        f = _font(int(ov.get("size", 20)))
        stroke = int(ov.get("stroke", 0))
        layer = Image.new("L", (w, h), 0)
        ld = ImageDraw.Draw(layer)
        ld.text(tuple(ov["position"]), ov["text"], fill=255, font=f, stroke_width=stroke, stroke_fill=255)
        if ov.get("angle"):
            layer = layer.rotate(float(ov["angle"]), resample=Image.Resampling.BICUBIC,
                                 center=tuple(ov["position"]))
        alpha = layer
        if stroke:
            inner = Image.new("L", (w, h), 0)
            ImageDraw.Draw(inner).text(tuple(ov["position"]), ov["text"], fill=255, font=f)
            if ov.get("angle"):
                inner = inner.rotate(float(ov["angle"]), resample=Image.Resampling.BICUBIC,
                                     center=tuple(ov["position"]))
            fill = np.asarray(inner, np.float64)[..., None] / 255.0
            sc = np.array(ov.get("stroke_color", [0, 0, 0]), np.float64)
            rgb = fill * rgb + (1 - fill) * sc
    a = np.asarray(alpha, np.float64) / 255.0 * float(ov.get("opacity", 1.0))
    return rgb, a


def _render(v: Vector) -> Rendered:
    img = _source(v)
    anchors = np.zeros(v.size, bool)
    for an in v.anchors:
        if an.get("render", an["kind"] in ("microprint", "fineprint")):
            img = _draw_anchor_content(img, an)
        x0, y0, x1, y1 = an["box"]
        anchors[y0:y1, x0:x1] = True
    clean = img.copy()
    out = img.astype(np.float64)
    total = np.zeros(v.size, np.float64)
    for ov in v.overlays:
        rgb, a = _overlay_layer(v.size, ov)
        out = out * (1 - a[..., None]) + rgb * a[..., None]
        total = 1 - (1 - total) * (1 - a)
    image = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    mask = total.astype(np.float32)
    mask[image.astype(np.int16).__eq__(clean.astype(np.int16)).all(axis=2) & (mask < 0.5)] = 0.0
    h = hashlib.sha256()
    for arr in (image, mask, anchors):
        h.update(np.ascontiguousarray(arr).tobytes())
    for arr in (image, clean, mask, anchors):
        arr.setflags(write=False)
    return Rendered(v.id, image, clean, mask, anchors, h.hexdigest())


@lru_cache(maxsize=32)
def _render_cached(path: str, content_hash: str) -> Rendered:
    return _render(load_vector(path))


def render(v: Vector) -> Rendered:
    """Render a vector (cached in-process by file content)."""
    return _render_cached(str(v.path), v.content_hash)


def describe(v: Vector) -> str:
    lines = [f"{v.id}: {v.description}", f"  file     {v.path}", f"  size     {v.size[1]}x{v.size[0]} (WxH)",
             f"  source   {', '.join(f'{k}={val}' for k, val in v.source.items())}",
             f"  tags     {', '.join(v.tags) or '-'}"]
    for ov in v.overlays:
        what = ov.get("text") or f"{ov.get('shape', 'ellipse')} {ov.get('box')}"
        lines.append(f"  overlay  {ov['kind']}: {what!r} opacity {ov.get('opacity', 1.0)}")
    for an in v.anchors:
        lines.append(f"  anchor   {an['kind']} box {an['box']}")
    if v.expect:
        lines.append(f"  expect   {', '.join(f'{k}={val}' for k, val in v.expect.items())}")
    if not v.needs_generation:
        r = render(v)
        lines.append(f"  overlay coverage {float((r.overlay_mask >= 0.5).mean()):.4f}, "
                     f"anchor px {int(r.anchors.sum())}, sha256 {r.sha256[:16]}")
    return "\n".join(lines)


def render_to_png(v: Vector, out_dir: str | Path) -> list[Path]:
    from harness.imageio import save_png

    r = render(v)
    out = Path(out_dir)
    files = {"image.png": r.image, "clean.png": r.clean,
             "overlay_mask.png": np.rint(r.overlay_mask * 255).astype(np.uint8),
             "anchors.png": r.anchors.astype(np.uint8) * 255}
    paths = []
    for name, arr in files.items():
        save_png(out / v.id / name, arr)
        paths.append(out / v.id / name)
    return paths
