"""The bake transaction: how baseline files and their manifest are written, and how a killed
bake is finished.  :meth:`BaselineStore.bake <harness.suite.baselines.store.BaselineStore.bake>`
resolves case ids to paths and documents to bytes; this module writes them.

**Writers lock.**  A bake holds an exclusive ``fcntl.flock`` on ``<suite>/.lock`` for its
whole write phase (:func:`harness.fsio.file_lock`: advisory, reliable on a local file
system only), re-reads the manifest under it and merges its changes into what is there,
so two bakes of one suite at once (say ``-k A`` and ``-k B``) both land.  Readers
(:meth:`~harness.suite.baselines.store.BaselineStore.load`, the runner) do not lock: files
and manifest are replaced atomically, and a run that overlaps a bake may see a case
mid-update as an error naming the file.

**Write order** (crash safety).  Under the lock a bake

1. finishes what a killed bake left (see below) and deletes ``.<name>.*.tmp`` temp files;
2. writes the manifest with a ``"pending": {rel: new sha256, or null for a removal}``
   record of every file it is about to write or delete (the intent), ``"files"`` unchanged;
3. replaces each baseline file atomically (temp file + rename) or deletes it;
4. fsyncs the folders, then writes the manifest with ``"files"`` updated and no ``"pending"``.

A kill at any point therefore leaves every baseline file either matching ``"files"``,
or matching its ``"pending"`` sum (written, not yet recorded), or an unlisted file that
``strays`` and ``verify`` report; temp files are the only other debris.  The next
bake (or ``verify(repair=True)``, :func:`repair`) records a pending entry whose file has its
new sum, drops one whose file still has its old sum, deletes the temp files, and reports both.
Until then ``load`` refuses a pending file, saying why.
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.fsio import atomic_write_text, file_lock, fsync_dir, remove_temp_files
from harness.suite.baselines.document import (LOCK, MANIFEST, BakeChange, BaselineWriteError, _dump, read_document,
                                              same_record, with_approval)
from harness.suite.baselines.manifest import Manifest, file_sha, sha256
from harness.suite.baselines.review import Verdict, describe_change

__all__ = ["Target", "Review", "bake", "preview", "repair"]


@dataclass(frozen=True)
class Target:
    """One case's baseline file: its id, its path relative to the suite folder, and the path
    (already confirmed inside the folder by the store)."""

    case_id: str
    rel: str
    path: Path


@dataclass(frozen=True)
class Review:
    """What a bake decided beyond the bytes: each existing case's :class:`Verdict` (a case without
    one is rewritten whenever its record changed) and the approval its written documents carry."""

    verdicts: dict[str, Verdict] = field(default_factory=dict)
    approval: dict[str, Any] | None = None


@dataclass
class _Op:
    case_id: str
    rel: str
    path: Path
    body: str | None  # None: delete
    digest: str | None
    change: BakeChange


def preview(manifest: Manifest, wanted: dict[str, tuple[Target, dict[str, Any]]], prune: list[Target], *,
            new_only: bool, review: Review | None = None) -> list[BakeChange]:
    """What :func:`bake` would do (``--dry-run``), without the lock and without writing, deleting or
    creating anything: one change per case, then what is out of place in the folder."""
    files, _ = manifest.read()
    _ops, ordered = _plan(wanted, prune, files, new_only, review or Review())
    return ordered + manifest.scan(files)


def bake(manifest: Manifest, wanted: dict[str, tuple[Target, dict[str, Any]]], prune: list[Target], *,
         new_only: bool, on_wait: Callable[[str], None] | None, review: Review | None = None) -> list[BakeChange]:
    """Write ``wanted`` (``{rel: (target, document in the in-memory form)}``) and delete ``prune`` in the order of the
    module doc, under the suite's lock.  Returns what was found first (``recovered``,
    ``cleaned``), one change per case, then what is out of place (``stray``, ``mismatch``,
    ``missing``).  Raises :class:`BaselineWriteError` (naming the path) when the file system
    refuses a write, leaving the store consistent."""
    folder = manifest.folder
    found: list[BakeChange] = []
    done: list[BakeChange] = []
    try:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):  # a file where the folder or one above it should be
            raise NotADirectoryError(errno.ENOTDIR, "not a folder", str(_in_the_way(folder))) from None
        with file_lock(folder / LOCK, on_wait=on_wait):
            found = housekeep(manifest)
            files, _ = manifest.read()
            ops, ordered = _plan(wanted, prune, files, new_only, review or Review())
            if ops:
                manifest.write(files, {op.rel: op.digest for op in ops})  # the intent
                try:
                    _apply(manifest, ops, files, done)
                except OSError as exc:
                    try:
                        housekeep(manifest)  # record what was written, drop the rest
                        note = (f"{len(done)} of {len(ops)} changes written and recorded in {MANIFEST}, "
                                "the others not made")
                    except OSError:
                        note = (f"{len(done)} of {len(ops)} changes written; {MANIFEST} lists the interrupted "
                                "ones as pending and the next `harness bake` records or drops them")
                    raise BaselineWriteError(_failure(folder, exc, note), found + done) from exc
            tail = manifest.scan(files)
    except OSError as exc:
        raise BaselineWriteError(_failure(folder, exc, "nothing was changed"), found) from exc
    return found + ordered + tail


def repair(manifest: Manifest, on_wait: Callable[[str], None] | None) -> list[BakeChange]:
    """Under the suite's lock, finish what an interrupted bake left (:func:`housekeep`)."""
    try:
        with file_lock(manifest.folder / LOCK, on_wait=on_wait):
            return housekeep(manifest)
    except OSError as exc:
        raise BaselineWriteError(_failure(manifest.folder, exc, "nothing was changed")) from exc


def housekeep(manifest: Manifest) -> list[BakeChange]:
    """Under the lock: resolve an interrupted bake's pending record, delete temp files."""
    folder = manifest.folder
    out: list[BakeChange] = []
    files, pending = manifest.read()
    if pending:
        for rel, target in sorted(pending.items()):
            p = folder / rel
            now = file_sha(p)
            if now == target:
                if target is None:
                    files.pop(rel, None)
                    out.append(BakeChange(rel, "recovered", p, "deleted by an interrupted bake; now unlisted"))
                else:
                    files[rel] = target
                    out.append(BakeChange(rel, "recovered", p, "written by an interrupted bake; now recorded"))
            # else the interrupted bake never got to it (old sum), or somebody changed it
            # since: the manifest keeps its old entry, and a mismatch or stray is reported
        manifest.write(files)
    for t in remove_temp_files(folder):
        out.append(BakeChange(t.relative_to(folder).as_posix(), "cleaned", t,
                              "temp file of an interrupted write; deleted"))
    return out


def _plan(wanted: dict[str, tuple[Target, dict[str, Any]]], prune: list[Target], files: dict[str, str],
          new_only: bool, review: Review) -> tuple[list[_Op], list[BakeChange]]:
    """The writes and deletes to make (``ops``) and one change per case, in the caller's order.

    A case whose file holds the same record (approvals and layout aside) is ``unchanged`` and not
    rewritten; so is one the review kept (``Verdict.rewrite`` false, judged on the file that is
    there now).  A written document carries the review's approval on top of the old file's."""
    ops: list[_Op] = []
    ordered: list[BakeChange] = []
    for rel, (target, doc) in wanted.items():
        case_id, p = target.case_id, target.path
        listed, now = files.get(rel), file_sha(p)
        old = None
        if listed is not None or now is not None:
            if new_only:
                ordered.append(BakeChange(case_id, "skipped", p, "exists (--new-only)"))
                continue
            old = _read(p) if now is not None else None
            kept = review.verdicts.get(case_id)
            if now is not None and now == listed and same_record(old, doc) and not _relayout(kept, doc, old, now):
                ordered.append(BakeChange(case_id, "unchanged", p))
                continue
            if now is not None and now == listed and kept is not None and not kept.rewrite and kept.against == now:
                ordered.append(BakeChange(case_id, "unchanged", p, kept.why))
                continue
            if now is None:
                action, detail = "new", f"was listed in {MANIFEST} but missing on disk"
            else:
                action, detail = "changed", _why_changed(old, doc, kept)
                if now != listed:
                    detail = f"replaces a file that did not match {MANIFEST}; {detail}"
        else:
            action, detail = "new", ""
        body = _dump(with_approval(doc, review.approval, old))
        change = BakeChange(case_id, action, p, detail)
        ops.append(_Op(case_id, rel, p, body, sha256(body.encode("utf-8")), change))
        ordered.append(change)
    for target in prune:
        if target.rel not in files and not target.path.exists():
            continue
        change = BakeChange(target.case_id, "removed", target.path, "obsolete")
        ops.append(_Op(target.case_id, target.rel, target.path, None, None, change))
        ordered.append(change)
    return ops, ordered


def _relayout(verdict: Verdict | None, doc: dict[str, Any], old: dict[str, Any], now: str) -> bool:
    """A forced rewrite (``--force``, named by ``-k``) of a file that holds the same record in
    another layout (schema 1's one line): rewritten, so a forced bake brings it to the current one."""
    if verdict is None or not verdict.rewrite or verdict.against is not None:
        return False
    return sha256(_dump(with_approval(doc, None, old)).encode("utf-8")) != now


def _read(p: Path) -> dict[str, Any] | None:
    """The document at ``p`` in the in-memory form; None when it does not read as one."""
    try:
        return read_document(p.read_bytes())
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _why_changed(old: dict[str, Any] | None, new: dict[str, Any], verdict) -> str:
    """The decisive reason (the review's) and, when it was asked for, what the values did."""
    if verdict is None or not verdict.rewrite:
        return describe_change(old, new)
    if verdict.against is None:  # --force / named: say what it does besides
        return f"{verdict.why}; {describe_change(old, new)}"
    return verdict.why


def _apply(manifest: Manifest, ops: list[_Op], files: dict[str, str], done: list[BakeChange]) -> None:
    """Steps 3 and 4 of the write order: the files, the folders' fsync, the manifest (the commit)."""
    folders = set()
    for op in ops:
        if op.body is None:
            op.path.unlink(missing_ok=True)
            _remove_empty_parents(op.path.parent, manifest.folder)
        else:
            atomic_write_text(op.path, op.body)
        folders.add(op.path.parent)
        done.append(op.change)
    for folder in sorted(folders):
        fsync_dir(folder)
    for op in ops:
        if op.digest is None:
            files.pop(op.rel, None)
        else:
            files[op.rel] = op.digest
    manifest.write(files)  # the commit
    fsync_dir(manifest.folder)


def _in_the_way(folder: Path) -> Path:
    """The file that stops the suite folder from being a folder (or the folder itself)."""
    for p in (folder, *folder.parents):
        if p.exists():
            return p if not p.is_dir() else folder
    return folder


def _failure(folder: Path, exc: OSError, note: str) -> str:
    where = exc.filename or exc.filename2 or folder
    reason = exc.strerror or str(exc) or type(exc).__name__
    return f"{where}: {reason}; cannot write the baselines in {folder}: {note}"


def _remove_empty_parents(folder: Path, top: Path) -> None:
    while folder != top and top in folder.parents:
        try:
            folder.rmdir()
        except OSError:
            return
        folder = folder.parent
