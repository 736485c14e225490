"""Plotting primitives drawn with Pillow for the report's figures: the font, a frame that maps data
to pixels, lines, ticks, a legend, and the worst-checks bar chart.  A chart of a few dozen points
does not need a plotting library's layout engine, which costs about a hundred times more per figure
here; these draw the same pixels every time (the font is the file matplotlib ships)."""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

import numpy as np

__all__ = ["INK", "BACKGROUND", "font", "text_width", "Frame", "finite_range", "polyline", "yticks", "xticks",
           "legend", "bars_png", "png"]

INK = (20, 20, 20)
BACKGROUND = (255, 255, 255)
GRID = (225, 225, 225)


@lru_cache(maxsize=1)
def font():
    """DejaVu Sans 11 px, the font file matplotlib ships (the same on every machine with that version)."""
    from pathlib import Path

    import matplotlib
    from PIL import ImageFont

    try:
        return ImageFont.truetype(str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"), 11)
    except (OSError, ImportError):  # Pillow without FreeType: its bitmap font
        return ImageFont.load_default()


def text_width(text: str) -> int:
    return int(math.ceil(font().getlength(text)))


def png(image) -> bytes:
    """A Pillow image as optimised PNG bytes (no metadata: the same bytes for the same pixels)."""
    buf = io.BytesIO()
    image.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


@dataclass(frozen=True)
class Frame:
    """A plot area ``x0..x1, y0..y1`` (px) showing data ``xlo..xhi`` by ``ylo..yhi`` (y up)."""

    x0: int
    y0: int
    x1: int
    y1: int
    xlo: float
    xhi: float
    ylo: float
    yhi: float

    def px(self, v: float) -> float:
        return self.x0 + (v - self.xlo) / (self.xhi - self.xlo) * (self.x1 - self.x0)

    def py(self, v: float) -> float:
        return self.y1 - (v - self.ylo) / (self.yhi - self.ylo) * (self.y1 - self.y0)


def finite_range(series: Sequence[np.ndarray]) -> tuple[float, float]:
    """``(min, max)`` of the finite values of ``series`` (``(0, 1)`` when there is none)."""
    vals = np.concatenate([np.asarray(s, np.float64).ravel() for s in series])
    vals = vals[np.isfinite(vals)]
    return (float(vals.min()), float(vals.max())) if vals.size else (0.0, 1.0)


def polyline(draw, fr: Frame, xs: np.ndarray, ys: np.ndarray, colour, width: int) -> None:
    """The finite points of ``(xs, ys)`` joined, broken where a value is missing, clipped to the frame."""
    run: list[tuple[float, float]] = []
    for xv, yv in list(zip(xs, ys)) + [(math.nan, math.nan)]:
        if math.isfinite(xv) and math.isfinite(yv):
            run.append((fr.px(xv), min(max(fr.py(yv), fr.y0), fr.y1)))
            continue
        if len(run) > 1:
            draw.line(run, fill=colour, width=width, joint="curve")
        run = []


def yticks(draw, fr: Frame, values: Sequence[float], labels: Sequence[str]) -> None:
    """Light grid lines with labels left of the frame at ``values``, then the frame itself."""
    for v, text in zip(values, labels):
        y = round(fr.py(v))
        draw.line([fr.x0, y, fr.x1, y], fill=GRID, width=1)
        draw.text((fr.x0 - 4 - text_width(text), y - 7), text, fill=INK, font=font())
    draw.rectangle([fr.x0, fr.y0, fr.x1, fr.y1], outline=(90, 90, 90), width=1)


def xticks(draw, fr: Frame, values: Sequence[float], labels: Sequence[str], *, grid: bool = False) -> None:
    """Tick marks and centred labels under the frame at ``values`` (and grid lines across it)."""
    for v, text in zip(values, labels):
        x = round(fr.px(v))
        if grid:
            draw.line([x, fr.y0, x, fr.y1], fill=GRID, width=1)
        draw.line([x, fr.y1, x, fr.y1 + 3], fill=INK, width=1)
        draw.text((x - text_width(text) // 2, fr.y1 + 4), text, fill=INK, font=font())


def legend(draw, fr: Frame, names: Sequence[str], colours: Sequence) -> None:
    """A line swatch and a name per series, stacked in the frame's lower left corner."""
    for i, (name, colour) in enumerate(zip(names, colours)):
        x, y = fr.x0 + 8, fr.y1 - 14 * (len(names) - i) - 4
        draw.line([x, y + 7, x + 16, y + 7], fill=colour, width=2)
        draw.text((x + 22, y), name, fill=INK, font=font())


def bars_png(labels: Sequence[str], values: Sequence[float], title: str) -> bytes:
    """Horizontal bars of signed ``delta / tolerance`` (``values``, top to bottom), red beyond +-1
    (dashed there), labelled on the left, under ``title``: PNG bytes, 560 px wide."""
    from PIL import Image, ImageDraw

    row, top, width = 16, 22, 560
    left = min(300, max(text_width(t) for t in labels) + 10)
    m = max(2.0, max(abs(v) for v in values))
    m = math.ceil(m / 5) * 5 if m > 5 else math.ceil(m)
    fr = Frame(left, top, width - 12, top + row * len(values) + 4, -m, m, 0.0, 1.0)
    img = Image.new("RGB", (width, fr.y1 + 34), BACKGROUND)
    draw = ImageDraw.Draw(img)
    draw.text((left, 3), title, fill=INK, font=font())
    ticks = sorted({-m, -m / 2, 0.0, m / 2, m} | ({-1.0, 1.0} if m <= 5 else set()))  # +-1 alone would crowd 0
    xticks(draw, fr, ticks, [f"{t:g}" for t in ticks], grid=True)
    zero = round(fr.px(0.0))
    for i, (text, v) in enumerate(zip(labels, values)):
        y = top + 4 + i * row
        end = round(fr.px(max(-m, min(m, v))))
        draw.rectangle([min(zero, end), y, max(zero, end), y + row - 5],
                       fill=(192, 57, 43) if abs(v) > 1 else (127, 140, 141))
        shown = text if text_width(text) <= left - 10 else text[: max(1, int(len(text) * (left - 10)
                                                                          / text_width(text)) - 1)] + "…"
        draw.text((left - 6 - text_width(shown), y - 1), shown, fill=INK, font=font())
    for t in (-1.0, 1.0):
        x = round(fr.px(t))
        for y in range(fr.y0, fr.y1, 5):
            draw.line([x, y, x, min(y + 2, fr.y1)], fill=INK, width=1)
    draw.rectangle([fr.x0, fr.y0, fr.x1, fr.y1], outline=(90, 90, 90), width=1)
    draw.text((left, img.height - 14), "delta / tolerance (signed); dashed: the tolerance", fill=INK, font=font())
    return png(img)
