"""Diagnostic figures of a case that did not pass, for index.html: image files written under the
run folder's ``charts/`` (re-derivable with ``harness report``), each described by a :class:`Figure`.

Per failing case, of its measured image (the ``output`` stage: what the measurement and every
CHECK ``box`` refer to, :func:`harness.run.case._judge_absolute`):

* ``compare``: reference | candidate | amplified difference, the failing checks' boxes drawn and
  numbered worst first (:mod:`harness.report.figures_images`);
* ``zoom``: the worst failing check that has a box, its crops side by side, upscaled;
* ``spectrum``: the radially averaged power spectrum, reference vs candidate, with the band edges
  (:mod:`harness.report.figures_spectrum`);
* ``tiles``: the per-tile worst severity registered on the candidate, with its colour bar;
* ``checks``: the worst checks as signed ``delta / tolerance`` bars.

The reference is the image the case's baseline recorded for that stage (baseline key ``images``,
an object of the image store).  Where there is none (a baseline baked before reference images, a
pruned store, a run from another machine) the figures show the candidate alone and their titles
say "no reference image" and why: never an error.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.naming import case_slug
from harness.report.schema import Report
from harness.report.text import format_box, worst_checks

__all__ = ["Figure", "case_figures", "tile_checks", "MEASURED", "MAX_BOXES", "failing_marks", "tile_severities"]

MEASURED = "output"  # the stage whose image is measured: check boxes are in its pixels
MAX_BOXES = 8  # boxes drawn on the compare strip (the worst; the title says how many there were)


@dataclass(frozen=True)
class Figure:
    """One written figure: ``kind`` (a stable short name, e.g. ``"checks"``), a human ``title``,
    and ``href``, its path relative to the run folder (posix)."""

    kind: str
    title: str
    href: str


@dataclass
class _Sources:
    """What a case's figures draw from: the measured images (``(H, W, 3)`` code values, None where
    absent), why there is no reference (``note``), and the measuring bands ``{name: centre cycles/px}``."""

    candidate: Any = None
    reference: Any = None
    note: str = ""
    bands: dict[str, float] = field(default_factory=dict)


def case_figures(report: Report, case, run_dir: Path, tiles: list) -> list[Figure]:
    """The figures of ``case`` (none for a passing one), written under ``run_dir/charts``;
    ``tiles``: every tile check of the case (:func:`tile_checks`)."""
    if case.status == "pass":
        return []
    run_dir = Path(run_dir)
    base = f"charts/{case_slug(case.id)}"
    src = _sources(report, case, run_dir)
    checks = _failing(list(case.checks) + list(tiles))
    out: list[Figure | None] = []
    if src.candidate is not None:
        marks, total = failing_marks(checks, src.candidate.shape)
        out.append(_compare(src, marks, total, run_dir, f"{base}.compare.jpg"))
        out.append(_zoom(src, marks, run_dir, base))
        out.append(_spectrum(src, run_dir, f"{base}.spectrum.png"))
    out.append(_heatmap(src, tiles, run_dir, f"{base}.tiles.jpg"))
    if _chart(case, run_dir / f"{base}.png"):
        out.append(Figure("checks", "worst checks (delta / tolerance, signed)", f"{base}.png"))
    return [f for f in out if f is not None]


def tile_checks(report: Report, run_dir: Path) -> dict[str, list]:
    """The per-tile checks of every case that did not pass, by case id: one read of checks.parquet
    (the ``tile`` rows of those cases only, the CHECK columns and ``box`` only).  Where the run folder cannot
    give them, each case's deciding checks stand in (the map then shows fewer tiles)."""
    import pyarrow.compute as pc

    from harness.report.checks_table import CHECK_COLUMNS, checks_of, read_checks

    ids = [c.id for c in report.cases if c.status != "pass"]
    if not ids:
        return {}
    try:
        table = read_checks(run_dir, (*CHECK_COLUMNS, "box"), pc.field("case").isin(ids) & pc.field("tile").is_valid(),
                            report=report)
        out: dict[str, list] = {}
        for cid, check in zip(table.column("case").to_pylist(), checks_of(table)):
            out.setdefault(cid, []).append(check)
        return out
    except Exception:  # noqa: BLE001 - a view: re-derivable with `harness report`, never a crash of the run
        return {c.id: c.checks for c in report.cases if c.status != "pass"}


# ---------------------------------------------------------------------------------------- sources
def _sources(report: Report, case, run_dir: Path) -> _Sources:
    """The candidate (the case's ``artifacts[MEASURED]``) and the reference (its baseline's
    ``images[MEASURED]``), both resolved in the run's image store."""
    from harness.measuring.bands import BAND_CENTERS, BAND_NAMES
    from harness.run.store import store_root_of

    store = store_root_of(report.environment)
    src = _Sources(bands=dict(zip(BAND_NAMES, BAND_CENTERS)))
    src.candidate, _ = _image(case.artifacts.get(MEASURED), run_dir, store)
    if src.candidate is None:
        return src
    ref, src.note, bands = _reference(report, case.id)
    if bands:
        src.bands = bands
    src.reference, why = _image(ref, run_dir, store) if ref else (None, "")
    if ref and src.reference is None:
        src.note = f"{ref[:15]}… {why}"
    return src


def _image(value: Any, run_dir: Path, store: Path | None) -> tuple[Any, str]:
    """``(image, "")`` of an artifact value (a store reference or a run-folder path), or ``(None, why)``."""
    from harness.errors import InputError
    from harness.imageio import load_image
    from harness.run.store import resolve_artifact

    p = resolve_artifact(value, run_dir, store)
    if p is None:
        return None, f"is not in the image store {store}" if store is not None else "has no image store recorded"
    try:
        return load_image(p), ""
    except (InputError, OSError) as exc:
        return None, f"cannot be read ({exc})"


def _reference(report: Report, case_id: str) -> tuple[str | None, str, dict]:
    """``(reference, note, bands)``: the baseline's ``images[MEASURED]`` (None and why not) and the
    band centres its measurement meta records (``{}``: none)."""
    from harness.errors import BaselineError
    from harness.suite.baselines.store import BaselineStore

    root = (report.environment or {}).get("baselines")
    if not isinstance(root, str) or not root:
        return None, "the run records no baselines folder", {}
    try:
        baseline = BaselineStore(report.suite, Path(root)).load(case_id)
    except BaselineError as exc:
        return None, f"its baseline cannot be read: {exc}", {}
    if baseline is None:
        return None, f"no baseline for this case in {root}", {}
    bands = baseline.measurement.meta.get("bands")
    bands = {str(k): float(v) for k, v in bands.items()} if isinstance(bands, dict) else {}
    ref = baseline.images.get(MEASURED)
    if not ref:
        return None, f"its baseline records no {MEASURED!r} image (baked before reference images)", bands
    return ref, "", bands


# ----------------------------------------------------------------------------------------- checks
def _failing(checks: list) -> list:
    """The failing checks among ``checks`` (a case's deciding checks and its tile rows: the same check
    may be in both), each once, worst first."""
    seen: dict[tuple[str, str], Any] = {}
    for c in checks:
        seen.setdefault((c.metric, c.slice), c)
    return worst_checks(seen.values())


def _severity_text(c) -> str:
    return f"{c.severity:.3g} x tolerance" if math.isfinite(c.severity) else c.status


def failing_marks(failing: list, shape) -> tuple[list, int]:
    """``(marks, total)``: the distinct boxes of ``failing`` (worst first; a box's worst check names it),
    leaving out the whole image's box and any box that overlaps a worse one drawn by half its area or
    more (neighbouring tiles of a stride below their size: one of them stands for the others), at most
    :data:`MAX_BOXES`; ``total``: how many distinct failing boxes there were."""
    from harness.report.figures_images import Mark

    whole = (0, 0, int(shape[1]), int(shape[0]))
    seen: dict[tuple[int, int, int, int], Any] = {}
    for c in failing:
        box = getattr(c, "box", None)
        if box is not None and tuple(box) != whole and box[2] > box[0] and box[3] > box[1]:
            seen.setdefault(tuple(int(v) for v in box), c)
    kept: list[tuple[tuple[int, int, int, int], Any]] = []
    for box, c in seen.items():
        if len(kept) < MAX_BOXES and not any(_overlap(box, k) >= 0.5 for k, _ in kept):
            kept.append((box, c))
    return [Mark(i + 1, box, f"{c.metric} [{c.slice}] {_severity_text(c)}") for i, (box, c) in enumerate(kept)], \
        len(seen)


def _overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    """The area two boxes share, as a fraction of the smaller one's."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    return w * h / min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))


def tile_severities(tiles: list) -> list[tuple[tuple[int, int, int, int], float]]:
    """``[(box, worst severity)]`` per distinct tile box over the judged checks of ``tiles`` (an
    error's infinite severity kept; skips left out)."""
    worst: dict[tuple[int, int, int, int], float] = {}
    for c in tiles:
        box = getattr(c, "box", None)
        if box is None or c.status not in ("pass", "fail", "error"):
            continue
        key = tuple(int(v) for v in box)
        s = c.severity if c.severity >= 0 or c.status == "error" else 0.0
        worst[key] = max(worst.get(key, 0.0), s)
    return list(worst.items())


# ---------------------------------------------------------------------------------------- figures
def _no_ref(src: _Sources) -> str:
    return f" (no reference image: {src.note})" if src.reference is None else ""


def _write(run_dir: Path, href: str, data: bytes) -> None:
    from harness.fsio import atomic_write_bytes

    atomic_write_bytes(run_dir / href, data)


def _compare(src: _Sources, marks: list, total: int, run_dir: Path, href: str) -> Figure:
    from harness.report.figures_images import compare_strip, encode

    strip = compare_strip(src.candidate, src.reference, marks)
    _write(run_dir, href, encode(strip.image, "jpg"))
    boxes = (f"{len(marks)} of {total} failing boxes drawn (the worst; one that overlaps a worse one by half "
             "or more is left out)" if total > len(marks) else
             f"{total} failing box{'' if total == 1 else 'es'} drawn") + ", numbered worst first (#1 red)"
    scale = f"; shown at 1/{strip.factor} size" if strip.factor > 1 else ""
    if src.reference is None:
        return Figure("compare", f"{MEASURED} image: candidate; {boxes}{scale}{_no_ref(src)}", href)
    r, c = src.reference.shape, src.candidate.shape
    if strip.gain is None:
        return Figure("compare", f"{MEASURED} image: reference | candidate; {boxes}{scale} (no difference image: "
                                 f"the reference is {r[1]}x{r[0]}, the candidate {c[1]}x{c[0]})", href)
    return Figure("compare", f"{MEASURED} image: reference | candidate | |difference| x{strip.gain} "
                             f"(every changed pixel visible); {boxes}{scale}", href)


def _zoom(src: _Sources, marks: list, run_dir: Path, base: str) -> Figure | None:
    from harness.report.figures_images import encode, zoom_strip

    if not marks:
        return None
    worst = marks[0]
    header = f"#1 {worst.label} {format_box(worst.box)}"
    strip = zoom_strip(src.candidate, src.reference, worst, header)
    # upscaled crops are blocks of equal pixels: PNG keeps them exact and small; else photographic: JPEG
    href = f"{base}.zoom.{'png' if strip.zoom > 1 else 'jpg'}"
    _write(run_dir, href, encode(strip.image, "png" if strip.zoom > 1 else "jpg"))
    how = f"shown at 1/{strip.factor} size" if strip.factor > 1 else f"upscaled x{strip.zoom} nearest-neighbour"
    return Figure("zoom", f"zoom on the worst box: {header} ({how}){_no_ref(src)}", href)


def _spectrum(src: _Sources, run_dir: Path, href: str) -> Figure:
    from harness.report.figures_images import display
    from harness.report.figures_spectrum import spectrum_png

    what = "reference vs candidate" if src.reference is not None else "candidate"
    header = f"radially averaged power spectrum, {what} (luma, whole image)"
    _write(run_dir, href, spectrum_png(display(src.candidate),
                                       display(src.reference) if src.reference is not None else None,
                                       src.bands, header))
    edges = ", ".join(f"{n} {c:g}" for n, c in sorted(src.bands.items(), key=lambda kv: kv[1]))
    return Figure("spectrum", f"{header}: the failing checks' regions are not masked out; band edges dotted "
                              f"(centres {edges} cycles/px, edges at centre x/÷ sqrt 2){_no_ref(src)}", href)


def _heatmap(src: _Sources, tiles: list, run_dir: Path, href: str) -> Figure | None:
    from harness.report.figures_images import encode, tile_cells, tile_heatmap

    severities = tile_severities(tiles)
    cells = tile_cells(severities)
    if not cells:
        return None
    shape = src.candidate.shape if src.candidate is not None else \
        (max(b[3] for b, _ in severities), max(b[2] for b, _ in severities))
    over = sum(1 for _, s in cells if not s <= 1.0)
    header = f"worst |delta| / tolerance per tile: {len(cells)} tiles, {over} over tolerance"
    strip = tile_heatmap(src.candidate, shape, cells, header)
    _write(run_dir, href, encode(strip.image, "jpg"))
    on = "on the candidate" if src.candidate is not None else "(no candidate image: on a grey ground)"
    return Figure("tiles", f"{header}, {on}; overlapping tiles each shown nearest their centre", href)


def _chart(case, path: Path) -> bool:
    """The worst checks as signed delta/tolerance bars (PNG at ``path``); False when none has a severity."""
    from harness.fsio import atomic_write_bytes
    from harness.report.figures_plot import bars_png

    worst = [c for c in worst_checks(case.checks, 12) if math.isfinite(c.severity)]
    if not worst:
        return False
    atomic_write_bytes(path, bars_png([f"{c.metric} {c.slice}" for c in worst],
                                      [math.copysign(c.severity, c.delta or 0.0) for c in worst], case.id))
    return True
