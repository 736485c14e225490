"""Rendering a vector: its source loaded and fitted to ``size``, anchors drawn, overlays composited.

The overlay mask is the exact coverage of what was drawn (``alpha/255``, combined over overlays as
``1 - prod(1 - a_i)``): it says *where* an overlay is, whatever its opacity, so a faint watermark is
still a region to remove.  The image is composited with ``alpha/255 * opacity``; where the mask is 0
it equals the clean image bit for bit.  Resizing is Lanczos; fonts and recipes are in :mod:`.recipes`.
Renders are cached in-process by the vector's id and content digest.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from harness.imageio import codes_to_uint8
from harness.errors import InputError
from harness.suite.vectors.recipes import RECIPES, font
from harness.suite.vectors.schema import Vector
from harness.validate import Where

__all__ = ["Rendered", "render", "overlay_anchor_gap"]


@dataclass(frozen=True)
class Rendered:
    vector_id: str
    image: np.ndarray  # (H, W, 3) uint8, overlays drawn on
    clean: np.ndarray  # (H, W, 3) uint8, without overlays
    overlay_mask: np.ndarray  # (H, W) float32 in [0, 1], exact alpha of the overlays
    anchors: np.ndarray  # (H, W) bool
    sha256: str


# --- the source, fitted to the vector's size ---------------------------------------------------------------------

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
        img = codes_to_uint8(img.astype(np.float64))
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    return np.ascontiguousarray(img[..., :3])


def _source_raw(v: Vector) -> np.ndarray:
    src = v.source
    kind = src["kind"]
    if v.needs_generation:  # prompt / generated
        raise Where(v.path).error("source.kind", f"vector {v.id!r} has a {kind} source; its image is made by the "
                                                 f"generate stage (pass it as render(vector, base=image))")
    if kind == "skimage":
        from skimage import data

        return getattr(data, src["name"])()
    if kind == "file":
        from harness.imageio import load_image

        try:
            return load_image(v.path.parent / src["path"])
        except InputError as exc:
            raise Where(v.path).error("source.path", str(exc)) from None
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
            raise Where(v.path).error("source.crop", f"box {src['crop']} is outside the {w}x{h} source image; "
                                                     f"allowed: x1 <= {w}, y1 <= {h}")
        img = img[y0:y1, x0:x1]
    mode = src.get("fit", "resize")
    if mode == "crop" and (img.shape[0] < v.size[0] or img.shape[1] < v.size[1]):
        raise Where(v.path).error("source.fit", f"'crop' needs a source of at least {v.size[1]}x{v.size[0]}, "
                                                f"got {img.shape[1]}x{img.shape[0]}; use fit = \"resize\"")
    img = _fit(np.ascontiguousarray(img), v.size, mode)
    if src.get("blur"):
        from scipy import ndimage

        s = float(src["blur"])
        img = np.clip(np.rint(np.stack([ndimage.gaussian_filter(img[..., c].astype(np.float64), s)
                                        for c in range(3)], axis=2)), 0, 255).astype(np.uint8)
    return img


# --- drawing: anchor content and overlays --------------------------------------------------------------------------

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
            d.text((x0 - (y * 7) % 23, y), text, fill=color, font=font(size))
            y += size + 1
    else:
        size = int(an.get("size", 8))
        words = an.get("text", "Terms and conditions apply. Valid only with proof of purchase. "
                               "Not redeemable for cash. See store for details.").split()
        y, line = y0, ""
        f = font(size)
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
    f = font(int(ov["size"]))
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


# --- compositing and the render cache ---------------------------------------------------------------------------

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
    image = codes_to_uint8(out)
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
