"""Image panels of a failing case's figures, drawn with numpy and Pillow (no plotting library: a
panel's pixels are the image's pixels, reduced by an integer factor, so a box lands exactly):

* :func:`compare_strip`: reference | candidate | amplified difference, the failing checks' boxes drawn
  and numbered worst first;
* :func:`zoom_strip`: the worst box, reference | candidate | difference crops upscaled nearest-neighbour;
* :func:`tile_heatmap`: the per-tile worst severity as a translucent overlay on the candidate, at the
  tiles' pixel boxes, with its colour bar.

Images are ``(H, W, 3)`` (or ``(H, W)``) uint8 or uint16 code values as :func:`harness.imageio.load_image`
reads them; boxes are ``(x0, y0, x1, y1)`` pixels of the measured image, ends exclusive (the CHECK ``box``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

import numpy as np

from harness.report.figures_plot import BACKGROUND, INK, font, text_width

__all__ = ["Mark", "Strip", "PANEL", "PANEL_SINGLE", "severity_level", "HEAD", "GAP", "display", "amplified_difference", "reduction",
           "compare_strip", "zoom_window", "zoom_strip", "tile_cells", "tile_heatmap", "encode", "LIMIT"]

PANEL = 400  # a strip panel's longest side at most (px): larger images are reduced by an integer factor
PANEL_SINGLE = 512  # the same for a figure of one image (the tile heatmap)
ZOOM = 288  # a zoom crop is upscaled (integer factor, at most 8) until its longest side reaches this (px)
HEAD = 16  # the label row above the panels (px)
GAP = 6  # between panels (px)
FLOOR = 64  # display level of the smallest difference (1 code value): every changed pixel is visible
MAX_GAIN = 64
WORST = (230, 25, 25)  # the worst box
OTHER = (255, 170, 0)  # the other boxes

Box = tuple[int, int, int, int]


@dataclass(frozen=True)
class Mark:
    """A failing check's box to draw: ``rank`` 1 is the worst; ``label`` says which check it is."""

    rank: int
    box: Box
    label: str


@dataclass(frozen=True)
class Strip:
    """A composed figure: ``image`` ``(H, W, 3)`` uint8; ``origins``, each panel's top-left (x, y) in it;
    ``factor``, how many image pixels one panel pixel is (an integer reduction, 1: none); ``gain``: the
    difference amplification (None: no difference panel); ``zoom``: the nearest-neighbour upscaling
    of a zoom's crops (1: none)."""

    image: np.ndarray
    origins: tuple[tuple[int, int], ...]
    factor: int
    gain: int | None
    zoom: int = 1


def display(img: np.ndarray) -> np.ndarray:
    """``(H, W, 3)`` uint8 for display: 16-bit codes keep their top byte, grey is replicated."""
    a = np.asarray(img)
    if a.dtype == np.uint16:
        a = (a >> 8).astype(np.uint8)
    elif a.dtype != np.uint8:
        a = np.clip(a, 0, 255).astype(np.uint8)
    if a.ndim == 2:
        a = np.repeat(a[:, :, None], 3, axis=2)
    return np.ascontiguousarray(a[:, :, :3])


def amplified_difference(ref: np.ndarray, cand: np.ndarray) -> tuple[np.ndarray, int]:
    """``(levels, gain)``: the largest per-channel ``|candidate - reference|`` (8-bit codes) of two
    images of one shape, as ``(H, W)`` uint8 display levels: 0 where nothing changed, else ``FLOOR``
    up to 255 for ``|d| * gain >= 255``.  ``gain``, a power of two up to 64, brings the 99th
    percentile of the changed pixels to full scale (so one outlier does not hide the rest)."""
    d = np.abs(display(ref).astype(np.int16) - display(cand).astype(np.int16)).max(axis=2)
    changed = d > 0
    if not changed.any():
        return np.zeros(d.shape, np.uint8), 1
    p = float(np.percentile(d[changed], 99))
    gain = int(min(MAX_GAIN, max(1, 2 ** math.floor(math.log2(255.0 / p)))))
    scaled = np.minimum(d.astype(np.float32) * (gain / 255.0), 1.0)
    levels = np.where(changed, FLOOR + (255 - FLOOR) * scaled, 0.0)
    return np.rint(levels).astype(np.uint8), gain


def reduction(shape: Sequence[int], longest: int = PANEL) -> int:
    """The integer factor that brings an image of ``shape`` (H, W, ...) to ``longest`` px or less."""
    return max(1, math.ceil(max(shape[0], shape[1]) / longest))


def _reduce(a: np.ndarray, k: int, *, peak: bool = False) -> np.ndarray:
    """``a`` reduced ``k`` times: block means, or block maxima (``peak``: a one-pixel change survives)."""
    if k == 1:
        return a
    h, w = a.shape[:2]
    ph, pw = -h % k, -w % k
    pad = ((0, ph), (0, pw)) + ((0, 0),) * (a.ndim - 2)
    if peak:
        b = np.pad(a, pad).reshape(((h + ph) // k, k, (w + pw) // k, k) + a.shape[2:])
        return b.max(axis=(1, 3))
    b = np.pad(a.astype(np.float32), pad, mode="edge").reshape(((h + ph) // k, k, (w + pw) // k, k) + a.shape[2:])
    return np.rint(b.mean(axis=(1, 3))).astype(np.uint8)


def _scaled(box: Box, k: int) -> Box:
    x0, y0, x1, y1 = box
    return x0 // k, y0 // k, -(-x1 // k), -(-y1 // k)


def _draw_marks(draw, marks: Sequence[Mark], origin: tuple[int, int], k: int, width: int = 2) -> None:
    """Each mark's box outline (its pixels inside the box: ends exclusive; the worst ``width`` px, the
    others 1 px) and its rank in the box colour outlined in black, the worst drawn last (on top)."""
    ox, oy = origin
    for m in sorted(marks, key=lambda m: -m.rank):
        x0, y0, x1, y1 = _scaled(m.box, k)
        colour, w = (WORST, width) if m.rank == 1 else (OTHER, 1)
        draw.rectangle([ox + x0, oy + y0, ox + x1 - 1, oy + y1 - 1], outline=colour, width=w)
        draw.text((ox + x0 + w + 2, oy + y0 + w), str(m.rank), fill=colour, font=font(), stroke_width=2,
                  stroke_fill=(0, 0, 0))


def _compose(panels: Sequence[tuple[str, np.ndarray]], min_width: int = 0):
    """``(PIL image, origins)``: the panels side by side under their labels, on a white ground."""
    from PIL import Image, ImageDraw

    width = max(min_width, sum(p.shape[1] for _, p in panels) + GAP * (len(panels) - 1))
    height = HEAD + max(p.shape[0] for _, p in panels)
    canvas = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    origins, x = [], 0
    for label, p in panels:
        canvas.paste(Image.fromarray(p), (x, HEAD))
        draw.text((x + 1, 2), label, fill=INK, font=font())
        origins.append((x, HEAD))
        x += p.shape[1] + GAP
    return canvas, tuple(origins)


def compare_strip(cand: np.ndarray, ref: np.ndarray | None, marks: Sequence[Mark], *,
                  longest: int = PANEL) -> Strip:
    """Reference | candidate | amplified difference (without a reference, or of another size: the
    panels there are), each reduced by one integer factor to ``longest`` px at most (means; the
    difference by block maxima), ``marks`` drawn on every panel."""
    from PIL import ImageDraw

    c = display(cand)
    k = reduction(c.shape, longest)
    r = display(ref) if ref is not None else None
    gain = None
    if r is None:
        panels = [("candidate (no reference image)", _reduce(c, k))]
    else:
        panels = [("reference", _reduce(r, k)), ("candidate", _reduce(c, k))]
        if r.shape == c.shape:
            levels, gain = amplified_difference(r, c)
            panels.append((f"|difference| x{gain}", np.repeat(_reduce(levels, k, peak=True)[:, :, None], 3, axis=2)))
    canvas, origins = _compose(panels)
    draw = ImageDraw.Draw(canvas)
    for (label, _), origin in zip(panels, origins):
        if label != "reference" or r.shape == c.shape:  # boxes are the candidate's pixels: not on another size
            _draw_marks(draw, marks, origin, k)
    return Strip(np.asarray(canvas), origins, k, gain)


def zoom_window(box: Box, shape: Sequence[int]) -> Box:
    """The crop around ``box``: a quarter of its shorter side (8 px at least) of margin each side, inside
    the image (a long thin box keeps a thin margin)."""
    x0, y0, x1, y1 = box
    mx = my = max(8, min(x1 - x0, y1 - y0) // 4)
    return max(0, x0 - mx), max(0, y0 - my), min(shape[1], x1 + mx), min(shape[0], y1 + my)


def zoom_strip(cand: np.ndarray, ref: np.ndarray | None, mark: Mark, header: str) -> Strip:
    """Reference | candidate | difference crops around ``mark``'s box (:func:`zoom_window`), upscaled
    nearest-neighbour by one integer factor (at most 8) to about :data:`ZOOM` px, the box drawn, under
    ``header``.  A crop larger than :data:`PANEL` is reduced instead (``factor`` > 1)."""
    from PIL import Image, ImageDraw

    c = display(cand)
    wx0, wy0, wx1, wy1 = zoom_window(mark.box, c.shape)
    crops = [("candidate", c[wy0:wy1, wx0:wx1])]
    gain = None
    if ref is not None and display(ref).shape == c.shape:
        r = display(ref)
        levels, gain = amplified_difference(r[wy0:wy1, wx0:wx1], crops[0][1])
        crops = [("reference", r[wy0:wy1, wx0:wx1]), crops[0],
                 (f"|difference| x{gain}", np.repeat(levels[:, :, None], 3, axis=2))]
    side = max(wx1 - wx0, wy1 - wy0)
    up = int(min(8, max(1, ZOOM // side)))
    k = reduction((wy1 - wy0, wx1 - wx0), PANEL)
    panels = [(label, np.repeat(np.repeat(a, up, axis=0), up, axis=1) if k == 1 else
               _reduce(a, k, peak=label.startswith("|"))) for label, a in crops]
    x0, y0, x1, y1 = mark.box
    local = ((x0 - wx0) * up, (y0 - wy0) * up, (x1 - wx0) * up, (y1 - wy0) * up)
    canvas, origins = _compose(panels, text_width(header) + 4)
    full = Image.new("RGB", (canvas.width, canvas.height + HEAD), BACKGROUND)
    full.paste(canvas, (0, HEAD))
    draw = ImageDraw.Draw(full)
    draw.text((1, 2), header, fill=INK, font=font())
    origins = tuple((ox, oy + HEAD) for ox, oy in origins)
    for origin in origins:
        _draw_marks(draw, [Mark(mark.rank, local, mark.label)], origin, k, width=max(1, min(3, up // 2)))
    return Strip(np.asarray(full), origins, k, gain, up if k == 1 else 1)


def tile_cells(tiles: Sequence[tuple[Box, float]]) -> list[tuple[Box, float]]:
    """Tiles ``(box, severity)`` as disjoint cells ``(cell box, severity)``: overlapping tiles (a stride
    below the tile size) each keep the pixels nearer their own centre than a neighbour's (on each axis),
    the outer tiles reach the grid's edges.  Tiles of another size than the most common are left out."""
    if not tiles:
        return []
    sizes: dict[tuple[int, int], int] = {}
    for (x0, y0, x1, y1), _ in tiles:
        sizes[(x1 - x0, y1 - y0)] = sizes.get((x1 - x0, y1 - y0), 0) + 1
    size = max(sizes, key=lambda s: (sizes[s], s))
    kept = [(b, s) for b, s in tiles if (b[2] - b[0], b[3] - b[1]) == size]

    def edges(lo: list[int], hi: list[int], size: int) -> dict[int, tuple[int, int]]:
        """{tile start: (cell start, cell end)} on one axis: cells meet midway between tile centres."""
        starts = sorted(set(lo))
        bounds = [min(lo)] + [(a + b + size) // 2 for a, b in zip(starts, starts[1:])] + [max(hi)]
        return {s: (bounds[i], bounds[i + 1]) for i, s in enumerate(starts)}

    xs = edges([b[0] for b, _ in kept], [b[2] for b, _ in kept], size[0])
    ys = edges([b[1] for b, _ in kept], [b[3] for b, _ in kept], size[1])
    return [((xs[b[0]][0], ys[b[1]][0], xs[b[0]][1], ys[b[1]][1]), s) for b, s in kept]


@lru_cache(maxsize=1)
def _lut() -> np.ndarray:
    """magma as a ``(256, 3)`` uint8 table (matplotlib's colour map, without pyplot)."""
    import matplotlib

    return np.rint(matplotlib.colormaps["magma"](np.linspace(0.0, 1.0, 256))[:, :3] * 255).astype(np.uint8)


def severity_level(s: np.ndarray, vmax: float) -> np.ndarray:
    """Colour-map position 0..1 of severities ``s``: linear up to the tolerance (1 -> 0.5), then
    logarithmic up to ``vmax`` (-> 1), so a case with one tile at 40x tolerance still shows which
    tiles are at 1.5x and which at 0.5x."""
    s = np.clip(np.asarray(s, np.float64), 0.0, vmax)
    with np.errstate(divide="ignore", invalid="ignore"):
        above = 0.5 + 0.5 * np.log(np.maximum(s, 1.0)) / math.log(vmax)
    return np.where(s <= 1.0, 0.5 * s, above)


def _bar_ticks(vmax: float) -> list[tuple[float, str]]:
    """The colour bar's labelled severities: 0, 1 (the tolerance), 1-2-5 steps above it, and vmax."""
    ticks = [(0.0, "0"), (1.0, "1 = tolerance")]
    steps = [m * 10.0 ** e for e in range(0, 6) for m in (2, 5, 10)]
    ticks += [(v, f"{v:g}") for v in sorted(set(steps)) if 1 < v < vmax and math.log(vmax / v) > 0.25 * math.log(vmax)]
    return ticks + [(vmax, f"{vmax:.3g}")]


def tile_heatmap(cand: np.ndarray | None, shape: Sequence[int], cells: Sequence[tuple[Box, float]],
                 header: str, longest: int = PANEL_SINGLE) -> Strip:
    """The per-tile worst severity (``cells``: :func:`tile_cells` in image pixels) over the candidate
    in grey (a mid-grey ground without one; ``shape``: the measured image's (H, W)), magma by
    :func:`severity_level` up to ``vmax = max(2, worst finite severity)`` (an error, or a severity without
    a tolerance: ``vmax``), ``0.7 x min(1, severity)`` opaque so passing tiles stay see-through; a colour
    bar beside it with its labels inside the figure."""
    from PIL import ImageDraw

    h, w = int(shape[0]), int(shape[1])
    k = reduction((h, w), longest)
    grey = display(cand).mean(axis=2) if cand is not None else np.full((h, w), 160.0)
    base = _reduce(np.repeat(np.rint(grey)[:, :, None], 3, axis=2).astype(np.uint8), k).astype(np.float32)
    vmax = max(2.0, max((s for _, s in cells if math.isfinite(s)), default=0.0))
    sev = np.full(base.shape[:2], np.nan, np.float64)
    for box, s in cells:
        x0, y0, x1, y1 = _scaled(box, k)
        sev[y0:y1, x0:x1] = min(s, vmax) if s == s else vmax  # NaN: a check without a usable tolerance
    have = ~np.isnan(sev)
    sev = np.where(have, sev, 0.0)
    alpha = np.where(have, 0.7 * np.minimum(sev, 1.0), 0.0)[:, :, None]
    colour = _lut()[np.rint(severity_level(sev, vmax) * 255).astype(np.int32)].astype(np.float32)
    panel = np.rint(base * (1 - alpha) + colour * alpha).astype(np.uint8)
    bar_h, bar_w = panel.shape[0], 14
    ramp = _lut()[np.rint(np.linspace(255, 0, bar_h)).astype(np.int32)]
    ticks = _bar_ticks(vmax)
    canvas, origins = _compose([("", panel), ("", np.repeat(ramp[:, None, :], bar_w, axis=1))],
                               text_width(header) + 4)
    canvas = _extend(canvas, max(text_width(t) for _, t in ticks) + 8)
    draw = ImageDraw.Draw(canvas)
    draw.text((1, 2), header, fill=INK, font=font())
    bx, by = origins[1]
    for v, text in ticks:
        y = by + int(round((1 - float(severity_level(np.array(v), vmax))) * (bar_h - 1)))
        draw.line([bx - 2, y, bx + bar_w + 2, y], fill=INK, width=1)
        draw.text((bx + bar_w + 4, min(max(by, y - 6), by + bar_h - 13)), text, fill=INK, font=font())
    return Strip(np.asarray(canvas), origins, k, None)


def _extend(canvas, extra: int):
    """``canvas`` with ``extra`` px of white added on the right (room for the colour bar's labels)."""
    from PIL import Image

    out = Image.new("RGB", (canvas.width + extra, canvas.height), BACKGROUND)
    out.paste(canvas, (0, 0))
    return out


LIMIT = 150_000  # bytes: a JPEG larger than this (a noisy image) is encoded again at a lower quality
# (quality, chroma subsampling: 0 none, 2 4:2:0), tried in order; the last fits even pure noise at strip size
QUALITIES = ((88, 0), (75, 0), (60, 2), (40, 2), (25, 2))


def encode(image: np.ndarray, fmt: str, limit: int = LIMIT) -> bytes:
    """``image`` as PNG (``"png"``, optimised) or JPEG (``"jpg"``: quality 88 without chroma subsampling,
    so thin coloured box lines stay sharp, or the first of :data:`QUALITIES` that fits ``limit`` bytes;
    Huffman tables not optimised, which would double the encoding time for a few per cent) bytes; the
    same bytes for the same pixels."""
    import io

    from PIL import Image

    from harness.report.figures_plot import png

    if fmt == "png":
        return png(Image.fromarray(image))
    data = b""
    for q, sub in QUALITIES:
        buf = io.BytesIO()
        Image.fromarray(image).save(buf, format="JPEG", quality=q, subsampling=sub)
        data = buf.getvalue()
        if len(data) <= limit:
            break
    return data
