"""diff.html: ``harness diff`` as a page, with A | B | difference images of each vector ×
pipeline that newly fails.

The page is one file from the Jinja2 template ``templates/diff.html.j2`` (autoescaping on: every
name, slice and note from a report is escaped), with inline CSS and no scripts or network; its
images are small PNGs under ``DIR/images/`` linked relatively.  For each newly failing vector ×
pipeline (the worst :data:`MAX_UNITS`), one seed (the one whose newly failing checks are worst):
the measured image (``output``) of A and B and their amplified difference with the newly failing
checks' boxes drawn, and, when an earlier stage's image is the first to differ, that stage too.
Images come from each run's artifacts (store references through the run's image store, or
run-folder paths); a missing or unreadable image is named in the page, never a crash."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.fsio import atomic_write_text
from harness.naming import case_slug
from harness.report.diff import SECTIONS

if TYPE_CHECKING:
    import numpy as np

    from harness.report.diff import DiffResult, UnitDiff

__all__ = ["MAX_UNITS", "THUMB", "write_diff_html", "diff_images"]

#: Vector × pipelines shown with images (the most newly failing checks first).
MAX_UNITS = 12
#: The longest side of a written image, pixels.
THUMB = 360
#: Boxes drawn per image (the worst newly failing checks).
MAX_BOXES = 12
#: Rows per section on the page.
PAGE_ROWS = 200
_MEASURED = "output"


def _load(value: Any, run_dir: Path, store: Path | None) -> tuple[np.ndarray | None, str]:
    """An artifact as an ``(H, W, 3)`` uint8 array, or None and why."""
    from harness.errors import InputError
    from harness.imageio import load_image
    from harness.run.store import resolve_artifact

    p = resolve_artifact(value, run_dir, store)
    if p is None:
        return None, f"{value} not found (a pruned store object or a moved run?)"
    try:
        img = load_image(p)
    except (InputError, OSError, ValueError) as e:
        return None, f"{p.name} unreadable: {e}"
    return (img >> 8).astype("uint8") if img.dtype.name == "uint16" else img, ""


def _thumb(img: np.ndarray, boxes: list[tuple[int, int, int, int]]):
    """A PIL image at most :data:`THUMB` px on its longest side, ``boxes`` (pixels of ``img``) drawn in red."""
    from PIL import Image, ImageDraw

    h, w = img.shape[:2]
    k = min(1.0, THUMB / max(h, w))
    im = Image.fromarray(img).convert("RGB")
    if k < 1.0:
        im = im.resize((max(1, round(w * k)), max(1, round(h * k))), Image.Resampling.LANCZOS)
    draw = ImageDraw.Draw(im)
    for x0, y0, x1, y1 in boxes:
        draw.rectangle([x0 * k, y0 * k, max(x0 * k, x1 * k - 1), max(y0 * k, y1 * k - 1)], outline=(230, 20, 20))
    return im


def _difference(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, float]:
    """``|A − B|`` (largest over channels), amplified so that its 99.5th percentile is white
    (at most ×32): (grey uint8 ``(H, W, 3)``, the gain)."""
    import numpy as np

    d = np.abs(a.astype(np.int16) - b.astype(np.int16)).max(axis=2)
    top = float(np.percentile(d, 99.5)) if d.any() else 0.0
    gain = min(32.0, 255.0 / top) if top > 0 else 1.0
    grey = np.clip(d * gain, 0, 255).astype(np.uint8)
    return np.repeat(grey[:, :, None], 3, axis=2), gain


def _png(im, path: Path) -> None:
    import io

    from harness.fsio import atomic_write_bytes

    buf = io.BytesIO()
    im.save(buf, format="PNG")  # optimize=True costs ~3x the time for a few per cent
    atomic_write_bytes(path, buf.getvalue())


def _triple(res: DiffResult, u: UnitDiff, stage: str, boxes: list, out: Path) -> dict[str, Any]:
    """The A, B and difference images of one stage of the unit's shown seed, written under
    ``out/images``: ``{"stage", "seed", "a", "b", "difference", "note"}`` (hrefs relative to ``out``;
    None where an image could not be made, ``note`` saying why)."""
    x, y = u.shown  # type: ignore[misc]
    entry: dict[str, Any] = {"stage": stage, "seed": y.seed, "a": None, "b": None, "difference": None, "note": ""}
    notes = []
    imgs = []
    for side, case, run_dir, store in (("a", x, res.dir_a, res.stores[0]), ("b", y, res.dir_b, res.stores[1])):
        value = case.artifacts.get(stage) if case is not None else None
        img, why = _load(value, run_dir, store) if value else \
            (None, f"no {stage!r} artifact recorded" if case is not None else f"no case {y.id} in this run")
        if img is None:
            notes.append(f"{side.upper()}: {why}")
        imgs.append(img)
    base = f"images/{case_slug(y.id)}-{stage}"
    (out / "images").mkdir(parents=True, exist_ok=True)
    for side, img in zip(("a", "b"), imgs):
        if img is not None:
            _png(_thumb(img, boxes), out / f"{base}-{side}.png")
            entry[side] = f"{base}-{side}.png"
    a, b = imgs
    if a is not None and b is not None:
        if a.shape != b.shape:
            notes.append(f"A is {a.shape[1]}x{a.shape[0]}, B {b.shape[1]}x{b.shape[0]}: no difference image")
        else:
            diff, gain = _difference(a, b)
            _png(_thumb(diff, boxes), out / f"{base}-diff.png")
            entry["difference"], entry["gain"] = f"{base}-diff.png", round(gain, 1)
    entry["note"] = "; ".join(notes)
    return entry


def _boxes(res: DiffResult, u: UnitDiff) -> list[tuple[int, int, int, int]]:
    """The boxes of the unit's newly failing checks in its shown seed, worst first, each once."""
    out: list[tuple[int, int, int, int]] = []
    for r in res.sections["newly_failing"]:
        if r.unit != u.unit or not r.box or r.box in out:
            continue
        if any(s.seed == u.worst_seed and s.status_b in ("fail", "error") for s in r.seeds):
            out.append(r.box)
        if len(out) >= MAX_BOXES:
            break
    return out


def diff_images(res: DiffResult, out: Path) -> dict[str, list[dict[str, Any]]]:
    """``{unit: [image entry, ...]}`` for the newly failing vector × pipelines (see :func:`_triple`)."""
    found: dict[str, list[dict[str, Any]]] = {}
    for u in [u for u in res.units if (u.regressed or u.newly_failing) and u.shown][:MAX_UNITS]:
        x, y = u.shown  # type: ignore[misc]
        measured = _MEASURED if _MEASURED in y.artifacts or (x is not None and _MEASURED in x.artifacts) else \
            next(reversed(list(y.artifacts)), None)
        entries = []
        if u.first_image_change and u.first_image_change != measured:
            entries.append(_triple(res, u, u.first_image_change, [], out))
        if measured:
            entries.append(_triple(res, u, measured, _boxes(res, u), out))
        found[u.unit] = entries or [{"stage": None, "seed": y.seed, "a": None, "b": None, "difference": None,
                                     "note": "no artifacts recorded for this case"}]
    return found


def render_diff_html(res: DiffResult, images: dict[str, list[dict[str, Any]]]) -> str:
    from harness.report.diff_text import TITLES, row_change, row_severity, summary_line
    from harness.report.templating import environment
    from harness.report.text import format_box

    env = environment(change=row_change, severity=row_severity, box=lambda b: format_box(b)[2:] if b else "")
    sections = [(name, TITLES[name], res.counts.get(name, 0), res.sections[name][:PAGE_ROWS]) for name in SECTIONS]
    return env.get_template("diff.html.j2").render(
        res=res, cfg=res.config, images=images, sections=sections, summary=summary_line(res),
        changed_units=[u for u in res.units if u.changed], page_rows=PAGE_ROWS)


def write_diff_html(res: DiffResult, out: Path) -> tuple[Path, dict[str, list[dict[str, Any]]]]:
    """diff.html and its images under ``out``: (the page, the image entries by unit)."""
    out.mkdir(parents=True, exist_ok=True)
    images = diff_images(res, out)
    p = out / "diff.html"
    atomic_write_text(p, render_diff_html(res, images))
    return p, images
