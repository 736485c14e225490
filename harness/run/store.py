"""The image store: every stage image once, addressed by the sha256 of its PNG bytes.

Layout (the root is the project's ``store`` key, default ``.harness-store`` beside the cache,
or ``--store DIR``)::

    <root>/objects/ab/cdef….png   one PNG per distinct image; its name is the sha256 of its bytes
    <root>/index/12/3456…         a 71-byte text file: the reference of the PNG that encodes an array
                                  whose raw content hash is 123456… (so an unchanged stage output
                                  is not even encoded again)

A **reference** is ``"sha256:"`` + 64 lowercase hex digits; anything else given to
:meth:`ImageStore.path` / :meth:`ImageStore.has` is an :class:`InputError` naming it.
A run's ``report.json`` records, per case, ``artifacts = {stage: reference}``; older runs
recorded run-folder relative paths, and :func:`resolve_artifact` resolves either.

**Writes** are atomic (temporary file + ``os.replace``, :func:`harness.fsio.atomic_write_bytes`):
two processes putting the same image both rename a complete, identical file over the name,
so a reader never sees half of one.  Putting an image that is already there writes nothing
(it only touches the object, for the retention rule).

**Retention** (:meth:`ImageStore.prune`, run after ``harness run`` when the store is over the
project's ``store_max_mb``, and by ``harness store prune``): least recently used objects go
first (used = put by a run or a bake: their mtime), down to 90 % of the bound, but an object
that a baseline under the project's baselines folder references (its ``images``), or that the
run just made references, is never removed.  A removed object is reported by the next view
or run that wants it as a missing image, never an error.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Iterable, Iterator, Mapping

import numpy as np

from harness.errors import InputError

__all__ = ["ImageStore", "PruneResult", "REF_PREFIX", "DEFAULT_STORE_MAX_MB", "is_ref", "check_ref",
           "resolve_artifact", "store_root_of", "refs_in_baselines", "reference_images", "missing_reference_notes"]

REF_PREFIX = "sha256:"
_REF_RE = re.compile(r"sha256:[0-9a-f]{64}")
_REF_SEARCH = re.compile(r"sha256:[0-9a-f]{64}(?![0-9a-f])")
DEFAULT_STORE_MAX_MB = 4096  # the project's `store_max_mb` default
_LOW_WATER = 0.9  # pruning goes down to this fraction of the bound, so not every run prunes again


def is_ref(value: Any) -> bool:
    """True when ``value`` is a well-formed store reference (``sha256:`` + 64 lowercase hex)."""
    return isinstance(value, str) and _REF_RE.fullmatch(value) is not None


def check_ref(ref: Any) -> str:
    """``ref`` when it is a reference; else an :class:`InputError` saying what a reference is."""
    if not is_ref(ref):
        raise InputError(f"{ref!r}: not an image store reference (expected 'sha256:' and 64 lowercase hex digits)")
    return ref


def _array_digest(arr: np.ndarray) -> str:
    h = hashlib.sha256(f"harness-store-index/1\0{arr.shape}\0{arr.dtype.str}\0".encode())
    h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()


@dataclass
class PruneResult:
    """What :meth:`ImageStore.prune` did: objects removed, bytes freed, bytes left, objects kept
    although least recently used because something references them."""

    removed: list[str] = field(default_factory=list)
    freed: int = 0
    remaining: int = 0
    protected: int = 0


class ImageStore:
    """Content-addressed PNGs under ``root`` (see the module docstring)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"ImageStore({str(self.root)!r})"

    def __reduce__(self):  # picklable for worker processes: just the root
        return (ImageStore, (str(self.root),))

    @property
    def objects_dir(self) -> Path:
        return self.root / "objects"

    def path(self, ref: str) -> Path:
        """Where the object ``ref`` is (or would be): ``<root>/objects/ab/cdef….png``."""
        hexd = check_ref(ref)[len(REF_PREFIX):]
        return self.objects_dir / hexd[:2] / f"{hexd[2:]}.png"

    def has(self, ref: str) -> bool:
        return self.path(ref).is_file()

    def put_png(self, data: bytes) -> str:
        """Store PNG ``data`` (bytes as given, never re-encoded); its reference.  Idempotent: an
        object already there with the same size is only touched (the retention rule's "used")."""
        ref = REF_PREFIX + hashlib.sha256(data).hexdigest()
        p = self.path(ref)
        try:
            if p.stat().st_size == len(data):
                _touch(p)
                return ref
        except FileNotFoundError:
            pass
        from harness.fsio import atomic_write_bytes

        atomic_write_bytes(p, data)  # a short file (a crashed copy by hand) is replaced, same name
        return ref

    def put(self, image: np.ndarray) -> str:
        """Store ``image`` (``(H, W)`` or ``(H, W, 3)``; uint8, uint16, bool or float in [0, 1],
        written as :func:`harness.imageio.save_png` does); its reference.  An array stored before
        costs one hash of its bytes and one small read: the index maps it to its object."""
        arr = np.asarray(image)
        digest = _array_digest(arr)
        index = self.root / "index" / digest[:2] / digest[2:]
        try:
            known = index.read_text(encoding="ascii").strip()
        except (OSError, UnicodeDecodeError):
            known = ""
        if is_ref(known):
            p = self.path(known)
            if p.is_file():
                _touch(p)
                return known
        from harness.fsio import atomic_write_text
        from harness.imageio import encode_png

        ref = self.put_png(encode_png(arr))

        atomic_write_text(index, ref + "\n")
        return ref

    def load(self, ref: str) -> np.ndarray:
        """The image of ``ref`` (as :func:`harness.imageio.load_image` reads it); InputError when absent."""
        from harness.imageio import load_image

        p = self.path(ref)
        if not p.is_file():
            raise InputError(f"{ref}: not in the image store {self.root}")
        return load_image(p)

    # -- retention ------------------------------------------------------------
    def objects(self) -> Iterator[tuple[str, int, int]]:
        """``(reference, size in bytes, mtime_ns)`` of every object."""
        try:
            shards = list(os.scandir(self.objects_dir))
        except OSError:
            return
        for shard in shards:
            if len(shard.name) != 2 or not shard.is_dir(follow_symlinks=False):
                continue
            for de in os.scandir(shard.path):
                ref = f"{REF_PREFIX}{shard.name}{de.name[:-4]}"
                if de.name.endswith(".png") and is_ref(ref):
                    try:
                        st = de.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    yield ref, st.st_size, st.st_mtime_ns

    def usage(self) -> int:
        """Bytes of all objects."""
        return sum(size for _, size, _ in self.objects())

    def prune(self, max_bytes: int, keep: Iterable[str] = (), *, dry_run: bool = False) -> PruneResult:
        """Remove least recently used objects not in ``keep`` until the objects take at most
        90 % of ``max_bytes`` (nothing when they are within ``max_bytes``); index entries that
        lead to a removed object go with it.  ``dry_run``: say what would go, remove nothing."""
        found = sorted(self.objects(), key=lambda o: o[2])
        total = sum(size for _, size, _ in found)
        out = PruneResult(remaining=total)
        if total <= max_bytes:
            return out
        keep = set(keep)
        target = int(max_bytes * _LOW_WATER)
        for ref, size, _ in found:
            if out.remaining <= target:
                break
            if ref in keep:
                out.protected += 1
                continue
            if not dry_run:
                try:
                    self.path(ref).unlink()
                except FileNotFoundError:
                    pass  # another process pruned it
            out.removed.append(ref)
            out.freed += size
            out.remaining -= size
        if out.removed and not dry_run:
            self._drop_index(set(out.removed))
        return out

    def _drop_index(self, removed: set[str]) -> None:
        for shard in _subdirs(self.root / "index"):
            for de in os.scandir(shard):
                try:
                    with open(de.path, encoding="ascii") as f:
                        if f.read().strip() in removed:
                            os.unlink(de.path)
                except (OSError, UnicodeDecodeError):
                    continue


def _subdirs(folder: Path) -> list[str]:
    try:
        return [de.path for de in os.scandir(folder) if de.is_dir(follow_symlinks=False)]
    except OSError:
        return []


def _touch(p: Path) -> None:
    try:
        os.utime(p)
    except OSError:
        pass  # a read-only store still serves its objects


# ---------------------------------------------------------------------------------- consumers
def store_root_of(environment: Mapping[str, Any] | None) -> Path | None:
    """The image store a run recorded (``report.environment["store"]``); None for an older run."""
    root = (environment or {}).get("store")
    return Path(root) if isinstance(root, str) and root else None


def resolve_artifact(value: Any, run_dir: str | os.PathLike[str], store_root: str | os.PathLike[str] | None
                     ) -> Path | None:
    """The file of one ``artifacts`` value of a case: a reference → its object in the store at
    ``store_root``; a relative path (older runs) → that file inside ``run_dir``.  None when it is
    neither, escapes the run folder, or the file is not there (a pruned object, a moved run)."""
    if not isinstance(value, str) or not value:
        return None
    if value.startswith(REF_PREFIX):
        if store_root is None or not is_ref(value):
            return None
        p = ImageStore(store_root).path(value)
        return p if p.is_file() else None
    rel = PurePosixPath(value)
    if rel.is_absolute() or ".." in rel.parts or "\\" in value:
        return None
    root = Path(run_dir).resolve()
    p = (root / rel).resolve()
    try:
        p.relative_to(root)
    except ValueError:
        return None
    return p if p.is_file() else None


def reference_images(artifacts: Mapping[str, str], run_dir: Path, store: ImageStore,
                     run_store: str | os.PathLike[str] | None = None) -> dict[str, str]:
    """``{stage: reference}`` of a case's ``artifacts`` for its baseline, every image in ``store``:
    references kept (copied from the run's own store ``run_store`` when it is another one),
    run-folder PNGs of an older run put into ``store``; what is found nowhere is left out."""
    out: dict[str, str] = {}
    for stage, value in artifacts.items():
        if is_ref(value):
            if not store.has(value):
                p = resolve_artifact(value, run_dir, run_store)
                if p is None or store.put_png(p.read_bytes()) != value:  # absent, or not the bytes it names
                    continue
            out[str(stage)] = value
            continue
        p = resolve_artifact(value, run_dir, None)
        if p is not None and p.suffix.lower() == ".png":
            out[str(stage)] = store.put_png(p.read_bytes())
    return out


def refs_in_baselines(root: str | os.PathLike[str]) -> set[str]:
    """Every reference written in a baseline document under ``root`` (all suites): what pruning keeps."""
    refs: set[str] = set()
    base = Path(root)
    if not base.is_dir():
        return refs
    for p in base.rglob("*.json"):
        try:
            refs.update(_REF_SEARCH.findall(p.read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError):
            continue
    return refs


def missing_reference_notes(baselines: Any, case_ids: Iterable[str], store_root: str | os.PathLike[str] | None,
                            *, shown: int = 3) -> list[str]:
    """One note when baselines of ``case_ids`` (a :class:`harness.suite.baselines.BaselineStore`)
    record reference images that the store at ``store_root`` lacks: reported, never an error."""
    from harness.errors import BaselineError

    store = ImageStore(store_root) if store_root is not None else None
    missing: list[str] = []
    total = 0
    for cid in case_ids:
        try:
            images = baselines.images(cid)
        except BaselineError:
            continue  # the case's judge reports a corrupt baseline
        for stage, ref in sorted(images.items()):
            total += 1
            if store is None or not store.has(ref):
                missing.append(f"{cid} {stage} {ref[:15]}…")
    if not missing:
        return []
    where = f"the image store {store_root}" if store is not None else "this run's image store (none recorded)"
    return [f"reference images: {len(missing)} of {total} recorded in {baselines.dir} are missing from {where} "
            f"(e.g. {'; '.join(missing[:shown])}): they cannot be shown; the comparisons do not use them "
            "(re-bake on this machine, or copy the store)"]
