"""Helpers for the stage tests: real photographs (skimage.data, offline) and rendered text."""

from __future__ import annotations

import numpy as np


def photo(name: str, size: int = 256) -> np.ndarray:
    """A ``skimage.data`` photograph (offline), centre-cropped square, resized to ``size``."""
    import cv2
    from skimage import data

    im = getattr(data, name)()
    if im.ndim == 2:
        im = np.stack([im] * 3, axis=2)
    h, w = im.shape[:2]
    s = min(h, w)
    im = im[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]
    return np.ascontiguousarray(cv2.resize(im, (size, size), interpolation=cv2.INTER_AREA))


def draw_text(image: np.ndarray, lines, size: int = 24, fill=(255, 255, 255)):
    """Draw ``[(x, y, text), ...]`` with Pillow's bundled font; return (image, ground-truth mask float32)."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default(size=size)
    pil = Image.fromarray(image)
    mask = Image.new("L", pil.size, 0)
    for x, y, text in lines:
        ImageDraw.Draw(pil).text((x, y), text, fill=fill, font=font)
        ImageDraw.Draw(mask).text((x, y), text, fill=255, font=font)
    return np.asarray(pil).copy(), (np.asarray(mask) >= 128).astype(np.float32)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(255.0 ** 2 / mse)


def rise_width(row: np.ndarray) -> float:
    """10-90 % rise width (px, linear between samples) of a rising step profile."""
    r = row.astype(float)
    lo, hi = np.median(r[:8]), np.median(r[-8:])

    def cross(level):
        i = int(np.argmax(r >= level))
        return i - 1 + (level - r[i - 1]) / (r[i] - r[i - 1])

    return cross(lo + 0.9 * (hi - lo)) - cross(lo + 0.1 * (hi - lo))
