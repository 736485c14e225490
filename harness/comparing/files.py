"""File-level comparison behind ``harness compare``: match files, measure, compare.

Two files are one pair; two directories are matched by relative path (image
extensions may differ: ``a/b.png`` matches ``a/b.jpg``).  A mask argument is a
file used for every pair or a directory matched the same way.  A file present
on one side only becomes a pair with status ``error``: nothing is skipped
silently, and neither is a dangling or looping symbolic link: it becomes an
``error`` pair ("broken link: ...") that counts as a bad input (exit 2), like a
corrupt file.  An image whose header declares more pixels than ``max_pixels``
is refused, undecoded, the same way.  In ``distribution`` mode each directory
(relative to the roots) is one group of seeds, compared as a set against the
baseline's set.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from harness.comparing.distribution import compare_distribution
from harness.comparing.engine import Check, CompareConfig, compare_paired, summarize_status
from harness.status import exit_code, worst
from harness.errors import HarnessError, InputError
from harness.imageio import link_problem, resolve_max_pixels

__all__ = ["PairResult", "CompareResult", "compare_paths", "IMAGE_EXTENSIONS", "MODES"]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp")
MODES = ("paired", "distribution")


@dataclass
class PairResult:
    """One pair (or, in distribution mode, one group) of the ``compare --json`` contract."""

    baseline: str
    candidate: str
    status: str
    error: str | None = None
    checks: list[Check] = field(default_factory=list)
    reference: dict[str, float | None] = field(default_factory=dict)
    input_error: bool = False  # a bad input file (exit code 2), as opposed to a failed check

    def to_dict(self) -> dict[str, Any]:
        return {**self._head(), "checks": [c.to_dict() for c in self.checks], "reference": self._reference_dict()}

    def _head(self) -> dict[str, Any]:
        """The keys before ``checks`` (shared by :meth:`to_dict` and :meth:`iter_json`)."""
        return {"baseline": self.baseline, "candidate": self.candidate, "status": self.status, "error": self.error}

    def _reference_dict(self) -> dict[str, float | None]:
        return {k: (v if v is None or math.isfinite(v) else None) for k, v in self.reference.items()}

    def iter_json(self) -> Iterator[str]:
        """``json.dumps(self.to_dict(), allow_nan=False)`` in pieces, one check at a time: the same text
        without every check's dict at once (a 6000² pair has ~800,000 checks)."""
        import json

        head = json.dumps(self._head())
        yield head[:-1] + ', "checks": ['
        for i, c in enumerate(self.checks):
            yield (", " if i else "") + json.dumps(c.to_dict(), allow_nan=False)
        yield '], "reference": ' + json.dumps(self._reference_dict(), allow_nan=False) + "}"


@dataclass
class CompareResult:
    mode: str
    pairs: list[PairResult]

    @property
    def status(self) -> str:
        return worst(p.status for p in self.pairs)

    @property
    def exit_code(self) -> int:
        """0 all pass; 2 when any input was bad; else 1 when anything failed or errored."""
        if any(p.input_error for p in self.pairs):
            return 2
        return exit_code(self.status)

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "pairs": [p.to_dict() for p in self.pairs]}

    def iter_json(self) -> Iterator[str]:
        """The ``compare --json`` document, ``json.dumps(self.to_dict(), allow_nan=False)``, in pieces."""
        import json

        yield '{"status": ' + json.dumps(self.status) + ', "pairs": ['
        for i, p in enumerate(self.pairs):
            if i:
                yield ", "
            yield from p.iter_json()
        yield "]}"


def _images_under(root: Path) -> dict[Path, Path]:
    """Map relative path without extension → file, for every image under ``root``.

    A dangling or looping symbolic link with an image extension is kept (reading it
    reports the broken link): it is never skipped silently.
    """
    out: dict[Path, Path] = {}
    for p in sorted(root.rglob("*")):
        if p.suffix.lower() not in IMAGE_EXTENSIONS or p.name.startswith("."):
            continue
        if p.is_file() or link_problem(p) is not None:
            key = p.relative_to(root).with_suffix("")
            if key in out:
                raise InputError(f"{root}: both {out[key].name} and {p.name} map to {key}; keep one")
            out[key] = p
    return out


def _check_path(p: Path, what: str) -> None:
    problem = link_problem(p)
    if problem is not None:
        raise InputError(f"{what}: {problem}")
    if not p.exists():
        raise InputError(f"{p}: {what} does not exist")


def _match(baseline: Path, candidate: Path) -> list[tuple[Path | None, Path | None, Path]]:
    """``(baseline_file, candidate_file, key)`` triples; ``None`` where one side lacks the file."""
    _check_path(baseline, "baseline")
    _check_path(candidate, "candidate")
    if baseline.is_file() and candidate.is_file():
        return [(baseline, candidate, Path(candidate.stem))]
    if baseline.is_dir() != candidate.is_dir():
        raise InputError(f"cannot compare a {'directory' if baseline.is_dir() else 'file'} ({baseline}) "
                         f"with a {'directory' if candidate.is_dir() else 'file'} ({candidate})")
    b, c = _images_under(baseline), _images_under(candidate)
    if not b and not c:
        raise InputError(f"{baseline} and {candidate}: no images found ({', '.join(IMAGE_EXTENSIONS)})")
    for root, found in ((baseline, b), (candidate, c)):
        if not found:
            raise InputError(f"{root}: directory has no images ({', '.join(IMAGE_EXTENSIONS)})")
    keys = sorted(set(b) | set(c))
    return [(b.get(k), c.get(k), k) for k in keys]


def _mask_for(mask: Path | None, key: Path, masks: dict[Path, Path] | None) -> Path | None:
    if mask is None:
        return None
    if masks is None:
        return mask
    return masks.get(key)


def _measure_file(path: Path, mask_path: Path | None, shape_like: tuple[int, int] | None, measure_kw: dict,
                  limit: int = 0):
    """Load (refusing more than ``limit`` pixels; 0: no limit) and measure one file."""
    from harness.imageio import load_image, load_mask
    from harness.measuring.driver import measure

    img = load_image(path, max_pixels=limit)
    if shape_like is not None and img.shape[:2] != shape_like:
        raise InputError(f"{path}: image is {img.shape[1]}x{img.shape[0]} but the baseline is "
                         f"{shape_like[1]}x{shape_like[0]}")
    mask = load_mask(mask_path, img.shape[:2], max_pixels=limit) if mask_path is not None else None
    try:
        return img, measure(img, mask, **measure_kw)
    except ValueError as exc:
        raise InputError(f"{mask_path or path}: {exc}") from None


def _pair(b: Path | None, c: Path | None, key: Path, baseline_root: Path, candidate_root: Path,
          mask_path: Path | None, mask_expected: bool, config: CompareConfig, measure_kw: dict,
          limit: int = 0) -> PairResult:
    suffix = (b or c).suffix  # type: ignore[union-attr]
    bs = str(b) if b is not None else str(baseline_root / key.with_name(key.name + suffix))
    cs = str(c) if c is not None else str(candidate_root / key.with_name(key.name + suffix))
    for f in (b, c):
        problem = link_problem(f) if f is not None else None
        if problem is not None:
            return PairResult(bs, cs, "error", problem, input_error=True)
    if b is None:
        return PairResult(bs, cs, "error", f"{cs}: no baseline image for this candidate")
    if c is None:
        return PairResult(bs, cs, "error", f"{bs}: no candidate image for this baseline")
    if mask_expected and mask_path is None:
        return PairResult(bs, cs, "error", f"no mask for {key} in the mask directory", input_error=True)
    try:
        bimg, mb = _measure_file(b, mask_path, None, measure_kw, limit)
        cimg, mc = _measure_file(c, mask_path, bimg.shape[:2], measure_kw, limit)
    except HarnessError as exc:
        return PairResult(bs, cs, "error", str(exc), input_error=True)
    checks = compare_paired(mb, mc, config)
    return PairResult(bs, cs, summarize_status(checks), None, checks, _reference(bimg, cimg))


def _reference(bimg, cimg) -> dict[str, float | None]:
    """PSNR and SSIM of the pair in code values, converted strip by strip (no float copy of either image)."""
    import numpy as np

    from harness.measuring.inputs import checked_image
    from harness.measuring.metrics.reference import psnr, ssim

    scales = (checked_image(bimg, None)[1], checked_image(cimg, None)[1])

    def code_values(strip, which: int):  # as_code_values on a strip of rows: the same float32 numbers
        out = strip.astype(np.float32)
        return out if scales[which] is None else np.multiply(out, scales[which], out=out)

    return {"psnr": psnr(bimg, cimg, convert=code_values), "ssim": ssim(bimg, cimg, convert=code_values)}


def _groups(matches: list[tuple[Path | None, Path | None, Path]]) -> dict[Path, list[tuple[Path | None, Path | None, Path]]]:
    out: dict[Path, list] = {}
    for m in matches:
        out.setdefault(m[2].parent, []).append(m)
    return out


def _group(key: Path, members, baseline_root: Path, candidate_root: Path, mask: Path | None,
           masks: dict[Path, Path] | None, config: CompareConfig, measure_kw: dict, limit: int = 0) -> PairResult:
    bs = str(baseline_root / key) if key != Path(".") else str(baseline_root)
    cs = str(candidate_root / key) if key != Path(".") else str(candidate_root)
    bfiles = [m[0] for m in members if m[0] is not None]
    cfiles = [m[1] for m in members if m[1] is not None]
    if len(bfiles) < 2:
        return PairResult(bs, cs, "error", f"{bs}: distribution mode needs at least 2 baseline seeds, "
                                           f"found {len(bfiles)}", input_error=True)
    if not cfiles:
        return PairResult(bs, cs, "error", f"{cs}: no candidate images in this group")
    mask_path = mask if masks is None else (masks.get(key) if key in masks else None)
    if masks is not None and mask_path is None:
        # a group mask may also be given per file; use the first member's
        mask_path = next((masks.get(m[2]) for m in members if masks.get(m[2]) is not None), None)
        if mask_path is None:
            return PairResult(bs, cs, "error", f"no mask for group {key} in the mask directory", input_error=True)
    try:
        shape = None
        mbs, mcs = [], []
        for f in bfiles:
            img, m = _measure_file(f, mask_path, shape, measure_kw, limit)
            shape = img.shape[:2]
            mbs.append(m)
        for f in cfiles:
            mcs.append(_measure_file(f, mask_path, shape, measure_kw, limit)[1])
    except HarnessError as exc:
        return PairResult(bs, cs, "error", str(exc), input_error=True)
    checks = compare_distribution(mbs, mcs, config)
    return PairResult(bs, cs, summarize_status(checks), None, checks, {"baseline_seeds": float(len(mbs)),
                                                                        "candidate_seeds": float(len(mcs))})


def iter_compare(baseline: str | Path, candidate: str | Path, *, mask: str | Path | None = None,
                 mode: str = "paired", config: CompareConfig | None = None,
                 measure_kw: dict | None = None, workers: int = 1,
                 max_pixels: int | str | None = None) -> Iterator[PairResult]:
    """Yield one :class:`PairResult` per matched pair (or group), in order, as it is computed.

    ``workers > 1`` measures pairs in that many processes (results keep their order).
    ``max_pixels``: refuse (as a bad-input error pair) any image or mask whose header declares
    more pixels, before decoding it; ``None``: ``$HARNESS_MAX_PIXELS`` or the default
    (:data:`harness.imageio.DEFAULT_MAX_PIXELS`); ``0``: no limit.

    Raises :class:`InputError` for problems that stop everything (missing root,
    empty directory, unsupported mode); per-pair problems become ``error`` pairs.
    """
    if mode not in MODES:
        raise InputError(f"--mode {mode!r} is not supported; choose one of: {', '.join(MODES)}")
    config = config or CompareConfig()
    measure_kw = measure_kw or {}
    limit = resolve_max_pixels(max_pixels) or 0  # a bad value stops everything, before any file is read
    broot, croot = Path(baseline), Path(candidate)
    matches = _match(broot, croot)
    mpath = Path(mask) if mask is not None else None
    masks = None
    if mpath is not None:
        _check_path(mpath, "mask")
        if mpath.is_dir():
            masks = _images_under(mpath)
            if not masks:
                raise InputError(f"{mpath}: mask directory has no images")
    if workers < 1:
        raise InputError(f"--workers must be >= 1, got {workers}")
    if mode == "paired":
        jobs = [(_pair, (b, c, key, broot, croot, _mask_for(mpath, key, masks), masks is not None, config, measure_kw,
                        limit))
                for b, c, key in matches]
    else:
        if broot.is_file():
            raise InputError("--mode distribution needs two directories of seeds, not two files")
        jobs = [(_group, (key, members, broot, croot, mpath, masks, config, measure_kw, limit))
                for key, members in _groups(matches).items()]
    if workers == 1 or len(jobs) < 2:
        for fn, args in jobs:
            yield fn(*args)
        return
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=workers) as ex:
        yield from ex.map(_call, jobs)


def _call(job):
    fn, args = job
    return fn(*args)


def compare_paths(baseline: str | Path, candidate: str | Path, *, mask: str | Path | None = None,
                  mode: str = "paired", config: CompareConfig | None = None, measure_kw: dict | None = None,
                  progress: Callable[[PairResult], None] | None = None, workers: int = 1,
                  max_pixels: int | str | None = None) -> CompareResult:
    """Compare two images or two directories of images; see the module docstring."""
    pairs = []
    for pair in iter_compare(baseline, candidate, mask=mask, mode=mode, config=config, measure_kw=measure_kw,
                             workers=workers, max_pixels=max_pixels):
        pairs.append(pair)
        if progress is not None:
            progress(pair)
    return CompareResult(mode, pairs)
