"""Deterministic synthetic sources (``[source] kind = "recipe"``) and the font every vector draws with.

A recipe is a function ``(size, seed, **params) -> (H, W, 3) uint8`` plus its parameters, each with
a reader that validates a value from the vector file and a default.  Everything random is seeded;
text is Pillow's bundled FreeType font (``ImageFont.load_default(size=N)``), the same everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from harness.imageio import codes_to_uint8
from harness.errors import ConfigError
from harness.validate import Where

__all__ = ["RECIPES", "Recipe", "font"]


@dataclass(frozen=True)
class Recipe:
    fn: Callable[..., np.ndarray]
    params: dict[str, tuple[Callable[[Where, str, Any], Any], Any]]  # name -> (reader(where, key, value), default)
    doc: str


def font(size: int):
    """Pillow's bundled FreeType font at ``size`` px."""
    from PIL import ImageFont, features

    if not features.check("freetype2"):  # load_default(size=...) would silently ignore the size
        raise ConfigError("Pillow was built without FreeType; vectors need ImageFont.load_default(size=N)")
    return ImageFont.load_default(size=size)


_RECEIPT_ITEMS = ("MILK 1L", "BREAD", "COFFEE 250G", "APPLES", "TEA", "RICE 1KG", "EGGS x12")


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
    f_big, f = font(14), font(10)
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
    return codes_to_uint8(base)


def _items(w: Where, key: str, v: Any) -> tuple[str, ...]:
    if not (isinstance(v, list) and 1 <= len(v) <= 40):
        raise w.invalid(key, v, "a list of 1..40 strings")
    return tuple(w.string(key, s) for s in v)


RECIPES: dict[str, Recipe] = {
    "receipt": Recipe(_receipt, {"items": (_items, _RECEIPT_ITEMS), "barcode": (Where.boolean, True)},
                      "till receipt: paper noise, item lines with prices, barcode"),
    "security_card": Recipe(_security_card,
                            {"period": (lambda w, k, v: w.number(k, v, 1.0, 64.0), 3.1),
                             "lobes": (lambda w, k, v: w.integer(k, v, 0, 64), 7)},
                            "pastel card with fine guilloche lines"),
}
