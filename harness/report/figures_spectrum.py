"""The radially averaged power spectrum of a failing case's measured image, reference vs candidate,
with the measuring bands' edges: the figure that shows *which frequencies* a change moved.

The spectrum is the measuring code's (:func:`harness.measuring.spectrum.luma_spectrum`: luma of the
mirror-extended whole image, so no wrap-around edge adds a cross of false high frequencies), averaged
over annuli of radial frequency.  A band ``b`` centred at ``c_b`` cycles/px (the measurement meta's
``bands``, :mod:`harness.measuring.bands`) is a raised cosine one octave either side of ``c_b``; it
is the strongest band between ``c_b / sqrt(2)`` and ``c_b * sqrt(2)``, where it crosses its neighbours
(each at ``cos(pi/4)``): those crossings are the band edges drawn.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np

__all__ = ["radial_profile", "band_edges", "spectrum_png", "BINS"]

BINS = 48  # log-spaced annuli from 1/min(H, W) cycles/px to the diagonal's sqrt(0.5)
XTICKS = tuple(2.0 ** -k for k in range(12, 0, -1))  # 1/4096 .. 1/2 cycles/px
WIDTH, LEFT, RIGHT = 520, 50, 12  # the figure's width and the plot's margins (px)
HEAD = 16


def radial_profile(codes: np.ndarray, bins: int = BINS) -> tuple[np.ndarray, np.ndarray]:
    """``(f, density)``: per log-spaced annulus, its geometric-centre radial frequency (cycles/px)
    and the mean power per ``rfft2`` coefficient there (code values², NaN for an empty annulus), of
    ``codes`` ``(H, W, 3)`` (8-bit code values)."""
    from harness.measuring.bands import rfft_weights
    from harness.measuring.spectrum import luma_spectrum

    power, f = luma_spectrum(codes)
    h, w = f.shape[0], 2 * (f.shape[1] - 1)  # the mirror-extended image's size
    edges = np.geomspace(1.0 / min(codes.shape[0], codes.shape[1]), math.sqrt(0.5), bins + 1)
    idx = np.searchsorted(edges, f.ravel(), side="right") - 1
    ok = (idx >= 0) & (idx < bins)
    total = np.bincount(idx[ok], power.ravel()[ok], minlength=bins)  # power already counts conjugate pairs
    count = np.bincount(idx[ok], rfft_weights(h, w).ravel()[ok], minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        density = np.where(count > 0, total / count, np.nan)
    return np.sqrt(edges[:-1] * edges[1:]), density


def band_edges(bands: Mapping[str, float]) -> list[tuple[str, float, float, float]]:
    """``[(name, lower edge, centre, upper edge)]`` by centre: where each band is the strongest."""
    out = []
    for name, c in sorted(bands.items(), key=lambda kv: kv[1]):
        out.append((str(name), float(c) / math.sqrt(2.0), float(c), float(c) * math.sqrt(2.0)))
    return out


def spectrum_png(cand: np.ndarray, ref: np.ndarray | None, bands: Mapping[str, float], header: str) -> bytes:
    """The figure as PNG bytes (520 px wide): the candidate's profile (and the reference's, with their
    ratio in a panel below) against log frequency, power in decades; band edges dotted, band names at
    their centres; ``header`` on top.  Drawn with Pillow: a two-line plot does not need a plotting
    library's layout engine, which costs a hundred times more per figure."""
    from PIL import Image, ImageDraw

    from harness.report.figures_plot import (BACKGROUND, INK, Frame, finite_range, font, legend, png, polyline, xticks,
                                             yticks)

    f, pc = radial_profile(cand)
    pr = radial_profile(ref)[1] if ref is not None else None
    x = np.log2(f)
    xr = (float(x[0]), float(np.log2(f[-1] * 1.05)))
    with np.errstate(divide="ignore", invalid="ignore"):
        lp = [np.where(p > 0, np.log10(p), np.nan) for p in ((pr, pc) if pr is not None else (pc,))]
        ratio = np.log2(pc / pr) if pr is not None else None
    top, main_h, ratio_h = HEAD + 4, 190, 80
    height = top + main_h + (10 + ratio_h if ratio is not None else 0) + 32
    img = Image.new("RGB", (WIDTH, height), BACKGROUND)
    draw = ImageDraw.Draw(img)
    draw.text((LEFT, 3), header, fill=INK, font=font())
    lo, hi = finite_range(lp)
    main = Frame(LEFT, top, WIDTH - RIGHT, top + main_h, *xr, math.floor(lo), math.ceil(hi) + 0.3)
    decades = range(int(main.ylo), int(math.ceil(main.yhi)))
    step = max(1, math.ceil(len(decades) / 6))
    yticks(draw, main, [float(d) for d in decades[::step]], [f"1e{d}" for d in decades[::step]])
    frames = [main]
    if ratio is not None:
        m = max(0.25, math.ceil(4 * max(finite_range([np.abs(ratio)]))) / 4)
        rf = Frame(LEFT, main.y1 + 10, WIDTH - RIGHT, main.y1 + 10 + ratio_h, *xr, -m, m)
        yticks(draw, rf, [-m, 0.0, m], [f"{2 ** -m:.3g}", "1", f"{2 ** m:.3g}"])
        frames.append(rf)
    _band_lines(draw, frames, band_edges(bands))
    colours = [(44, 127, 184), (215, 48, 31)] if pr is not None else [(215, 48, 31)]
    for ys, colour, w in zip(lp, colours, (2, 1) if pr is not None else (1,)):
        polyline(draw, main, x, ys, colour, w)
    legend(draw, main, ["reference", "candidate"] if pr is not None else ["candidate"], colours)
    draw.text((main.x0 + 3, main.y0 + 2), "power per coefficient (code²)", fill=INK, font=font())
    if ratio is not None:
        polyline(draw, frames[1], x, ratio, INK, 1)
        draw.text((frames[1].x0 + 3, frames[1].y0 + 2), "candidate / reference", fill=INK, font=font())
    ticks = [t for t in XTICKS if f[0] <= t <= f[-1] * 1.05]
    xticks(draw, frames[-1], [math.log2(t) for t in ticks], [f"1/{round(1 / t)}" for t in ticks])
    draw.text((LEFT, height - 14), "radial frequency (cycles / px; 1/2 = Nyquist), log scale", fill=INK, font=font())
    return png(img)


def _band_lines(draw, frames: Sequence, edges: list[tuple[str, float, float, float]]) -> None:
    """Dotted lines at the band edges in every frame, the band names at their centres in the first."""
    from harness.report.figures_plot import font, text_width

    for v in sorted({round(e, 9) for _, lo, _, hi in edges for e in (lo, hi)}):
        for fr in frames:
            x = round(fr.px(math.log2(v)))
            if fr.x0 < x < fr.x1:
                for y in range(fr.y0 + 1, fr.y1, 4):
                    draw.line([x, y, x, min(y + 1, fr.y1)], fill=(120, 120, 120), width=1)
    fr = frames[0]
    for name, _, c, _ in edges:
        x = fr.px(math.log2(c))
        if fr.x0 < x < fr.x1:
            draw.text((round(x - text_width(name) / 2), fr.y0 + 16), name, fill=(70, 70, 70), font=font())
