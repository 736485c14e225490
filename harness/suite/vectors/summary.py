"""Showing a vector to a person: ``harness vectors show ID [--out DIR]`` prints :func:`describe` and
writes :func:`render_to_png`."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from harness.imageio import float_to_uint8
from harness.suite.vectors.rendering import overlay_anchor_gap, render
from harness.suite.vectors.schema import Vector

__all__ = ["describe", "render_to_png"]


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
        lines.append(f"  render   by the generate stage ({v.source['kind']} source); overlays and anchors are applied "
                     f"to its image")
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
             "overlay_mask.png": float_to_uint8(r.overlay_mask),
             "anchors.png": r.anchors.astype(np.uint8) * 255}
    paths = []
    for name, arr in files.items():
        save_png(out / name, arr)
        paths.append(out / name)
    return paths
