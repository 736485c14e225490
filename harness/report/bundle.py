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

__all__ = ["Bundle", "write_bundle", "check_destination", "THUMB_PX"]

THUMB_PX = 160
_MARKER = ".harness-bundle"  # an earlier bundle, which a new one may replace


@dataclass
class Bundle:
    """What :func:`write_bundle` wrote: the folder, its size in bytes, and image counts."""

    path: Path
    size: int = 0
    full: int = 0
    thumbs: int = 0
    missing: list[str] = field(default_factory=list)  # "case stage value" of images not found


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
    """The bundle-relative path of ``src`` (full size or its thumbnail), written once per content."""
    data = src.read_bytes()
    h = hashlib.sha256(data).hexdigest()[:24]
    key = (h, full)
    if key not in done:
        name = f"{h}.png" if full else f"{h}.t{THUMB_PX}.webp"
        (images / name).write_bytes(data if full else _thumbnail(data))
        done[key] = f"images/{name}"
        out.full += full
        out.thumbs += not full
    return done[key]


def write_bundle(run_dir: str | os.PathLike[str], dest: str | os.PathLike[str]) -> Bundle:
    """Write the bundle of the run at ``run_dir`` to ``dest`` (see the module docstring)."""
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
            full = case.status in GATING
            for stage, value in list(case.artifacts.items()):
                src = resolve_artifact(value, run, store_root)
                if src is None:
                    result.missing.append(f"{case.id} {stage} {value}")
                    continue
                case.artifacts[stage] = _copy_image(src, tmp / "images", full, done, result)
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
