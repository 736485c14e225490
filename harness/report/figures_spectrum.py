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
    """The figure as PNG bytes (about 512 x 300 px): the candidate's profile (and the reference's, with
    their ratio below) on log axes, band edges dotted, band names at their centres; ``header`` on top."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    f, pc = radial_profile(cand)
    pr = radial_profile(ref)[1] if ref is not None else None
    fig = Figure(figsize=(6.4, 3.9 if pr is not None else 2.9), dpi=80)
    FigureCanvasAgg(fig)
    # fixed margins, no tight_layout: laying out log axes' tick labels costs more than drawing them
    if pr is not None:
        ax = fig.add_axes((0.12, 0.43, 0.86, 0.50))
        rx = fig.add_axes((0.12, 0.11, 0.86, 0.25), sharex=ax)
    else:
        ax, rx = fig.add_axes((0.12, 0.15, 0.86, 0.76)), None
    if pr is not None:
        ax.loglog(f, pr, color="#2c7fb8", lw=1.4, label="reference")
    ax.loglog(f, pc, color="#d7301f", lw=1.2, ls="--" if pr is not None else "-", label="candidate")
    ax.set_ylabel("power / coefficient (code²)", fontsize=8)
    ax.legend(fontsize=7, loc="lower left", frameon=False)
    ax.set_title(header, fontsize=8)
    axes = [ax]
    if rx is not None:
        with np.errstate(invalid="ignore", divide="ignore"):
            rx.semilogx(f, pc / pr, color="k", lw=1.1)
        rx.axhline(1.0, color="#888", lw=0.6)
        rx.set_ylabel("cand / ref", fontsize=8)
        ax.tick_params(labelbottom=False)
        axes.append(rx)
    _bands(axes, band_edges(bands), f)
    axes[-1].set_xlabel("radial frequency (cycles / px; 0.5 = Nyquist)", fontsize=8)
    for a in axes:
        a.tick_params(labelsize=7)
        a.minorticks_off()
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})  # no version stamp: the same bytes every time
    return buf.getvalue()


def _bands(axes: Sequence, edges: list[tuple[str, float, float, float]], f: np.ndarray) -> None:
    """Dotted lines at the band edges on every axis, and the band names at their centres on the first."""
    lines = sorted({round(v, 6) for _, lo, _, hi in edges for v in (lo, hi)})
    for a in axes:
        for v in lines:
            a.axvline(v, color="#777", lw=0.7, ls=":")
        a.set_xlim(float(f[0]), float(f[-1]) * 1.05)
    ticks = [t for t in XTICKS if f[0] <= t <= f[-1] * 1.05]
    axes[-1].set_xticks(ticks, [f"1/{round(1 / t)}" for t in ticks])
    top = axes[0]
    for name, _, c, _ in edges:
        if f[0] <= c <= f[-1] * 1.05:
            top.text(c, 0.97, name, transform=top.get_xaxis_transform(), ha="center", va="top", fontsize=7,
                     color="#444")
