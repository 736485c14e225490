"""A self-contained copy of a run for CI upload: ``harness run --bundle DIR`` / ``harness export RUN DIR``.

A run folder references its stage images in the image store (:mod:`harness.run.store`), which
is not uploaded; a bundle is a folder that opens anywhere::

    DIR/report.json      the run's report, every case's ``artifacts`` rewritten to ``images/…``
    DIR/summary.md       re-rendered from it (harness.report.render.render_report), as are
    DIR/index.html         index.html and charts/, so every view works unchanged
    DIR/charts/…
    DIR/checks.parquet   every check (copied from the run when it has one, else rendered)
    DIR/images/<h>.png       a failing or errored case's images at full size (the PNG as stored)
    DIR/images/<h>.t160.webp  thumbnails (160 px on the long side) of every other case's images

Full-size images are capped at :data:`FULL_BUDGET_BYTES` (10 MB) per bundle, so a broad
regression still makes an uploadable bundle: once spent, further failing cases get thumbnails
too, and the bundled report's notes say how many (the run folder and the store keep them all).
``<h>`` is the first 24 hex digits of the image's sha256, so an image that many cases share
(the same input) is in the bundle once.  An artifact that cannot be found (a pruned store, a
moved run) stays as it was and the view shows it as text.  ``DIR`` must be empty, absent or an
earlier bundle (which is replaced); it is assembled in a temporary sibling folder and renamed
into place, so a failed export leaves no half bundle.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import ConfigError
from harness.status import GATING

__all__ = ["Bundle", "write_bundle", "check_destination", "THUMB_PX", "FULL_BUDGET_BYTES"]

THUMB_PX = 160
FULL_BUDGET_BYTES = 10 * 2**20  # full-size images per bundle (smoke's stage images take ~13 MB in all)
_MARKER = ".harness-bundle"  # an earlier bundle, which a new one may replace


@dataclass
class Bundle:
    """What :func:`write_bundle` wrote: the folder, its size in bytes, and image counts."""

    path: Path
    size: int = 0
    full: int = 0
    thumbs: int = 0
    missing: list[str] = field(default_factory=list)  # "case stage value" of images not found
    over_budget: list[str] = field(default_factory=list)  # failing cases shown by thumbnails only
    full_bytes: int = 0


def check_destination(out: Path) -> None:
    """Refuse a ``DIR`` that holds anything but an earlier bundle (never delete a user's files)."""
    if out.exists():
        if not out.is_dir():
            raise ConfigError(f"--bundle {out}: a file is in the way; give a folder")
        if any(out.iterdir()) and not (out / _MARKER).is_file():
            raise ConfigError(f"--bundle {out}: the folder is not empty and is not an earlier bundle; "
                              "give a new or empty folder")


def _thumbnail(data: bytes) -> bytes:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        im = im.convert("RGB") if im.mode not in ("RGB", "L") else im
        im.thumbnail((THUMB_PX, THUMB_PX), Image.Resampling.LANCZOS)
        buf = io.BytesIO()
        im.save(buf, format="WEBP", quality=80, method=4)
    return buf.getvalue()


def _copy_image(src: Path, images: Path, full: bool, done: dict[tuple[str, bool], str], out: Bundle) -> str:
    """The bundle-relative path of ``src`` (full size or its thumbnail), written once per content;
    a file already copied (an image many cases share) is not read and hashed again."""
    seen = (str(src), full)
    if seen in done:
        return done[seen]
    data = src.read_bytes()
    h = hashlib.sha256(data).hexdigest()[:24]
    key = (h, full)
    if key not in done:
        name = f"{h}.png" if full else f"{h}.t{THUMB_PX}.webp"
        (images / name).write_bytes(data if full else _thumbnail(data))
        done[key] = f"images/{name}"
        out.full += full
        out.thumbs += not full
        out.full_bytes += len(data) if full else 0
    done[seen] = done[key]
    return done[key]


def _full_size(case, run: Path, store_root, out: Bundle, budget: int) -> bool:
    """Whether ``case``'s images go in at full size: it failed or errored, and they fit the budget."""
    from harness.run.store import resolve_artifact

    if case.status not in GATING:
        return False
    files = [resolve_artifact(v, run, store_root) for v in case.artifacts.values()]
    if out.full_bytes + sum(f.stat().st_size for f in files if f is not None) > budget:
        out.over_budget.append(case.id)
        return False
    return True


def write_bundle(run_dir: str | os.PathLike[str], dest: str | os.PathLike[str], *,
                 full_budget: int = FULL_BUDGET_BYTES) -> Bundle:
    """Write the bundle of the run at ``run_dir`` to ``dest`` (see the module docstring);
    ``full_budget``: bytes of full-size images at most."""
    from harness.report.render import render_report
    from harness.report.schema import load_report
    from harness.run.store import resolve_artifact, store_root_of

    run, out_dir = Path(run_dir), Path(dest).expanduser().absolute()
    check_destination(out_dir)
    report = load_report(run)
    store_root = store_root_of(report.environment)
    tmp = out_dir.parent / f".{out_dir.name}.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "images").mkdir(parents=True)
    result, done = Bundle(out_dir), {}
    try:
        for case in report.cases:
            full = _full_size(case, run, store_root, result, full_budget)
            for stage, value in list(case.artifacts.items()):
                src = resolve_artifact(value, run, store_root)
                if src is None:
                    result.missing.append(f"{case.id} {stage} {value}")
                    continue
                case.artifacts[stage] = _copy_image(src, tmp / "images", full, done, result)
        if result.over_budget:
            report.notes.append(f"bundle: {len(result.over_budget)} failing case(s) shown by thumbnails only, the "
                                f"{full_budget / 2**20:.0f} MB for full-size images being spent; the run folder "
                                f"{run.resolve()} and its image store hold them at full size")
        if (run / "checks.parquet").is_file():
            shutil.copyfile(run / "checks.parquet", tmp / "checks.parquet")
        report.write(tmp)
        render_report(tmp, report)
        (tmp / _MARKER).write_text(f"a bundle of {run.resolve()}\n", encoding="utf-8")
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    result.size = sum(p.stat().st_size for p in out_dir.rglob("*") if p.is_file())
    return result
